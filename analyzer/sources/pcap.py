"""Capture files (pcap, pcapng) → TCP segments, streamed.

:class:`CaptureFile` opens a file, checks by its magic number (never its name) that it is a
capture, and streams its TCP segments (:meth:`CaptureFile.segments`) while
:attr:`CaptureFile.stats` counts what was read and skipped. :func:`read_packets` is the
record layer alone, for any binary stream, including a pipe from ``dumpcap -w -``.

Formats: classic pcap in its four variants (micro- or nanosecond timestamps, either byte
order) and pcapng (sections of either byte order; interfaces of different link types, each
with its own ``if_tsresol`` and ``if_tsoffset``; Enhanced, Simple and the obsolete Packet
blocks; Interface Statistics Blocks are kept in :attr:`CaptureStats.interface_statistics`;
other blocks are skipped). Frames are numbered from 1, counting every packet record as
Wireshark does.

Why not dpkt's readers: ``dpkt.pcapng.Reader`` handles a single interface only, and both
readers build Python objects per packet, several times slower than this module, which reads
1 MiB chunks into a refill buffer and decodes records in place with precompiled
:class:`struct.Struct` objects. The file is never read whole, and never seeked (a pipe works).

A capture cut short (a capture tool killed, a copy interrupted) is read up to the cut and
reported in :attr:`CaptureStats.truncation`; so is one that turns to garbage (a block with an
impossible length). Neither raises: what came before is still worth analysing.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import stat
import struct
import sys
import zlib
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from enum import IntEnum
from types import TracebackType
from typing import BinaryIO, Literal, TypeVar, cast

from analyzer.errors import InputError
from dissectors.tcp import Segment

from .packets import LINKTYPE_ETHERNET, DecodeStats, PacketDecoder, linktype_text

__all__ = [
    "CaptureFile",
    "CaptureStats",
    "InterfaceStatistics",
    "Shard",
    "in_time_order",
    "read_packets",
    "shard_of",
]

CHUNK = 1 << 20
"""Bytes asked of the file per read."""
MAX_RECORD = 16 << 20
"""The largest record or block accepted; a larger length means the file is damaged."""

Packet = tuple[int, int, int, bytes, int]
"""A record of :func:`read_packets`: (ts_ns, frame, linktype, data, orig_len)."""

_T = TypeVar("_T")
_Sink = Callable[[int, int, int, bytes, int, int, int], _T | None]

#: The packet comment of what a relay wrote on its own (``dicomtap proxy``'s A-ASSOCIATE-RJ,
#: A-ABORT, closes): a third party's bytes, so the outcome does not blame either AE.
INJECTED_COMMENT = "written by dicomtap proxy"
_INJECTED = INJECTED_COMMENT.encode()
_OPT_COMMENT = 1


def _injected(buf: bytes, pos: int, end: int, endian: str) -> bool:
    """Whether the options of a packet block, ``buf[pos:end]``, hold the comment of what a
    relay wrote itself."""
    while pos + 4 <= end:
        code, size = struct.unpack_from(endian + "HH", buf, pos)
        if code == 0:
            return False
        if code == _OPT_COMMENT and buf[pos + 4 : pos + 4 + size] == _INJECTED:
            return True
        pos += 4 + ((size + 3) & ~3)
    return False


def _marked(out: _T) -> _T:
    """``out`` as sent by a third party (a segment; anything else as it is)."""
    if isinstance(out, Segment):
        return cast(_T, out._replace(injected=True))
    return out


# Called with (ts_ns, frame, linktype, buffer, start, stop, orig_len) for each packet record,
# whose bytes are buffer[start:stop]; the readers yield what it returns, unless None.

_PCAP_MAGICS: dict[bytes, tuple[str, int]] = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000),  # microseconds, little-endian
    b"\xa1\xb2\xc3\xd4": (">", 1000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"  # the Section Header Block type, a palindrome
#: pcapng byte-order magic (in a Section Header Block) → struct byte order.
BYTE_ORDER = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}


class BlockType(IntEnum):
    """pcapng block types (the ones read here)."""

    SHB = 0x0A0D0D0A  # Section Header
    IDB = 1  # Interface Description
    PB = 2  # obsolete Packet Block
    SPB = 3  # Simple Packet
    ISB = 5  # Interface Statistics
    EPB = 6  # Enhanced Packet


# Plain ints under module names for the per-block comparisons of the read loop.
_SHB, _IDB, _PB, _SPB, _ISB, _EPB = (int(t) for t in BlockType)

#: Block types that hold a packet.
PACKET_BLOCKS = frozenset({BlockType.EPB, BlockType.SPB, BlockType.PB})
#: Blocks that hold no packet but that Wireshark (4.0) shows as frames all the same: systemd
#: journal entries, sysdig events, custom blocks. Counted, so that frame numbers match.
_EVENT_BLOCKS = frozenset({0x00000009, 0x00000204, 0x00000216, 0x00000221, 0x00000BAD, 0x40000BAD})

_OPT_TSRESOL = 9
_OPT_TSOFFSET = 14
#: Interface Statistics Block options with a 64-bit counter, and the field each one fills.
_ISB_COUNTERS = {
    4: "received",
    5: "dropped",
    6: "filter_accepted",
    7: "os_dropped",
    8: "delivered",
}


@dataclass(frozen=True, slots=True)
class InterfaceStatistics:
    """A pcapng Interface Statistics Block: one interface's counters, cumulative since the
    capture started (a capture tool writes one when it stops, e.g. dumpcap). A counter the
    block does not carry is None.
    """

    interface: int
    """The interface's index in its section."""
    ts: int | None
    """When the counters were taken (ns since the Unix epoch)."""
    received: int | None = None
    """``isb_ifrecv``: packets the interface received."""
    dropped: int | None = None
    """``isb_ifdrop``: packets dropped for lack of resources (a full capture buffer)."""
    filter_accepted: int | None = None
    """``isb_filteraccept``: packets the capture filter accepted."""
    os_dropped: int | None = None
    """``isb_osdrop``: packets the operating system dropped before the capture tool saw them."""
    delivered: int | None = None
    """``isb_usrdeliv``: packets delivered to the capture tool."""


