"""The replay's TCP connection: every byte sent and received goes through the tap.

:class:`Link` owns one non-blocking socket, to the target (the replay connected) or from
the peer under test (the replay accepted). What is sent and received is handed, with the
time it was written or read, to a :class:`~analyzer.sources.proxy.tap.ClientTap` (the
proxy's and the probe's: pcapng packets, and segments into a
:class:`~analyzer.sources.clientwire.ClientWire` of the connection's own, which observes
them as a capture is observed), so the replay is observed as any traffic is. While it sends, it
also reads: a peer that answers (or sends C-STORE sub-operations) while a long data set
goes out is never left blocked on a full window. Every wait ends at a deadline.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import time
from collections.abc import Callable

from analyzer.sources.clientwire import FIRST_CONNECTION, ClientWire
from analyzer.sources.proxy.pcapng import Interface, PcapngWriter, TcpLeg
from analyzer.sources.proxy.tap import ClientTap
from dissectors import CloseKind
from dissectors.observer import Emit

__all__ = ["Link", "LinkClosedError", "Unreachable", "accept", "connect"]

_READ = 1 << 16
_SEND = 1 << 18
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
#: The replay frames nothing itself: the observer never allocates by a declared length.
_PARSE_LIMIT = 0xFFFFFFFF


class LinkClosedError(Exception):
    """The connection was closed or reset: nothing more can be sent."""


class Unreachable(Exception):
    """The target could not be reached, or no peer connected in time (one line)."""


def _now() -> int:
    return time.time_ns()


def _address(sockaddr: tuple[object, ...]) -> tuple[str, int]:
    return str(sockaddr[0]), int(str(sockaddr[1]))


class Link:
    """One connection of the replay, observed. ``client`` says whether the replay is the
    TCP client (it connected)."""

    def __init__(
        self,
        sock: socket.socket,
        *,
        client: bool,
        emit: Emit,
        pcap: PcapngWriter | None,
        keep: int,
        started: int,
        warn: Callable[[str], None],
    ) -> None:
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock: socket.socket | None = sock
        self._ours = client  # "from the client" in the tap's terms, for what we send
        local, peer = _address(sock.getsockname()), _address(sock.getpeername())
        self.peer = peer
        self.local = local
        # The connection's own wire observes it as a capture is observed.
        self._wire = ClientWire(emit, keep=keep)
        leg = TcpLeg(
            pcap, Interface.CLIENT_LEG, local if client else peer, peer if client else local
        )
        self._tap: ClientTap | None = ClientTap(
            leg, self._wire.feed, parse_limit=_PARSE_LIMIT, warn=warn
        )
        self._wire.attach(FIRST_CONNECTION, self._tap)
        self._tap.open(started)
        self._selector = selectors.DefaultSelector()
        self._selector.register(sock, selectors.EVENT_READ)
        self._rw = selectors.DefaultSelector()  # while sending: writable, or bytes to read
        self._rw_sock = sock
        self._rw_mask = selectors.EVENT_READ | selectors.EVENT_WRITE
        self._rw.register(sock, self._rw_mask)
        self.peer_closed: CloseKind | None = None
        self.we_closed: CloseKind | None = None
        self.last_activity = time.monotonic()
        self.sent = 0
        self.received = 0

    @property
    def open(self) -> bool:
        """Bytes can still be sent."""
        return (
            self._sock is not None
            and self.we_closed is None
            and self.peer_closed != (CloseKind.RST)
        )

    # --- receiving -------------------------------------------------------------------

    def receive(self, deadline: float) -> bool:
        """Wait (until ``deadline``, a ``time.monotonic()``) for bytes from the peer and
        read them; False when nothing came in time or the peer has closed its side."""
        sock = self._sock
        if sock is None or self.peer_closed is not None:
            return False
        timeout = max(0.0, deadline - time.monotonic())
        if not self._selector.select(timeout):
            return False
        self._read()
        return True

    def _read(self) -> None:
        sock = self._sock
        if sock is None or self.peer_closed is not None:
            return
        try:
            chunk = sock.recv(_READ)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._peer_close(CloseKind.RST)
            return
        if not chunk:
            self._peer_close(CloseKind.FIN)
            return
        if _QUICKACK is not None:
            # Acknowledge at once: a peer writing a PDU in two parts with Nagle's algorithm
            # waits for this ACK, which Linux would otherwise delay by ~40 ms.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        self.received += len(chunk)
        self.last_activity = time.monotonic()
        if self._tap is not None:
            self._tap.data(not self._ours, _now(), chunk)

    def _peer_close(self, kind: CloseKind) -> None:
        self.peer_closed = kind
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(self._sock)  # type: ignore[arg-type]
        if self._tap is not None:
            self._tap.close(not self._ours, kind, _now())

    # --- sending ---------------------------------------------------------------------

    def send(self, data: bytes | bytearray | memoryview, deadline: Callable[[], float]) -> None:
        """Send all of ``data``, reading what the peer sends meanwhile. ``deadline()`` is
        re-read after every step (it moves with the peer's activity). Raises
        :class:`LinkClosedError` when the connection is gone, TimeoutError when the peer
        takes nothing until the deadline."""
        sock = self._sock
        if sock is None or not self.open:
            raise LinkClosedError
        view = memoryview(data).cast("B")
        while view:
            try:
                n = sock.send(view[:_SEND])
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:
                self._peer_close(CloseKind.RST)
                raise LinkClosedError from None
            if n:
                self.sent += n
                self.last_activity = time.monotonic()
                if self._tap is not None:
                    self._tap.data(self._ours, _now(), bytes(view[:n]))
                view = view[n:]
                continue
            timeout = deadline() - time.monotonic()
            if timeout <= 0:
                raise TimeoutError
            events = self._wait_writable(timeout)
            if events & selectors.EVENT_READ:
                self._read()
                if self.peer_closed == CloseKind.RST:
                    raise LinkClosedError

    def _wait_writable(self, timeout: float) -> int:
        mask = selectors.EVENT_WRITE
        if self.peer_closed is None:
            mask |= selectors.EVENT_READ
        if self._rw_mask != mask:
            self._rw.modify(self._rw_sock, mask)
            self._rw_mask = mask
        ready = self._rw.select(timeout)
        return ready[0][1] if ready else 0

    # --- closing ---------------------------------------------------------------------

    def close(self, kind: CloseKind) -> None:
        """Close the replay's side: FIN (the peer may still send), or RST."""
        sock = self._sock
        if sock is None or self.we_closed is not None:
            return
        self.we_closed = kind
        if kind == CloseKind.RST:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self._drop()
        else:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        if self._tap is not None:
            self._tap.close(self._ours, kind, _now())

    def _drop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            for selector in (self._selector, self._rw):
                with contextlib.suppress(KeyError, ValueError):
                    selector.unregister(sock)
            with contextlib.suppress(OSError):
                sock.close()

    def finish(self) -> None:
        """Close the socket if still open, then end the observation."""
        if self._sock is not None and self.we_closed is None:
            self.close(CloseKind.FIN)
        self._drop()
        self._selector.close()
        self._rw.close()
        tap, self._tap = self._tap, None
        if tap is not None:
            self._wire.finish()


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


#: A socket address as getaddrinfo gives it (IPv4, IPv6).
_SockAddr = tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes]


