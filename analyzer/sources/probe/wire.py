"""The probe's TCP connection: connect (and TLS), then every byte sent and received is tapped.

:class:`Wire` owns one socket. It connects itself, so that the time to connect is measured
and a failure has a precise cause (refused, timeout, unreachable, TLS); then it hands the
socket to pynetdicom through :class:`~.client.TapSocket`, which sends and receives through
:meth:`Wire.send` and :meth:`Wire.recv`. Every chunk goes to a
:class:`~analyzer.sources.proxy.tap.ClientTap` (the proxy's: pcapng packets, and segments
into a :class:`~analyzer.sources.clientwire.ClientWire` of the connection's own, which
observes it as a capture is observed) as it is sent or read.

Received bytes are tapped at the socket, not through pynetdicom's ``EVT_DATA_RECV``: that
event fires only for a whole PDU of a known type, so garbage, a truncated PDU or a PDU that
declares 4 GB would never reach the observer, and pynetdicom would try to read such a PDU
into memory. Here a PDU header declaring more than ``pdu_limit`` ends the connection at the
header, and every wait is bounded by ``timeout``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import NoReturn

from analyzer.sources.clientwire import FIRST_CONNECTION, ClientWire
from analyzer.sources.proxy.pcapng import Interface as _Interface
from analyzer.sources.proxy.pcapng import PcapngWriter, TcpLeg
from analyzer.sources.proxy.tap import ClientTap
from dissectors import CloseKind, DissectorEvent
from dissectors.observer import Emit
from dissectors.pdu import Abort, AbortReason, AbortSource

__all__ = ["Cause", "Trouble", "Wire", "resolve"]

#: Bytes read from the socket at once.
_READ = 1 << 16
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)
#: First bytes received kept, to say what a peer that is not DICOM speaks.
_HEAD = 256

_ABORT = Abort(AbortSource.SERVICE_PROVIDER, AbortReason.INVALID_PDU_PARAMETER_VALUE).encode()

#: The pcapng interface the probe's packets are written on (the probe is the client).
INTERFACE = _Interface.CLIENT_LEG


class Cause(StrEnum):
    """What went wrong below DICOM, as only the active side can know it."""

    DNS = "dns"
    REFUSED = "refused"
    CONNECT_TIMEOUT = "connect-timeout"
    UNREACHABLE = "unreachable"
    TLS = "tls"
    TIMEOUT = "timeout"
    RESET = "reset"
    PDU_TOO_LARGE = "pdu-too-large"
    NOT_DICOM = "not-dicom"
    HTTP = "http"
    TLS_ANSWER = "tls-answer"


@dataclass(frozen=True, slots=True)
class Trouble:
    """A transport-level problem: its class and one line saying it."""

    cause: Cause
    text: str


def resolve(host: str, port: int, timeout: float) -> tuple[str, int]:
    """``(ip, family)`` of ``host``; raises :class:`TroubleError` (DNS)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        why = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise TroubleError(Trouble(Cause.DNS, f"cannot resolve {host} ({why})")) from None
    family, _, _, _, sockaddr = infos[0]
    return str(sockaddr[0]), int(family)


class TroubleError(Exception):
    """Raised by :class:`Wire` for a problem that ends the probe's connection."""

    def __init__(self, trouble: Trouble) -> None:
        super().__init__(trouble.text)
        self.trouble = trouble


def _now() -> int:
    return time.time_ns()


