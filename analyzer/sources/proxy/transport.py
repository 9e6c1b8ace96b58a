"""Socket-level helpers of a relay: closing with FIN or RST, best-effort writes, reading one
whole PDU before the relay starts, and the words for why an upstream could not be reached
(refused, timeout, DNS, TLS)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from dissectors.pdu import PDU_HEADER

from .config import RQ_BUFFER_LIMIT
from .runtime import Target

__all__ = [
    "Stop",
    "StopReason",
    "close",
    "read_pdu",
    "reset",
    "send",
    "upstream_error",
    "whole_length",
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


def whole_length(head: bytes, pdu_type: int) -> int:
    """The length, header included, of the PDU whose header begins ``head`` (6 bytes at
    least); 0 when it is not of ``pdu_type`` or would exceed :data:`RQ_BUFFER_LIMIT` (the
    only buffering the proxy does)."""
    kind, _, length = PDU_HEADER.unpack_from(head, 0)
    return length + 6 if kind == pdu_type and length + 6 <= RQ_BUFFER_LIMIT else 0


async def read_pdu(
    read: Callable[[], Awaitable[bytes]], pdu_type: int, record: Callable[[bytes], None]
) -> tuple[bytes, int, bool]:
    """Read until a whole PDU of ``pdu_type`` is there.

    Returns ``(bytes read, that PDU's length with its header, eof)``; the length is 0 when
    the stream does not start with such a PDU or it is too large (:func:`whole_length`).
    ``record`` sees each chunk as it arrives."""
    chunks: list[bytes] = []
    size = 0
    need = 0  # known once the header is there
    while True:
        if not need and size >= 6:
            need = whole_length(chunks[0] if len(chunks[0]) >= 6 else b"".join(chunks), pdu_type)
            if not need:
                return b"".join(chunks), 0, False
        if need and size >= need:
            return b"".join(chunks), need, False
        more = await read()
        if not more:
            return b"".join(chunks), 0, True
        record(more)
        chunks.append(more)
        size += len(more)
