"""What the proxy relayed, as a pcapng file that Wireshark, tshark and ``dicomtap analyze`` read.

The proxy sees byte streams, not packets, so it synthesizes them: Ethernet, IPv4 or IPv6 and
TCP headers with consistent sequence and acknowledgement numbers, a three-way handshake when
a connection opens, FIN or RST when it closes, and payloads cut at :data:`MAX_PAYLOAD` bytes
per packet. Two interfaces: IDB 0 is the *client leg* (client ↔ the proxy's listen address),
IDB 1 the *upstream leg* (the proxy's upstream socket ↔ the upstream). Timestamps are the
real times the bytes were read or written, in nanoseconds (``if_tsresol`` = 9).

:class:`PcapngWriter` streams: it holds no packet after writing it, and flushes on request
(the proxy flushes once a second and whenever an association ends). With ``max_size`` it
rotates: ``relay.pcapng``, then ``relay.1.pcapng``, ``relay.2.pcapng`` ... keeping the newest
``keep`` files. Frame numbers continue across files, as ``dicomtap analyze`` numbers them
when it reads the files in order.
"""

from __future__ import annotations

import ipaddress
import os
import random
import struct
from collections.abc import Sequence
from enum import IntEnum
from pathlib import Path
from typing import BinaryIO

from analyzer.sources.pcap import BlockType

__all__ = ["MAX_PAYLOAD", "Interface", "PcapngWriter", "TcpLeg"]

#: Payload bytes per synthesized packet (an IPv4 datagram holds at most 65,515).
MAX_PAYLOAD = 65_000

_BYTE_ORDER_MAGIC = 0x1A2B3C4D
_EPB = int(BlockType.EPB)  # packed for every packet
_LINKTYPE_ETHERNET = 1
_OPT_END = 0
_OPT_SHB_USERAPPL = 4
_OPT_IF_NAME = 2
_OPT_IF_DESCRIPTION = 3
_OPT_IF_TSRESOL = 9

_EPB_HEAD = struct.Struct("<IIIIIII")  # type, total length, interface, ts high, ts low, caplen, len
_U32 = struct.Struct("<I")

FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10


class Interface(IntEnum):
    """The two interfaces of the file."""

    CLIENT_LEG = 0
    UPSTREAM_LEG = 1


def _option(code: int, value: bytes) -> bytes:
    pad = -len(value) % 4
    return struct.pack("<HH", code, len(value)) + value + bytes(pad)