class Wire:
    """One TCP connection of the probe, observed and (optionally) written as pcapng."""

    def __init__(
        self,
        connection: int,
        ip: str,
        port: int,
        family: int,
        *,
        timeout: float,
        emit: Emit,
        pcap: PcapngWriter | None,
        keep: int,
        pdu_limit: int,
        tls: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> None:
        self.connection = connection
        self.ip = ip
        self.port = port
        self.family = family
        self.timeout = timeout
        self.tls = tls
        self.server_hostname = server_hostname
        self.pdu_limit = pdu_limit
        self.connect_ns: int | None = None
        self.tls_ns: int | None = None
        self.trouble: Trouble | None = None
        self.warnings: list[str] = []
        self.received_head = bytearray()
        self._emit = emit
        self._pcap = pcap
        self._keep = keep
        self._sock: socket.socket | None = None
        self._tap: ClientTap | None = None
        # One connection's wire: the probe numbers its connections itself.
        self._wire = ClientWire(self._renumbered, keep=keep)
        self._buffer = bytearray()
        self._poisoned: str | None = None
        self._lock = threading.RLock()
        self._closed = [False, False]

    def _renumbered(self, event: DissectorEvent) -> None:
        self._emit(dataclasses.replace(event, connection=self.connection))

    # --- connecting ------------------------------------------------------------------

    @property
    def socket(self) -> socket.socket:
        """The connected socket; OSError once closed (pynetdicom's reader may still ask)."""
        if self._sock is None:
            raise ConnectionAbortedError("the probe's connection is closed")
        return self._sock

    def connect(self) -> None:
        """Connect (and shake hands for TLS); raises :class:`TroubleError` on failure,
        having recorded the attempt as a capture would show it."""
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        start_ts = _now()
        t0 = time.perf_counter_ns()
        try:
            sock.connect((self.ip, self.port))
        except OSError as exc:
            try:
                local = sock.getsockname()  # the address the SYN left from
            except OSError:
                local = ("0.0.0.0" if self.family == socket.AF_INET else "::", 0)
            sock.close()
            self._failed_connect(start_ts, (str(local[0]), int(local[1])), exc)
        self.connect_ns = time.perf_counter_ns() - t0
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        local = sock.getsockname()
        leg = TcpLeg(self._pcap, INTERFACE, (str(local[0]), int(local[1])), (self.ip, self.port))
        self._tap = ClientTap(
            leg, self._wire.feed, parse_limit=self.pdu_limit, warn=self.warnings.append
        )
        self._wire.attach(FIRST_CONNECTION, self._tap)
        self._tap.open(start_ts)
        if self.tls is not None:
            t1 = time.perf_counter_ns()
            try:
                sock = self.tls.wrap_socket(sock, server_hostname=self.server_hostname)
            except (OSError, ValueError) as exc:
                with contextlib.suppress(OSError):
                    sock.close()
                self._close(True, CloseKind.FIN)
                self._trouble(Cause.TLS, _tls_text(exc, self.timeout))
            self.tls_ns = time.perf_counter_ns() - t1
        self._sock = sock

    def _failed_connect(self, ts: int, local: tuple[str, int], exc: OSError) -> NoReturn:
        """The attempt as a capture shows it: a SYN, answered by RST (refused) or not; then
        raises :class:`TroubleError`."""
        refused = isinstance(exc, ConnectionRefusedError)
        leg = TcpLeg(self._pcap, INTERFACE, local, (self.ip, self.port))
        segments = leg.attempt(ts)
        if refused:
            segments += leg.rst(False, _now())
        for seg in segments:
            self._wire.feed(seg)
        self._wire.finish()
        where = f"{self.ip}:{self.port}" if ":" not in self.ip else f"[{self.ip}]:{self.port}"
        if refused:
            self._trouble(Cause.REFUSED, f"connection refused by {where}: nothing listens there")
        if isinstance(exc, TimeoutError):
            self._trouble(
                Cause.CONNECT_TIMEOUT,
                f"no answer from {where} within {self.timeout:g} s (host down, or a firewall "
                "drops the connection)",
            )
        self._trouble(Cause.UNREACHABLE, f"cannot connect to {where}: {exc.strerror or exc}")

    def _trouble(self, cause: Cause, text: str) -> NoReturn:
        trouble = Trouble(cause, text)
        if self.trouble is None:
            self.trouble = trouble
        raise TroubleError(trouble)

    # --- the byte streams (called from pynetdicom's thread) -------------------------

    def send(self, data: bytes) -> None:
        """Send all of ``data``; what was sent is tapped. Raises OSError."""
        sock = self.socket
        view = memoryview(data)
        sent = 0
        try:
            while sent < len(view):
                n = sock.send(view[sent:])
                with self._lock:
                    if self._tap is not None:
                        self._tap.data(True, _now(), bytes(view[sent : sent + n]))
                sent += n
        except TimeoutError:
            self._note(Cause.TIMEOUT, f"the peer took no data for {self.timeout:g} s")
            raise
        except OSError as exc:
            self._lost(exc)
            raise

    @property
    def buffered(self) -> bool:
        """Bytes were read from the socket that pynetdicom has not taken yet."""
        return bool(self._buffer)

    def recv(self, n: int) -> bytearray:
        """Up to ``n`` bytes (fewer only when the peer closed). Raises OSError on a timeout,
        a reset, or a PDU header declaring more than the limit (once the PDUs before it
        were taken)."""
        out = bytearray()
        while len(out) < n:
            if not self._buffer and not self._fill():
                return out
            take = min(n - len(out), len(self._buffer))
            out += self._buffer[:take]
            del self._buffer[:take]
        return out

    def _fill(self) -> bool:
        """Read what the socket has (at most 64 KiB) into the buffer; False at its end."""
        if self._poisoned is not None:
            self._refuse()
        sock = self.socket
        try:
            chunk = sock.recv(_READ)
        except TimeoutError:
            self._note(Cause.TIMEOUT, f"the peer sent nothing more for {self.timeout:g} s")
            raise
        except OSError as exc:
            self._lost(exc)
            raise
        ts = _now()
        if not chunk:
            self._close(False, CloseKind.FIN, ts)
            return False
        if _QUICKACK is not None:
            # Acknowledge at once: a peer that writes a PDU in two parts with Nagle's
            # algorithm on waits for this ACK, which Linux would otherwise delay by ~40 ms.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        if len(self.received_head) < _HEAD:
            self.received_head += chunk[: _HEAD - len(self.received_head)]
        # The framer says where a PDU (of a type PS3.8 defines: any other is not a PDU at
        # all, which pynetdicom reads 6 bytes of and aborts) declares more than the limit.
        with self._lock:
            tap = self._tap
            if tap is None:
                big: list[tuple[int, int, int]] = []
            else:
                start = tap.offsets[1]
                seen = len(tap.streams[1].over_limit)
                tap.data(False, ts, chunk)
                big = tap.streams[1].over_limit[seen:]
        if not big:
            self._buffer += chunk
            return True
        offset, _, declared = big[0]
        # Hand over the PDUs before the oversized one; the next read fails.
        self._buffer += chunk[: max(offset - start, 0)]
        self._poisoned = _too_large(declared, self.pdu_limit)
        self._note(Cause.PDU_TOO_LARGE, self._poisoned)
        if not self._buffer:
            self._refuse()
        return True

    def _refuse(self) -> NoReturn:
        """The peer sent a PDU the probe will not read: A-ABORT (invalid PDU parameter
        value, as PS3.8 §9.2.3 prescribes for an invalid PDU), then fail the read."""
        assert self._poisoned is not None
        with contextlib.suppress(OSError):
            self.send(_ABORT)
        raise ConnectionAbortedError(self._poisoned)

    def _note(self, cause: Cause, text: str) -> None:
        if self.trouble is None:
            self.trouble = Trouble(cause, text)

    def _lost(self, exc: OSError) -> None:
        if isinstance(exc, ConnectionResetError):
            self._note(Cause.RESET, "the peer reset the connection")
            self._close(False, CloseKind.RST)
        elif isinstance(exc, ssl.SSLEOFError):
            self._note(Cause.TLS, "TLS: the server ended the TLS session")
            self._close(False, CloseKind.FIN)
        elif isinstance(exc, ssl.SSLError):
            self._note(Cause.TLS, f"TLS: {exc.reason or exc}")

    def _close(self, from_client: bool, kind: CloseKind, ts: int | None = None) -> None:
        with self._lock:
            i = 0 if from_client else 1
            if self._closed[i] or self._tap is None:
                return
            self._closed[i] = True
            self._tap.close(from_client, kind, ts if ts is not None else _now())

    def close(self) -> None:
        """Close the connection from the probe's side (FIN)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        self._close(True, CloseKind.FIN)

    def finish(self) -> None:
        """Close if still open, then end the observation."""
        self.close()
        with self._lock:
            tap, self._tap = self._tap, None
            if tap is not None:
                self._wire.finish()


#: What OpenSSL says when the other end does not speak TLS at all.
_PLAIN_PORT_REASONS = (
    "WRONG_VERSION_NUMBER",
    "UNEXPECTED_EOF_WHILE_READING",
    "RECORD_LAYER_FAILURE",
)


def _tls_text(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"TLS handshake: no answer within {timeout:g} s"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS handshake: the server's certificate was not accepted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        if reason in _PLAIN_PORT_REASONS:
            return (
                f"TLS handshake failed ({reason}): the port does not seem to speak TLS "
                "(a plain DICOM port?)"
            )
        return f"TLS handshake failed ({reason})"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "TLS handshake: the server reset the connection (a plain DICOM port?)"
    return f"TLS handshake failed ({exc})"


def _too_large(declared: int, limit: int) -> str:
    return (
        f"the peer sent a PDU header declaring {declared} bytes, more than the probe reads "
        f"({limit} bytes): a broken peer, or not DICOM"
    )
