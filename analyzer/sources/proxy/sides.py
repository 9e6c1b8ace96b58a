"""One socket of a relayed connection, as an asyncio protocol with two modes.

While the session decides (reading the A-ASSOCIATE-RQ, connecting upstream) a :class:`Side`
buffers what arrives and hands it out through :meth:`Side.read`, pausing the socket beyond
:data:`BUFFER_LIMIT`. Once the relay starts, every chunk the transport reads goes straight to
``forward`` (no queue, no copy: the very ``bytes`` object asyncio received). The size of a
read follows the traffic (:data:`SMALL_READ` to :data:`READ_SIZE`): asyncio reads into a new
``bytes`` of that size, and the allocator maps buffers above 128 KiB afresh each time (see
:mod:`analyzer.sources.heap`), which for a C-ECHO would cost more than relaying it; a bulk
transfer soon reads a megabyte at a time. Flow control is the transport's own: when the other
side's transport buffers more than its high-water mark, asyncio calls its protocol's
``pause_writing`` and the session stops reading this side until ``resume_writing``. That is the
backpressure, in callbacks rather than in a coroutine per direction, which on a small machine
leaves more CPU to the peers.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any, cast

__all__ = ["BUFFER_LIMIT", "Side", "SideEvents"]

#: Bytes a side buffers while the session decides, before it stops reading the socket.
BUFFER_LIMIT = 1 << 20
#: Bytes a side may hold for its peer before the relay stops reading the other side. asyncio's
#: default (64 KiB) stalls a fast transfer every few segments; this keeps the pipe full while
#: bounding the memory of a connection to a few MiB whatever its PDUs.
WRITE_HIGH_WATER = 4 << 20
#: Bytes read from a socket per wake-up, at most (a bulk transfer: fewer wake-ups per
#: megabyte relayed) ...
READ_SIZE = 1 << 20
#: ... and at least (small PDUs: a buffer the allocator takes from its heap).
SMALL_READ = 64 << 10


def _tune(transport: asyncio.Transport) -> None:
    """Deep write buffers: fewer wake-ups per megabyte relayed."""
    transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)


def _set_read_size(transport: asyncio.Transport, size: int) -> bool:
    """Have the transport read up to ``size`` bytes per wake-up. Selector transports read at
    most ``max_size`` bytes (256 KiB by default); the attribute is not part of the public
    Transport interface, and others (TLS) have none: False then."""
    if not hasattr(transport, "max_size"):
        return False
    cast(Any, transport).max_size = size
    return True


class SideEvents:
    """What a side reports once relaying (implemented by the session)."""

    def relay_data(self, side: Side, data: bytes) -> None:
        """``data`` arrived on ``side``."""

    def relay_eof(self, side: Side) -> None:
        """``side``'s peer closed its half (FIN)."""

    def relay_lost(self, side: Side, exc: Exception | None) -> None:
        """``side``'s connection is gone (``exc``: reset or error)."""

    def relay_paused(self, side: Side) -> None:
        """``side``'s transport is full: stop feeding it."""

    def relay_resumed(self, side: Side) -> None:
        """``side``'s transport drained."""


class Side(asyncio.Protocol):
    """A socket of the relay: the client's (``is_client``) or the upstream's."""

    def __init__(
        self,
        is_client: bool,
        on_made: Callable[[Side], None] | None = None,
        *,
        tls_pending: bool = False,
    ) -> None:
        self.is_client = is_client
        self.transport: asyncio.Transport | None = None
        self.events: SideEvents | None = None
        """Set when the relay starts; from then on data goes to ``events`` directly."""
        self.eof = False
        self.lost = False
        self.error: Exception | None = None
        self.write_paused = False
        self._tls = False
        self._tls_pending = tls_pending
        self._on_made = on_made
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._read_size = 0
        """The transport's read size (0: not adjustable)."""

    # --- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        _tune(transport)
        self._read_size = SMALL_READ if _set_read_size(transport, SMALL_READ) else 0
        self._tls = transport.get_extra_info("sslcontext") is not None
        if self._tls_pending:
            transport.pause_reading()  # the ClientHello is for the TLS layer, not for us
        if self._on_made is not None:
            self._on_made(self)

    def data_received(self, data: bytes) -> None:
        size = self._read_size
        if size and (
            (len(data) == size and size < READ_SIZE)
            or (len(data) < size // 8 and size > SMALL_READ)
        ):
            self._adjust(len(data))
        if self.events is not None:
            self.events.relay_data(self, data)
            return
        self._chunks.append(data)
        self._size += len(data)
        if self._size > BUFFER_LIMIT and self.transport is not None:
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        if self.events is not None:
            self.events.relay_eof(self)
        self._wake()
        # Keep the other half open: a half-close is passed on as one (TLS closes whole).
        return not self._tls

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.error = exc
        if self.events is not None:
            self.events.relay_lost(self, exc)
        self._wake()
        self._release_drain()

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.events is not None:
            self.events.relay_paused(self)

    def resume_writing(self) -> None:
        self.write_paused = False
        self._release_drain()
        if self.events is not None:
            self.events.relay_resumed(self)

    def _adjust(self, read: int) -> None:
        """A read filled the buffer: double it; a read took less than an eighth: halve it."""
        assert self.transport is not None
        size = self._read_size
        size = min(size * 2, READ_SIZE) if read == size else max(size // 2, SMALL_READ)
        self._read_size = size
        _set_read_size(self.transport, size)

    # --- before the relay ----------------------------------------------------------

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _release_drain(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    async def read(self) -> bytes:
        """The next chunk (b"" at end of stream); raises ConnectionResetError if reset."""
        while not self._chunks:
            if self.error is not None:
                raise ConnectionResetError(str(self.error))
            if self.eof or self.lost:
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = self._chunks.popleft()
        self._size -= len(data)
        if self._size <= BUFFER_LIMIT and self.transport is not None and not self.lost:
            self.transport.resume_reading()
        return data

    async def start_tls(self, context: ssl.SSLContext) -> None:
        """Terminate TLS on this (server-side) connection; raises on a failed handshake.
        (The caller bounds the time it takes.)"""
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        transport = await loop.start_tls(self.transport, self, context, server_side=True)
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        _tune(transport)
        self._read_size = 0  # TLS reads its records its own way
        self._tls = True
        self._tls_pending = False

    def take_buffered(self) -> list[bytes]:
        """What arrived and was not read yet (handed to the relay when it starts)."""
        chunks = list(self._chunks)
        self._chunks.clear()
        self._size = 0
        return chunks

    async def drain(self) -> None:
        """Wait until the transport takes more (or the connection is gone)."""
        if self.write_paused and not self.lost:
            self._drain = asyncio.get_running_loop().create_future()
            await self._drain
        if self.lost:
            raise ConnectionResetError("connection lost")

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)