@dataclass(slots=True)
class CaptureStats(DecodeStats):
    """What reading a capture found; updated while :meth:`CaptureFile.segments` streams.

    ``bytes_read`` is brought up to date at every read (every MiB), for a progress bar
    against ``file_size``; ``packets``, ``tcp_segments`` and ``last_ts`` just before every
    read and when the stream ends; the rest as they change.
    """

    format: Literal["pcap", "pcapng"] | None = None
    file_size: int | None = None
    """Bytes in the file, if it is a regular file."""
    bytes_read: int = 0
    packets: int = 0
    """Frames read (the number of the last one), as Wireshark numbers them."""
    tcp_segments: int = 0
    first_ts: int | None = None
    last_ts: int | None = None
    link_types: set[int] = field(default_factory=set)
    truncated: bool = False
    """The capture ends inside a record, or turns to garbage; what came before was read."""
    truncation: str | None = None
    """Says where and how, for a person."""
    interface_statistics: list[InterfaceStatistics] = field(default_factory=list)
    """Every Interface Statistics Block read (pcapng), in order; the counters are cumulative,
    so the last one per interface is the total."""

    def warnings(self) -> list[str]:
        """One line per kind of data that was skipped or lost (truncation aside)."""
        out: list[str] = []
        for linktype, count in sorted(self.unsupported_linktypes.items()):
            out.append(
                f"{_frames(count)} of unsupported link type {linktype_text(linktype)} skipped"
            )
        if self.undecodable:
            out.append(f"{_frames(self.undecodable)} too short or malformed to decode")
        if self.snaplen_cut:
            out.append(
                f"{self.snaplen_cut} TCP segment{'s' if self.snaplen_cut != 1 else ''} cut by "
                "the snap length: the bytes not captured are reported as gaps"
            )
        if self.fragments_incomplete:
            out.append(
                f"{self.fragments_incomplete} fragmented IP datagram"
                f"{'s' if self.fragments_incomplete != 1 else ''} never completed"
            )
        return out


def _frames(n: int) -> str:
    return f"{n} frame{'s' if n != 1 else ''}"


def _nothing(size: int) -> bytes:
    return b""