def _resolve(host: str, port: int, flags: int = 0) -> tuple[socket.AddressFamily, _SockAddr]:
    """The first address ``host:port`` resolves to (family, socket address); raises
    :class:`Unreachable`."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=flags)
    except (socket.gaierror, UnicodeError) as exc:
        why = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise Unreachable(f"cannot resolve {host} ({why})") from None
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


def connect(host: str, port: int, timeout: float) -> socket.socket:
    """A connected socket to ``host:port`` (the one address given: nothing else is tried
    than what it resolves to); raises :class:`Unreachable`."""
    where = _where(host, port)
    family, sockaddr = _resolve(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(sockaddr)
    except ConnectionRefusedError:
        sock.close()
        raise Unreachable(f"connection refused by {where}: nothing listens there") from None
    except TimeoutError:
        sock.close()
        raise Unreachable(f"no answer from {where} within {timeout:g} s") from None
    except OSError as exc:
        sock.close()
        raise Unreachable(f"cannot connect to {where}: {exc.strerror or exc}") from None
    return sock


def listener(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``; raises :class:`Unreachable` (address in use ...)."""
    where = _where(host, port)
    family, sockaddr = _resolve(host, port, socket.AI_PASSIVE)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(1)
    except OSError as exc:
        sock.close()
        raise Unreachable(f"cannot listen on {where}: {exc.strerror or exc}") from None
    return sock


def accept(sock: socket.socket, timeout: float) -> socket.socket:
    """The first connection to the listening ``sock`` within ``timeout`` seconds."""
    sock.settimeout(timeout)
    try:
        conn, _ = sock.accept()
    except TimeoutError:
        host, port = _address(sock.getsockname())
        raise Unreachable(
            f"nobody connected to {_where(host, port)} within {timeout:g} s"
        ) from None
    except OSError as exc:
        raise Unreachable(f"accepting a connection failed: {exc.strerror or exc}") from None
    return conn
