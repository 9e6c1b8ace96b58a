"""Writing small classic pcap files (Ethernet/IPv4/TCP) for tests, and reading their frames."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

SYN, ACK, FIN, RST, PSH = 0x02, 0x10, 0x01, 0x04, 0x08

Frame = tuple[int, bytes, int]  # (ts_ns, captured bytes, length on the wire)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame(
    src: str, sport: int, dst: str, dport: int, seq: int, ack: int, flags: int, payload: bytes = b""
) -> bytes:
    """An Ethernet II / IPv4 / TCP frame."""
    s = bytes(int(x) for x in src.split("."))
    d = bytes(int(x) for x in dst.split("."))
    tcp = struct.pack(
        "!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0
    )
    pseudo = s + d + struct.pack("!BBH", 0, 6, len(tcp) + len(payload))
    csum = _checksum(pseudo + tcp + payload)
    tcp = tcp[:16] + struct.pack("!H", csum) + tcp[18:]
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp) + len(payload), 0, 0x4000, 64, 6, 0, s, d
    )
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + ip + tcp + payload


def write_pcap(path: Path, frames: Iterable[tuple[float, bytes]]) -> Path:
    """A classic microsecond pcap, link type Ethernet."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for ts, data in frames:
            sec = int(ts)
            usec = round((ts - sec) * 1e6)
            f.write(struct.pack("<IIII", sec, usec, len(data), len(data)) + data)
    return path


def read_classic(path: Path) -> tuple[int, list[Frame]]:
    """(link type, frames) of a little-endian classic pcap; independent of analyzer.sources."""
    data = path.read_bytes()
    magic, _, _, _, _, _, linktype = struct.unpack_from("<IHHiIII", data)
    scale = 1 if magic == 0xA1B23C4D else 1000
    frames: list[Frame] = []
    pos = 24
    while pos < len(data):
        sec, frac, caplen, orig = struct.unpack_from("<IIII", data, pos)
        frames.append((sec * 10**9 + frac * scale, data[pos + 16 : pos + 16 + caplen], orig))
        pos += 16 + caplen
    return linktype, frames


class Conversation:
    """A TCP connection's frames: handshake, data both ways, close."""

    def __init__(
        self, client: tuple[str, int], server: tuple[str, int], t0: float = 1_700_000_000.0
    ) -> None:
        self.c, self.s = client, server
        self.seq = {True: 1000, False: 5000}
        self.t = t0
        self.frames: list[tuple[float, bytes]] = []

    def _emit(self, from_client: bool, flags: int, payload: bytes = b"", dt: float = 0.001) -> None:
        self.t += dt
        src, dst = (self.c, self.s) if from_client else (self.s, self.c)
        ack = self.seq[not from_client] if flags & ACK else 0
        self.frames.append(
            (
                self.t,
                frame(src[0], src[1], dst[0], dst[1], self.seq[from_client], ack, flags, payload),
            )
        )
        self.seq[from_client] += len(payload) + (1 if flags & (SYN | FIN) else 0)

    def handshake(self) -> Conversation:
        self._emit(True, SYN)
        self._emit(False, SYN | ACK)
        self._emit(True, ACK)
        return self

    def send(
        self, from_client: bool, payload: bytes, mss: int = 1460, dt: float = 0.001
    ) -> Conversation:
        for i in range(0, len(payload), mss):
            self._emit(from_client, ACK | PSH, payload[i : i + mss], dt if i == 0 else 0.00001)
        return self

    def retransmit(self, from_client: bool, payload: bytes, dt: float) -> Conversation:
        """The last ``payload`` ``from_client`` sent, sent again ``dt`` seconds later."""
        self.seq[from_client] -= len(payload)
        self._emit(from_client, ACK | PSH, payload, dt)
        return self

    def reset(self, from_client: bool, dt: float = 0.001) -> Conversation:
        """A TCP reset (RST+ACK) by one side."""
        self._emit(from_client, RST | ACK, b"", dt)
        return self

    def close(self, from_client: bool = True) -> Conversation:
        self._emit(from_client, FIN | ACK)
        self._emit(not from_client, FIN | ACK)
        self._emit(from_client, ACK)
        return self