class _Stream:
    """A refill buffer over a binary stream: reads big chunks, never seeks.

    ``compression`` names the format the stream is being decompressed from (``gzip``...):
    a decompression error then ends the capture as a cut would, instead of the analysis."""

    __slots__ = ("_name", "_read", "compression", "stats")

    def __init__(
        self, fileobj: BinaryIO, stats: CaptureStats, name: str, compression: str | None = None
    ) -> None:
        # read1 returns what a pipe has now instead of waiting for a whole chunk.
        read1 = getattr(fileobj, "read1", None)
        self._read: Callable[[int], bytes] = read1 if read1 is not None else fileobj.read
        self.stats = stats
        self._name = name
        self.compression = compression

    def more(self, buf: bytes, pos: int, need: int) -> bytes:
        """``buf[pos:]`` extended to ``need`` bytes or more (fewer at the end of the input)."""
        parts = [buf[pos:]]
        have = len(buf) - pos
        while have < need:
            try:
                chunk = self._read(max(CHUNK, need - have))
            except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
                self._failed(exc)
                break
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
            self.stats.bytes_read += len(chunk)
        return b"".join(parts)

    def _failed(self, exc: Exception) -> None:
        """A read failed: an input error, or for a compressed capture, its end."""
        done = self.stats.bytes_read
        if self.compression is None or done == 0:
            what = f"{self.compression}-compressed, but " if self.compression else ""
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise InputError(
                f"{self._name}: {what}read error after {done} bytes ({detail})"
            ) from None
        # What was decompressed so far is a capture cut short: analyse it.
        _stop(
            self.stats,
            f"the {self.compression} stream is cut or damaged after {done} bytes of capture "
            f"({exc})",
        )
        self._read = _nothing


#: Compressed formats read as they stream (by their magic number, never the file name).
_COMPRESSED: dict[bytes, str] = {b"\x1f\x8b": "gzip", b"\xfd7zXZ\x00": "xz", b"BZh": "bzip2"}
#: Compressed formats recognised, to say so, but not read.
_OTHER_COMPRESSED: dict[bytes, str] = {
    b"\x28\xb5\x2f\xfd": "zstd",
    b"PK\x03\x04": "zip",
    b"7z\xbc\xaf\x27\x1c": "7z",
    b"\x04\x22\x4d\x18": "lz4",
}


def _decompressing(raw: BinaryIO) -> tuple[BinaryIO, str | None]:
    """``raw`` as a stream of capture bytes: decompressed as it is read when it starts with
    the magic number of gzip, xz or bzip2, else as it is; and the compression's name."""
    buffered = io.BufferedReader(cast(io.RawIOBase, raw), CHUNK)
    head = buffered.peek(6)
    for magic, kind in _COMPRESSED.items():
        if head.startswith(magic):
            opener = _OPENERS[kind]
            return cast(BinaryIO, opener(cast(BinaryIO, buffered))), kind
    return cast(BinaryIO, buffered), None


_OPENERS: dict[str, Callable[[BinaryIO], object]] = {
    "gzip": lambda f: gzip.GzipFile(fileobj=f, mode="rb"),
    "xz": lzma.LZMAFile,
    "bzip2": bz2.BZ2File,
}


def _not_a_capture(name: str, head: bytes, compression: str | None = None) -> InputError:
    shown = " ".join(f"{b:02x}" for b in head[:8])
    hint = ""
    other = next((k for m, k in _OTHER_COMPRESSED.items() if head.startswith(m)), None)
    if other is not None:
        hint = f"; it is {other}-compressed: decompress it first (gzip, xz and bzip2 are read)"
    elif all(32 <= b < 127 or b in b"\t\r\n" for b in head[:8]):
        hint = "; it looks like text"
    what = f"{name} ({compression}-compressed)" if compression else name
    return InputError(f"{what} is not a pcap or pcapng capture (starts with {shown}){hint}")


def _stop(stats: CaptureStats, message: str) -> None:
    """The capture ends here, for the reason ``message`` gives (the first reason stands:
    a compressed stream cut short also leaves its last record cut)."""
    if stats.truncated:
        return
    stats.truncated = True
    stats.truncation = message


