"""Socket-level helpers of a relay: closing with FIN or RST, best-effort writes, and the words
for why an upstream could not be reached (refused, timeout, DNS, TLS)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import ssl
import struct
from dataclasses import dataclass
from enum import StrEnum

from .runtime import Target

__all__ = [
    "Stop",
    "StopReason",
    "close",
    "ends",
    "reset",
    "send",
    "upstream_error",
]


class StopReason(StrEnum):
    """Why the proxy ended a relay itself."""

    IDLE = "idle timeout"
    WRITE = "write timeout"
    RESET = "connection reset"
    SHUTDOWN = "shutdown"


@dataclass(frozen=True, slots=True)
class Stop:
    """The proxy ends a relay itself: why, the side concerned (None: both), and the log text."""

    reason: StopReason
    client: bool | None
    text: str


def reset(transport: asyncio.BaseTransport) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a reset is passed on as a reset."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if isinstance(transport, asyncio.Transport):
        transport.abort()
    else:
        transport.close()


def close(transport: asyncio.Transport, half: bool) -> None:
    """FIN towards a peer: half-close (the other direction goes on) or close."""
    if transport.is_closing():
        return
    if half and transport.can_write_eof():
        try:
            transport.write_eof()
            return
        except (OSError, RuntimeError):  # the peer is already gone (reset)
            pass
    transport.close()


def send(transport: asyncio.Transport, data: bytes) -> bool:
    """Write without waiting, if the transport still takes data (best effort, for aborts)."""
    if transport.is_closing():
        return False
    try:
        transport.write(data)
    except (RuntimeError, OSError):  # after write_eof, or the socket is gone
        return False
    return True


Address = tuple[str, int]


def ends(transport: asyncio.Transport) -> tuple[Address, Address]:
    """The local and remote address of a connection just made. A peer that reset it as it
    opened leaves the socket without them (asyncio then reports None): that is a connection
    failure like any other (ConnectionResetError), and the transport is aborted."""
    local, remote = transport.get_extra_info("sockname"), transport.get_extra_info("peername")
    if not local or not remote:
        transport.abort()
        raise ConnectionResetError(errno.ECONNRESET, "connection reset as it was made")
    return (str(local[0]), int(local[1])), (str(remote[0]), int(remote[1]))


def upstream_error(exc: BaseException, target: Target, timeout: float) -> str:
    """Why the upstream could not be reached, in the words of the failure classes."""
    where = str(target.address)
    if isinstance(exc, TimeoutError):
        return f"upstream {where}: timeout (no connection after {timeout:g} s)"
    if isinstance(exc, socket.gaierror):
        return f"upstream {where}: DNS: cannot resolve {target.address.host} ({exc.strerror})"
    if isinstance(exc, ssl.SSLError):
        return f"upstream {where}: TLS: {exc.reason or exc}"
    if target.tls is not None and isinstance(exc, ConnectionResetError | BrokenPipeError):
        # The TCP connect worked (a refusal is ConnectionRefusedError): the handshake failed.
        return f"upstream {where}: TLS: handshake failed ({exc.strerror or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return f"upstream {where}: refused"
    if isinstance(exc, OSError):
        return f"upstream {where}: {exc.strerror or exc}"
    return f"upstream {where}: {exc}"
