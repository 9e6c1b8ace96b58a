"""The capture rewritten packet by packet, written as pcapng with dpkt.

Each TCP segment's payload is patched where the :class:`~analyzer.anonymize.locate.Edit` s
of its stream fall (found by the stream offset of its first byte, the same for a
retransmission as for the original); every other byte of the packet stays as it was, so
sizes, sequence numbers, flags, options and timings are those of the original. Checksums of
the packets touched are computed again (IPv4 header, TCP over its pseudo-header). With
host pseudonyms, IP and MAC addresses are replaced too. The TCP payload of a connection that
carried no DICOM, and of an IP fragment, cannot be checked for PHI: it is zeroed and counted
(but for the first 16 bytes of a stream that opens with a TLS record: record and handshake
headers, which show that a side spoke TLS).

Packets are parsed with dpkt and the file is written with dpkt's pcapng writer: one
Interface Description Block per link type (nanosecond timestamps), the original timestamps and
lengths (a packet the snap length cut stays cut), and a comment in the Section Header Block
that says what was changed.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import dpkt
from dpkt import pcapng

from analyzer.model import is_tls_record

from .hosts import AddressMap
from .locate import Edit

_LINK_HEADER = {1: 14, 113: 16, 276: 20, 101: 0, 228: 0, 229: 0, 12: 0, 14: 0, 0: 4, 108: 4}
_VLAN = frozenset({0x8100, 0x88A8, 0x9100, 0x9200, 0x9300})
_TCP = 6
#: Bytes kept at the start of a connection without DICOM that opens with a TLS record (the
#: record and handshake headers: how an analysis tells that a side spoke TLS).
_TLS_HEAD = 16

Where = tuple[int, bool, int, bool]
"""(connection, from_requestor, stream offset of the payload's first byte, carries DICOM)."""


class _Epb(pcapng.EnhancedPacketBlockLE):  # type: ignore[misc]
    """An Enhanced Packet Block that keeps the original length of a packet the snap length
    cut (dpkt's sets it to the captured length, which would turn the cut into a shorter
    packet)."""

    def __bytes__(self) -> bytes:
        original = self.pkt_len
        data: bytes = super().__bytes__()
        if original > self.caplen:
            data = data[:24] + struct.pack("<I", original) + data[28:]
        return data


@dataclass(slots=True)
class PacketCounts:
    packets: int = 0
    rewritten: int = 0
    payload_bytes_edited: int = 0
    other_payload_zeroed: int = 0
    """TCP payload bytes of connections without DICOM, and of IP fragments, zeroed."""


class PcapngOut:
    """A pcapng file written with dpkt: ``comment`` goes in its Section Header Block."""

    def __init__(self, out: BinaryIO, comment: str, application: str) -> None:
        self._out = out
        self._comment = comment
        self._application = application
        self._writer: Any = None
        self._interfaces: dict[int, int] = {}
        self._epb = _Epb()  # one block, filled for each packet (building one costs more)

    def _idb(self, linktype: int) -> Any:
        return pcapng.InterfaceDescriptionBlockLE(
            linktype=linktype,
            snaplen=0,
            opts=[
                pcapng.PcapngOptionLE(code=pcapng.PCAPNG_OPT_IF_TSRESOL, data=b"\x09"),
                pcapng.PcapngOptionLE(code=pcapng.PCAPNG_OPT_ENDOFOPT),
            ],
        )

    def write(self, ts: int, linktype: int, data: bytes, orig_len: int) -> None:
        iface = self._interfaces.get(linktype)
        if iface is None:
            idb = self._idb(linktype)
            if self._writer is None:
                shb = pcapng.SectionHeaderBlockLE(
                    opts=[
                        pcapng.PcapngOptionLE(code=pcapng.PCAPNG_OPT_COMMENT, text=self._comment),
                        pcapng.PcapngOptionLE(
                            code=pcapng.PCAPNG_OPT_SHB_USERAPPL, text=self._application
                        ),
                        pcapng.PcapngOptionLE(code=pcapng.PCAPNG_OPT_ENDOFOPT),
                    ]
                )
                self._writer = pcapng.Writer(self._out, linktype=linktype, shb=shb, idb=idb)
            else:
                self._out.write(bytes(idb))
            iface = self._interfaces[linktype] = len(self._interfaces)
        epb = self._epb
        epb.iface_id = iface
        epb.ts_high = ts >> 32
        epb.ts_low = ts & 0xFFFFFFFF
        epb.caplen = len(data)
        epb.pkt_len = max(orig_len, len(data))
        epb.pkt_data = data
        self._writer.writepkt(epb)

    def close(self) -> None:
        if self._writer is None:  # no packet at all: still a valid, empty file
            self._writer = pcapng.Writer(
                self._out,
                shb=pcapng.SectionHeaderBlockLE(
                    opts=[
                        pcapng.PcapngOptionLE(code=pcapng.PCAPNG_OPT_COMMENT, text=self._comment),
                        pcapng.PcapngOptionLE(code=pcapng.PCAPNG_OPT_ENDOFOPT),
                    ]
                ),
                idb=self._idb(1),
            )
        self._out.flush()


class Rewriter:
    """Rewrites packets: ``where`` tells, for a frame, which stream its TCP payload belongs
    to (None: not a TCP segment of a connection seen); ``edits`` are every stream's edits in
    offset order; ``hosts`` the address pseudonyms, if asked for."""

    def __init__(
        self,
        edits: dict[tuple[int, bool], list[Edit]],
        where: Callable[[int], Where | None],
        hosts: AddressMap | None = None,
    ) -> None:
        self._edits = edits
        self._starts = {k: [e.offset for e in v] for k, v in edits.items()}
        self._where = where
        self._hosts = hosts
        self.counts = PacketCounts()

    def rewrite(self, frame: int, linktype: int, data: bytes) -> bytes:
        """The packet ``data`` of ``frame``, de-identified."""
        self.counts.packets += 1
        ip_start = _ip_start(linktype, data)
        if ip_start is None or ip_start >= len(data):
            return data
        version = data[ip_start] >> 4
        if version not in (4, 6):
            return data
        buf = bytearray(data)
        changed = False
        if self._hosts is not None:
            changed = self._pseudonymize(buf, linktype, ip_start, version)
        tcp = _tcp_payload(buf, ip_start, version)
        if tcp is not None:
            tcp_start, start, end, fragment = tcp
            where = None if fragment else self._where(frame)
            if start < end:
                if where is None or not where[3]:
                    if where is not None and where[2] == 0 and is_tls_record(bytes(buf[start:end])):
                        # What says "this side spoke TLS" stays: a record header, no PHI.
                        start = min(end, start + _TLS_HEAD)
                    if any(buf[start:end]):
                        buf[start:end] = bytes(end - start)
                        self.counts.other_payload_zeroed += end - start
                        changed = True
                elif self._patch(buf, where, start, end):
                    changed = True
            if changed and not fragment:
                _tcp_checksum(buf, ip_start, version, tcp_start)
        if changed:
            if version == 4:
                _ipv4_checksum(buf, ip_start)
            self.counts.rewritten += 1
            return bytes(buf)
        return data

    def _patch(self, buf: bytearray, where: Where, start: int, end: int) -> bool:
        connection, from_requestor, offset, _ = where
        key = (connection, from_requestor)
        edits = self._edits.get(key)
        if not edits:
            return False
        stop = offset + end - start
        starts = self._starts[key]
        i = max(0, bisect.bisect_right(starts, offset) - 1)
        changed = False
        # Edits are short, but a zero run may be long: step back over any that reach here.
        while i > 0 and edits[i - 1].offset + edits[i - 1].length > offset:
            i -= 1
        # By index: a stream may have many edits, and this runs for each of its packets.
        for n in range(i, len(edits)):
            e = edits[n]
            if e.offset >= stop:
                break
            lo, hi = max(e.offset, offset), min(e.offset + e.length, stop)
            if lo >= hi:
                continue
            a, b = start + lo - offset, start + hi - offset
            new = bytes(hi - lo) if e.data is None else e.data[lo - e.offset : hi - e.offset]
            if buf[a:b] != new:
                buf[a:b] = new
                self.counts.payload_bytes_edited += hi - lo
                changed = True
        return changed

    def _pseudonymize(self, buf: bytearray, linktype: int, ip_start: int, version: int) -> bool:
        hosts = self._hosts
        assert hosts is not None
        before = bytes(buf)
        if linktype == 1 and len(buf) >= 12:
            buf[0:6] = hosts.mac(bytes(buf[0:6]))
            buf[6:12] = hosts.mac(bytes(buf[6:12]))
        if version == 4 and len(buf) >= ip_start + 20:
            for at in (ip_start + 12, ip_start + 16):
                buf[at : at + 4] = hosts.ip(bytes(buf[at : at + 4]))
        elif version == 6 and len(buf) >= ip_start + 40:
            for at in (ip_start + 8, ip_start + 24):
                buf[at : at + 16] = hosts.ip(bytes(buf[at : at + 16]))
        return bytes(buf) != before


def _ip_start(linktype: int, data: bytes) -> int | None:
    """Where the IP header starts in a frame of ``linktype`` (None: not IP, or unknown)."""
    base = _LINK_HEADER.get(linktype)
    if base is None or len(data) < base + 1:
        return None
    if linktype == 1:
        ethertype = struct.unpack_from("!H", data, 12)[0]
        while ethertype in _VLAN and len(data) >= base + 4:
            ethertype = struct.unpack_from("!H", data, base + 2)[0]
            base += 4
        return base if ethertype in (0x0800, 0x86DD) else None
    return base


def _tcp_payload(buf: bytearray, ip_start: int, version: int) -> tuple[int, int, int, bool] | None:
    """(TCP header start, payload start, payload end, IP fragment) of a TCP segment; None
    for anything else. The end comes from the IP length, not the frame's (Ethernet padding
    is not payload). IPv4, the bulk of any capture, is read from its fixed header; IPv6
    (extension headers) with dpkt."""
    if version == 4:
        if len(buf) < ip_start + 20 or buf[ip_start + 9] != _TCP:
            return None
        ihl = (buf[ip_start] & 0x0F) * 4
        total, flags_offset = struct.unpack_from("!H2xH", buf, ip_start + 2)
        tcp_start = ip_start + ihl
        ip_end = min(len(buf), ip_start + total)
        if flags_offset & 0x3FFF:  # more fragments, or not the first one
            return tcp_start, tcp_start, ip_end, True
    else:
        try:
            ip6 = dpkt.ip6.IP6(bytes(buf[ip_start:]))
        except (dpkt.UnpackError, struct.error, ValueError):
            return None
        if not isinstance(ip6.data, dpkt.tcp.TCP):
            if ip6.nxt == 44 or 44 in getattr(ip6, "extension_hdrs", {}):
                return ip_start + 40, ip_start + 40, len(buf), True
            return None
        ip_end = min(len(buf), ip_start + 40 + ip6.plen)
        if ip_end != ip_start + 40 + ip6.plen:
            return None
        tcp_start = ip_end - len(bytes(ip6.data))
    if tcp_start + 20 > len(buf):
        return None
    offset = (buf[tcp_start + 12] >> 4) * 4
    start = tcp_start + offset
    return tcp_start, min(start, ip_end), ip_end, False


def _ones_sum(data: bytes | bytearray | memoryview) -> int:
    """The 16-bit ones' complement sum of ``data`` (RFC 1071), in network byte order.

    Read as one big-endian number, ``data`` is the sum of its 16-bit words times powers of
    2**16, and 2**16 is 1 modulo 0xFFFF: the end-around-carry sum is that number modulo
    0xFFFF (0xFFFF rather than 0 unless every byte is zero), computed in C."""
    number = int.from_bytes(data, "big")
    if len(data) % 2:
        number <<= 8
    total = number % 0xFFFF
    return 0xFFFF if total == 0 and number else total


def _tcp_checksum(buf: bytearray, ip_start: int, version: int, tcp_start: int) -> None:
    if version == 4:
        total = struct.unpack_from("!H", buf, ip_start + 2)[0]
        end = ip_start + total
        if end > len(buf):
            return  # cut by the snap length: the checksum cannot be computed
        pseudo = bytes(buf[ip_start + 12 : ip_start + 20]) + struct.pack(
            "!BBH", 0, _TCP, end - tcp_start
        )
    else:
        plen = struct.unpack_from("!H", buf, ip_start + 4)[0]
        end = ip_start + 40 + plen
        if end > len(buf):
            return
        pseudo = bytes(buf[ip_start + 8 : ip_start + 40]) + struct.pack(
            "!IxxxB", end - tcp_start, _TCP
        )
    buf[tcp_start + 16 : tcp_start + 18] = b"\x00\x00"
    total = _ones_sum(pseudo) + _ones_sum(memoryview(buf)[tcp_start:end])
    total = (total & 0xFFFF) + (total >> 16)
    struct.pack_into("!H", buf, tcp_start + 16, ~total & 0xFFFF)


def _ipv4_checksum(buf: bytearray, ip_start: int) -> None:
    hl = (buf[ip_start] & 0x0F) * 4
    if ip_start + hl > len(buf):
        return
    buf[ip_start + 10 : ip_start + 12] = b"\x00\x00"
    struct.pack_into("!H", buf, ip_start + 10, ~_ones_sum(buf[ip_start : ip_start + hl]) & 0xFFFF)
