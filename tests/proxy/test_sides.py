"""A side's reads follow the traffic: small while PDUs are small (a buffer the allocator
keeps), up to a megabyte for a bulk transfer, on a real socket pair."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from analyzer.sources.proxy.sides import READ_SIZE, SMALL_READ, Side, SideEvents


class _Count(SideEvents):
    def __init__(self) -> None:
        self.got = 0
        self.sizes: list[int] = []

    def relay_data(self, side: Side, data: bytes) -> None:
        self.got += len(data)
        self.sizes.append(len(data))


def test_read_size_grows_for_bulk_and_shrinks_for_small_pdus() -> None:
    async def main() -> tuple[int, int, int, int, int]:
        loop = asyncio.get_running_loop()
        with socket.create_server(("127.0.0.1", 0)) as server:
            b = socket.create_connection(server.getsockname())
            a, _ = server.accept()
        a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        b.setblocking(False)
        transport, side = await loop.connect_accepted_socket(lambda: Side(True), a)
        events = _Count()
        side.events = events
        first = int(getattr(transport, "max_size"))  # noqa: B009 (not public API)
        largest = total = 0
        try:
            for _ in range(32):  # a bulk transfer: data waits for every read
                transport.pause_reading()
                await loop.sock_sendall(b, bytes(2 << 20))
                total += 2 << 20
                await asyncio.sleep(0.01)
                transport.resume_reading()
                while events.got < total:
                    await asyncio.sleep(0.001)
                largest = max(largest, int(getattr(transport, "max_size")))  # noqa: B009
            for _ in range(20):  # then C-ECHO-sized PDUs, one at a time
                await loop.sock_sendall(b, bytes(100))
                total += 100
                while events.got < total:
                    await asyncio.sleep(0.001)
            last = int(getattr(transport, "max_size"))  # noqa: B009
        finally:
            transport.close()
            b.close()
        return first, largest, last, events.got, total

    first, largest, last, got, total = asyncio.run(main())
    assert got == total
    assert (first, largest, last) == (SMALL_READ, READ_SIZE, SMALL_READ)


def test_a_transport_without_a_read_size_is_left_alone() -> None:
    class Plain(asyncio.Transport):
        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return default

        def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
            pass

    side = Side(True)
    side.connection_made(Plain())
    side.events = events = _Count()
    side.data_received(bytes(SMALL_READ))  # would double a selector transport's read size
    assert events.sizes == [SMALL_READ] and not hasattr(side.transport, "max_size")