def _records(
    stream: _Stream, head: bytes, name: str, sink: _Sink[_T], counts: bool
) -> Iterator[_T]:
    """Dispatch on the magic number at the start of ``head`` (the first bytes read).

    ``counts``: what ``sink`` keeps are TCP segments, to count in ``stats.tcp_segments``.
    """
    magic = head[:4]
    if magic == _PCAPNG_MAGIC:
        stream.stats.format = "pcapng"
        return _pcapng(stream, head, sink, counts)
    if magic in _PCAP_MAGICS:
        stream.stats.format = "pcap"
        return _pcap(stream, head, sink, counts)
    raise _not_a_capture(name, head)


class _Damaged(Exception):
    """Raised inside a reader, which stops with a message naming the place."""


def _damaged(stats: CaptureStats, frame: int, buf: bytes, pos: int, what: object) -> None:
    at = stats.bytes_read - len(buf) + pos  # the file offset of buf[pos]
    _stop(stats, f"capture is damaged after frame {frame}: {what} at byte {at}")


def _sync(stats: CaptureStats, frame: int, kept: int, ts: int | None, counts: bool) -> None:
    stats.packets = frame
    stats.last_ts = ts
    if counts:
        stats.tcp_segments = kept


# The two readers below pass each record to ``sink`` and yield what it returns, unless
# None; they are the hot loop, so they keep their counters in locals and write them to the
# stats at each refill of the buffer (every megabyte) and at the end.


def _pcap(stream: _Stream, buf: bytes, sink: _Sink[_T], counts: bool) -> Iterator[_T]:
    stats = stream.stats
    if len(buf) < 24:
        buf = stream.more(buf, 0, 24)
        if len(buf) < 24:
            _stop(
                stats, f"capture is truncated: the file header is cut after {len(buf)} of 24 bytes"
            )
            return
    endian, mul = _PCAP_MAGICS[buf[:4]]
    linktype = struct.unpack_from(endian + "I", buf, 20)[0] & 0xFFFF  # the rest: FCS info
    stats.link_types.add(linktype)
    unpack_rec = struct.Struct(endian + "IIII").unpack_from
    pos = 24
    size = len(buf)  # of buf, kept in a local: read once per record
    frame = kept = 0
    ts: int | None = None
    first_ts: int | None = None
    try:
        while True:
            if pos + 16 > size:
                _sync(stats, frame, kept, ts, counts)
                buf = stream.more(buf, pos, 16)
                pos = 0
                size = len(buf)
                if size < 16:
                    if buf:
                        _stop(
                            stats,
                            f"capture is truncated: the last record (frame {frame + 1}) is cut "
                            f"inside its header, after {len(buf)} of 16 bytes",
                        )
                    return
            sec, frac, caplen, orig_len = unpack_rec(buf, pos)
            stop = pos + 16 + caplen
            if stop > size:
                if caplen > MAX_RECORD:
                    _damaged(stats, frame, buf, pos, f"record {frame + 1} claims {caplen} bytes")
                    return
                buf = stream.more(buf, pos, 16 + caplen)
                pos = 0
                size = len(buf)
                stop = 16 + caplen
                if stop > size:
                    _stop(
                        stats,
                        f"capture is truncated: the last record (frame {frame + 1}) is cut "
                        f"after {len(buf) - 16} of {caplen} bytes",
                    )
                    return
            frame += 1
            ts = sec * 1_000_000_000 + frac * mul
            if first_ts is None:
                first_ts = stats.first_ts = ts
            out = sink(ts, frame, linktype, buf, pos + 16, stop, orig_len)
            pos = stop
            if out is not None:
                kept += 1
                yield out
    finally:
        _sync(stats, frame, kept, ts, counts)


@dataclass(frozen=True, slots=True)
class _Interface:
    """A pcapng interface: its link type, snap length and timestamp conversion."""

    linktype: int
    snaplen: int
    mul: int  # ns = units * mul // div + offset
    div: int
    offset: int