def _block(block_type: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + _U32.pack(total)


def _header_blocks(application: str) -> bytes:
    shb = _block(
        BlockType.SHB,
        struct.pack("<IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1)
        + _option(_OPT_SHB_USERAPPL, application.encode())
        + _option(_OPT_END, b""),
    )
    idbs = b""
    for name, description in (
        ("client leg", "client <-> proxy listen address"),
        ("upstream leg", "proxy upstream socket <-> upstream"),
    ):
        idbs += _block(
            BlockType.IDB,
            struct.pack("<HHI", _LINKTYPE_ETHERNET, 0, 0)
            + _option(_OPT_IF_NAME, name.encode())
            + _option(_OPT_IF_DESCRIPTION, description.encode())
            + _option(_OPT_IF_TSRESOL, bytes((9,)))
            + _option(_OPT_END, b""),
        )
    return shb + idbs


class PcapngWriter:
    """Streams packets into a pcapng file (with rotation by size)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_size: int | None = None,
        keep: int = 10,
        application: str = "dicomtap proxy",
    ) -> None:
        self.path = Path(path)
        self.max_size = max_size
        self.keep = keep
        self.frames = 0
        """Packets written so far (the frame number of the last one)."""
        self.files: list[Path] = []
        self._header = _header_blocks(application)
        self._index = 0
        self._size = 0
        self._file: BinaryIO = self._open(self.path)

    def _open(self, path: Path) -> BinaryIO:
        # Captures hold what patients' images and names look like: owner-only permissions.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        f = os.fdopen(fd, "wb", buffering=1 << 20)
        f.write(self._header)
        self._size = len(self._header)
        self.files.append(path)
        return f

    def _rotate(self) -> None:
        self._file.close()
        self._index += 1
        stem = self.path.name.removesuffix(".pcapng")
        path = self.path.with_name(f"{stem}.{self._index}.pcapng")
        self._file = self._open(path)
        while len(self.files) > self.keep:
            old = self.files.pop(0)
            old.unlink(missing_ok=True)

    def packet(self, interface: Interface, ts: int, parts: Sequence[bytes | memoryview]) -> int:
        """Write one packet (the concatenation of ``parts``); returns its frame number."""
        length = sum(len(p) for p in parts)
        pad = -length % 4
        total = 32 + length + pad
        f = self._file
        f.write(_EPB_HEAD.pack(_EPB, total, interface, ts >> 32, ts & 0xFFFFFFFF, length, length))
        for part in parts:
            f.write(part)
        f.write(bytes(pad) + _U32.pack(total))
        self._size += total
        self.frames += 1
        if self.max_size is not None and self._size >= self.max_size:
            self._rotate()
        return self.frames

    def flush(self) -> None:
        """Push what was written to the operating system."""
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        """Flush and close the current file."""
        if not self._file.closed:
            self._file.close()


_ETH = struct.Struct(">6s6sH")
_IP4 = struct.Struct(">BBHHHBBH4s4s")
_IP6 = struct.Struct(">IHBB16s16s")
_TCP = struct.Struct(">HHIIBBHHH")
_MAC_CLIENT = bytes.fromhex("020000000001")
_MAC_SERVER = bytes.fromhex("020000000002")


def _ip4_checksum(header: bytes) -> int:
    total: int = sum(struct.unpack(">10H", header))
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class TcpLeg:
    """One TCP connection as synthesized packets on one interface.

    ``client``/``server`` are ``(ip, port)``. With ``writer`` None nothing is written and
    every frame number is None, so the caller has one code path whether or not it captures.
    """

    def __init__(
        self,
        writer: PcapngWriter | None,
        interface: Interface,
        client: tuple[str, int],
        server: tuple[str, int],
    ) -> None:
        self.writer = writer
        self.interface = interface
        c_ip = ipaddress.ip_address(client[0])
        s_ip = ipaddress.ip_address(server[0])
        if c_ip.version != s_ip.version:  # e.g. an IPv4-mapped peer: show both as IPv6
            c_ip = ipaddress.IPv6Address(f"::ffff:{c_ip}") if c_ip.version == 4 else c_ip
            s_ip = ipaddress.IPv6Address(f"::ffff:{s_ip}") if s_ip.version == 4 else s_ip
        self._v6 = c_ip.version == 6
        # As a capture reader will print them (no IPv6 scope, mapped form kept).
        self.client_ip = str(ipaddress.ip_address(c_ip.packed))
        self.server_ip = str(ipaddress.ip_address(s_ip.packed))
        self._addr = (c_ip.packed, s_ip.packed)
        ethertype = 0x86DD if self._v6 else 0x0800
        self._eth = (  # from the client, from the server
            _ETH.pack(_MAC_SERVER, _MAC_CLIENT, ethertype),
            _ETH.pack(_MAC_CLIENT, _MAC_SERVER, ethertype),
        )
        self._port = (client[1], server[1])
        self._seq = [random.getrandbits(32), random.getrandbits(32)]  # next seq per side
        self._fin = [False, False]
        self._ident = 0

    def _frame(
        self, from_client: bool, ts: int, flags: int, payload: bytes | memoryview = b""
    ) -> int:
        assert self.writer is not None
        i = 0 if from_client else 1
        src, dst = self._addr[i], self._addr[1 - i]
        seq = self._seq[i]
        ack = self._seq[1 - i] if flags & ACK else 0
        tcp = _TCP.pack(self._port[i], self._port[1 - i], seq, ack, 5 << 4, flags, 65535, 0, 0)
        length = len(tcp) + len(payload)
        if self._v6:
            ip = _IP6.pack(0x60000000, length, 6, 64, src, dst)
        else:
            self._ident = (self._ident + 1) & 0xFFFF
            ip = _IP4.pack(0x45, 0, 20 + length, self._ident, 0x4000, 64, 6, 0, src, dst)
            ip = ip[:10] + _ip4_checksum(ip).to_bytes(2, "big") + ip[12:]
        return self.writer.packet(self.interface, ts, (self._eth[i] + ip + tcp, payload))

    def open(self, ts: int) -> int | None:
        """The three-way handshake; returns the SYN's frame number."""
        if self.writer is None:
            return None
        frame = self._frame(True, ts, SYN)
        self._seq[0] = (self._seq[0] + 1) & 0xFFFFFFFF
        self._frame(False, ts, SYN | ACK)
        self._seq[1] = (self._seq[1] + 1) & 0xFFFFFFFF
        self._frame(True, ts, ACK)
        return frame

    def data(
        self, from_client: bool, ts: int, payload: bytes
    ) -> list[tuple[int | None, memoryview]]:
        """Packets for ``payload``: ``(frame, bytes)`` per packet, in order."""
        view = memoryview(payload)
        if self.writer is None:
            return [(None, view)]
        out: list[tuple[int | None, memoryview]] = []
        i = 0 if from_client else 1
        for start in range(0, len(view), MAX_PAYLOAD):
            chunk = view[start : start + MAX_PAYLOAD]
            out.append((self._frame(from_client, ts, PSH | ACK, chunk), chunk))
            self._seq[i] = (self._seq[i] + len(chunk)) & 0xFFFFFFFF
        return out

    def fin(self, from_client: bool, ts: int) -> int | None:
        """The side closes its half (FIN)."""
        i = 0 if from_client else 1
        if self.writer is None or self._fin[i]:
            return None
        self._fin[i] = True
        frame = self._frame(from_client, ts, FIN | ACK)
        self._seq[i] = (self._seq[i] + 1) & 0xFFFFFFFF
        return frame

    def rst(self, from_client: bool, ts: int) -> int | None:
        """The side resets the connection."""
        if self.writer is None:
            return None
        return self._frame(from_client, ts, RST | ACK)