def _interface(buf: bytes, pos: int, blen: int, endian: str) -> _Interface:
    linktype, _, snaplen = struct.unpack_from(endian + "HHI", buf, pos + 8)
    resol = 6
    offset = 0
    opt = pos + 16
    stop = pos + blen - 4
    while opt + 4 <= stop:
        code, olen = struct.unpack_from(endian + "HH", buf, opt)
        opt += 4
        if code == 0 or opt + olen > stop:
            break
        if code == _OPT_TSRESOL and olen >= 1:
            resol = buf[opt]
        elif code == _OPT_TSOFFSET and olen >= 8:
            offset = struct.unpack_from(endian + "q", buf, opt)[0] * 1_000_000_000
        opt += (olen + 3) & ~3
    if resol & 0x80:  # a negative power of 2
        mul, div = 1_000_000_000, 1 << (resol & 0x7F)
    elif resol <= 9:  # a negative power of 10
        mul, div = 10 ** (9 - resol), 1
    else:
        mul, div = 1, 10 ** (resol - 9)
    return _Interface(linktype, snaplen, mul, div, offset)


def _statistics(
    buf: bytes, pos: int, blen: int, endian: str, interfaces: list[_Interface]
) -> InterfaceStatistics:
    iface, hi, lo = struct.unpack_from(endian + "III", buf, pos + 8)
    ts = None
    if iface < len(interfaces):
        i = interfaces[iface]
        ts = ((hi << 32 | lo) * i.mul) // i.div + i.offset
    counters: dict[str, int] = {}
    opt = pos + 20
    stop = pos + blen - 4
    while opt + 4 <= stop:
        code, olen = struct.unpack_from(endian + "HH", buf, opt)
        opt += 4
        if code == 0 or opt + olen > stop:
            break
        name = _ISB_COUNTERS.get(code)
        if name is not None and olen == 8:
            counters[name] = struct.unpack_from(endian + "Q", buf, opt)[0]
        opt += (olen + 3) & ~3
    return InterfaceStatistics(iface, ts, **counters)


def _pcapng(stream: _Stream, buf: bytes, sink: _Sink[_T], counts: bool) -> Iterator[_T]:
    stats = stream.stats
    pos = 0
    frame = kept = 0
    ts: int | None = None
    first_ts: int | None = None
    last_ts = 0  # a Simple Packet Block has no timestamp: it gets the previous packet's
    endian = "<"
    unpack_hdr = struct.Struct("<II").unpack_from
    unpack_epb = struct.Struct("<IIIII").unpack_from
    unpack_pb = struct.Struct("<HHIIII").unpack_from
    interfaces: list[_Interface] = []

    try:
        while True:
            # Fast path: a complete, well-formed Enhanced Packet Block.
            if pos + 12 <= len(buf):
                btype, blen = unpack_hdr(buf, pos)
                stop = pos + blen
                if btype == _EPB and stop <= len(buf) and blen >= 32 and not blen & 3:
                    iface, hi, lo, caplen, orig_len = unpack_epb(buf, pos + 8)
                    if caplen <= blen - 32 and iface < len(interfaces):
                        i = interfaces[iface]
                        frame += 1
                        ts = last_ts = ((hi << 32 | lo) * i.mul) // i.div + i.offset
                        if first_ts is None:
                            first_ts = stats.first_ts = ts
                        out = sink(
                            ts, frame, i.linktype, buf, pos + 28, pos + 28 + caplen, orig_len
                        )
                        options = pos + 28 + ((caplen + 3) & ~3)
                        if (
                            out is not None
                            and options < stop - 4
                            and _injected(buf, options, stop - 4, endian)
                        ):
                            out = _marked(out)
                        pos = stop
                        if out is not None:
                            kept += 1
                            yield out
                        continue
            # Everything else: refills, other blocks, damage.
            if pos + 12 > len(buf):
                _sync(stats, frame, kept, ts, counts)
                buf = stream.more(buf, pos, 12)
                pos = 0
                if len(buf) < 12:
                    if buf:
                        _stop(
                            stats,
                            f"capture is truncated: the block after frame {frame} is cut "
                            f"inside its header, after {len(buf)} of 12 bytes",
                        )
                    return
            btype, blen = unpack_hdr(buf, pos)
            if btype == _SHB:
                order = BYTE_ORDER.get(buf[pos + 8 : pos + 12])
                if order is None:
                    raise _Damaged("a section header with no byte-order magic")
                if order != endian:
                    endian = order
                    unpack_hdr = struct.Struct(endian + "II").unpack_from
                    unpack_epb = struct.Struct(endian + "IIIII").unpack_from
                    unpack_pb = struct.Struct(endian + "HHIIII").unpack_from
                    blen = unpack_hdr(buf, pos)[1]
                interfaces = []  # interface ids are numbered per section
            if blen < 12 or blen & 3 or blen > MAX_RECORD:
                raise _Damaged(f"a block claims a length of {blen} bytes")
            if pos + blen > len(buf):
                buf = stream.more(buf, pos, blen)
                pos = 0
                if blen > len(buf):
                    what = f"record (frame {frame + 1})" if btype in PACKET_BLOCKS else "block"
                    _stop(
                        stats,
                        f"capture is truncated: the last {what} is cut after {len(buf)} of "
                        f"{blen} bytes",
                    )
                    return
                continue  # the block is whole now: the fast path may take it
            if btype in (_EPB, _PB):
                if blen < 32:
                    raise _Damaged(f"a packet block of only {blen} bytes")
                if btype == _EPB:
                    iface, hi, lo, caplen, orig_len = unpack_epb(buf, pos + 8)
                else:
                    iface, _, hi, lo, caplen, orig_len = unpack_pb(buf, pos + 8)
                if iface >= len(interfaces):
                    raise _Damaged(f"a packet block names interface {iface}, which is not defined")
                if caplen > blen - 32:
                    raise _Damaged(
                        f"a packet block of {blen} bytes claims {caplen} bytes of packet"
                    )
                i = interfaces[iface]
                ts = last_ts = ((hi << 32 | lo) * i.mul) // i.div + i.offset
                start = pos + 28
            elif btype == _SPB:
                if blen < 16:
                    raise _Damaged(f"a simple packet block of only {blen} bytes")
                if not interfaces:
                    raise _Damaged("a simple packet block comes before any interface block")
                i = interfaces[0]
                orig_len = unpack_hdr(buf, pos + 4)[1]
                caplen = min(orig_len, blen - 16)
                if i.snaplen:
                    caplen = min(caplen, i.snaplen)
                ts = last_ts
                start = pos + 12
            else:
                if btype in _EVENT_BLOCKS:
                    frame += 1
                elif btype == _IDB:
                    if blen < 20:
                        raise _Damaged(f"an interface block of only {blen} bytes")
                    i = _interface(buf, pos, blen, endian)
                    interfaces.append(i)
                    stats.link_types.add(i.linktype)
                elif btype == _ISB and blen >= 24:
                    stats.interface_statistics.append(
                        _statistics(buf, pos, blen, endian, interfaces)
                    )
                pos += blen  # no packet: statistics, names, comments, events, ...
                continue
            frame += 1
            if first_ts is None:
                first_ts = stats.first_ts = ts
            out = sink(ts, frame, i.linktype, buf, start, start + caplen, orig_len)
            options = start + ((caplen + 3) & ~3)
            if (
                out is not None
                and btype == _EPB
                and options < pos + blen - 4
                and _injected(buf, options, pos + blen - 4, endian)
            ):
                out = _marked(out)
            pos += blen
            if out is not None:
                kept += 1
                yield out
    except _Damaged as exc:
        _damaged(stats, frame, buf, pos, exc)
    finally:
        _sync(stats, frame, kept, ts, counts)


def _packet(
    ts: int, frame: int, linktype: int, buf: bytes, start: int, stop: int, orig_len: int
) -> Packet:
    return ts, frame, linktype, buf[start:stop], orig_len


def _timestamp(
    ts: int, frame: int, linktype: int, buf: bytes, start: int, stop: int, orig_len: int
) -> int:
    return ts


def shard_of(seg: Segment, count: int) -> int:
    """The share, of ``count``, that ``seg``'s TCP connection belongs to: the same for both
    directions (a sum of the ports and of the last byte of each address)."""
    return (seg.sport + seg.dport + seg.src[-1] + seg.dst[-1]) % count


@dataclass(slots=True)
class Shard:
    """One of ``count`` shares of a capture's TCP connections (by :func:`shard_of`), for
    :meth:`CaptureFile.segments` to yield only the segments of its own connections.

    The others are counted in ``stats.tcp_segments`` all the same, so that the stats are
    those of the whole capture whichever share was read.
    """

    index: int
    count: int
    last: tuple[int, int] | None = None
    """(ts, frame) of the last TCP segment of the file that was not in the share, if any
    (set by :meth:`CaptureFile.segments`)."""


# The fields of an untagged Ethernet frame of IPv4 without options and TCP that the share of
# a segment depends on, and those that say the frame is one (as in
# PacketDecoder.decode_at's fast path): EtherType, version+IHL, total length, flags+offset,
# protocol, the last byte of each address, ports, data offset.
_ETH_IPV4_TCP_SHARE = struct.Struct("!12xHBxH2xHxB5xB3xBHH8xB")


def _sharded(decode: _Sink[Segment], shard: Shard, skipped: list[int]) -> _Sink[Segment]:
    """``decode``, for the segments of ``shard`` only; ``skipped[0]`` counts the others.

    The usual frame (untagged Ethernet, IPv4 without options or fragments, TCP, captured
    whole) is placed from a few fixed offsets and, when it is another share's, skipped
    without being decoded; any other frame is decoded and then placed.
    """
    index, count = shard.index, shard.count
    unpack = _ETH_IPV4_TCP_SHARE.unpack_from

    def sink(
        ts: int, frame: int, linktype: int, buf: bytes, start: int, stop: int, orig_len: int
    ) -> Segment | None:
        if linktype == LINKTYPE_ETHERNET and stop - start >= 54:
            etype, vhl, total, frag, proto, src, dst, sport, dport, doff = unpack(buf, start)
            if (
                (sport + dport + src + dst) % count != index
                and etype == 0x0800
                and vhl == 0x45
                and proto == 6
                and not frag & 0x3FFF
                and start + 14 + total <= stop
                and 20 + ((doff >> 4) << 2) <= total
                and doff >= 0x50
            ):  # a segment the decoder would give, changing none of its counts
                skipped[0] += 1
                shard.last = (ts, frame)
                return None
        seg = decode(ts, frame, linktype, buf, start, stop, orig_len)
        if seg is None or shard_of(seg, count) == index:
            return seg
        skipped[0] += 1
        shard.last = (ts, frame)
        return None

    return sink


def _stdin() -> BinaryIO:
    """Standard input, unbuffered, left open when the capture is closed."""
    try:
        return open(sys.stdin.fileno(), "rb", buffering=0, closefd=False)
    except (AttributeError, OSError, ValueError):  # replaced by a test harness: no descriptor
        return sys.stdin.buffer


def in_time_order(captures: list[CaptureFile]) -> tuple[list[CaptureFile], str | None]:
    """``captures`` sorted by the time of their first packet, and a note when that is not
    the order they were given in (None otherwise).

    Several files are read as one capture (the files of a ring buffer, of a capture split
    by size): a connection may continue from one into the next, so they must be read in
    the order they were written, whatever order a shell glob or a user gave them in.
    Files holding no packet go last; files that start at the same time keep their order.
    """
    if len(captures) < 2:
        return captures, None
    keyed = [(c.first_timestamp(), i, c) for i, c in enumerate(captures)]
    ordered = [c for _, _, c in sorted(keyed, key=lambda k: (k[0] is None, k[0] or 0, k[1]))]
    if ordered == captures:
        return captures, None
    names = ", ".join(c.path for c in ordered)
    return ordered, f"files read in the order of their first packets, not as given: {names}"


def read_packets(fileobj: BinaryIO, stats: CaptureStats | None = None) -> Iterator[Packet]:
    """Stream the packet records of a pcap or pcapng stream: ``(ts_ns, frame, linktype,
    data, orig_len)``, ``data`` being what was captured of a frame of ``orig_len`` bytes.

    Works on a pipe (``dumpcap -w -``): it never seeks, and yields each record as soon as
    the stream has delivered it whole. ``stats``, if given, is kept up to date (``format``,
    ``bytes_read``, ``packets``, ``link_types``, ``truncated``...). Raises
    :class:`InputError` if the stream is empty or not a capture.
    """
    stats = stats if stats is not None else CaptureStats()
    stream = _Stream(fileobj, stats, "input")
    head = stream.more(b"", 0, 4)
    if not head:
        raise InputError("input is empty: no capture was received")
    return _records(stream, head, "input", _packet, counts=False)


STDIN = "-"
"""The file name that means standard input."""


class CaptureFile:
    """A pcap or pcapng file, opened and checked at construction, streamed by :meth:`segments`.

    ``path`` ``-`` reads standard input. A capture compressed with gzip, xz or bzip2 is
    decompressed as it is read (recognised by its magic number, whatever its name).
    Raises :class:`InputError` if the file is missing, unreadable, empty or not a capture.
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        given = os.fspath(path)
        self.path = "<stdin>" if given == STDIN else given
        """The name used in messages and reports (``<stdin>`` for standard input)."""
        name = self.path
        try:
            self._raw: BinaryIO = (
                _stdin() if given == STDIN else open(given, "rb", buffering=0)  # noqa: SIM115
            )
        except FileNotFoundError:
            raise InputError(f"{name}: no such file") from None
        except IsADirectoryError:
            raise InputError(f"{name} is a directory, not a capture file") from None
        except PermissionError:
            raise InputError(f"{name}: permission denied") from None
        except OSError as exc:
            raise InputError(f"{name}: cannot open ({exc.strerror or exc})") from None
        self._file = self._raw
        try:
            st = os.fstat(self._raw.fileno())
            self._file, self.compression = _decompressing(self._raw)
            """``gzip``, ``xz``, ``bzip2``, or None for a capture read as it is."""
            regular = stat.S_ISREG(st.st_mode) and self.compression is None
            self.stats = CaptureStats(file_size=st.st_size if regular else None)
            """Counters, updated while :meth:`segments` streams (``file_size`` is None when
            the size of the capture is not known beforehand: a pipe, a compressed file)."""
            self._stream = _Stream(self._file, self.stats, name, self.compression)
            self._head = self._stream.more(b"", 0, 4)
            if not self._head:
                raise InputError(f"{name} is empty")
            if self._head[:4] not in _PCAP_MAGICS and self._head[:4] != _PCAPNG_MAGIC:
                raise _not_a_capture(name, self._head, self.compression)
        except OSError as exc:  # peeking at the first bytes failed
            self.close()
            raise InputError(f"{name}: cannot read ({exc.strerror or exc})") from None
        except BaseException:
            self.close()
            raise
        self.stats.format = "pcapng" if self._head[:4] == _PCAPNG_MAGIC else "pcap"
        self._started = False

    def first_timestamp(self) -> int | None:
        """When the capture's first packet was captured (ns), or None if it holds none.

        Read ahead, from the start of the capture (a refill of the buffer :meth:`segments`
        starts from, so nothing is read twice); call it before :meth:`segments`.
        """
        if self._started:
            raise RuntimeError("CaptureFile.first_timestamp() comes before segments()")
        while True:
            probe = _Stream(io.BytesIO(), CaptureStats(), self.path)
            ts = next(_records(probe, self._head, self.path, _timestamp, counts=False), None)
            # Blocks are at most MAX_RECORD long: a packet shows up within a few of them.
            if ts is not None or len(self._head) > 4 * MAX_RECORD:
                return ts
            longer = self._stream.more(self._head, 0, len(self._head) + 1)
            if len(longer) == len(self._head):  # the whole capture holds no packet
                return None
            self._head = longer

    def segments(self, shard: Shard | None = None) -> Iterator[Segment]:
        """Stream the TCP segments of the capture, in capture order (once only); with
        ``shard``, only those of its share of the connections.

        A truncated or damaged capture ends the stream early; :attr:`stats` says so.
        """
        if self._started:
            raise RuntimeError("CaptureFile.segments() can be read only once")
        self._started = True
        decoder = PacketDecoder(self.stats)
        head, self._head = self._head, b""
        sink: _Sink[Segment] = decoder.decode_at
        skipped = [0]
        if shard is not None:
            shard.last = None
            sink = _sharded(sink, shard, skipped)
        try:
            yield from _records(self._stream, head, self.path, sink, counts=True)
        finally:
            decoder.finish()
            self.stats.tcp_segments += skipped[0]

    def close(self) -> None:
        """Close the file (again is harmless; standard input itself stays open)."""
        with suppress(OSError):  # a decompressor flushing nothing
            self._file.close()
        self._raw.close()

    def __enter__(self) -> CaptureFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CaptureFile({self.path!r}, format={self.stats.format!r})"
