"""What a capture file says about where and when it was made, read from its two ends.

:func:`probe` reads a capture's head and the timestamp of its last packet without reading
the file through: the first bytes give the format, the link type and snap length of each
interface, and for pcapng the Section Header Block's hardware, operating system and
application and each Interface Description Block's name, description and capture filter
(options parsed by dpkt); the last packet is found from the end of the file (pcapng: walking
back block by block by their trailing lengths; pcap: the record that ends exactly at the end
of the file). Only when the end cannot be read that way (a file cut short, several pcapng
sections, a capture that is not a seekable file) is the file read through, with the packet
reader of :mod:`analyzer.sources.pcap`.

This is what tells the files of one capture point (a ring buffer) from those of another
(see :mod:`analyzer.scale.groups`); it never decodes a packet.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass
from typing import BinaryIO, Literal

import dpkt

from .pcap import (
    _PCAP_MAGICS,
    _PCAPNG_MAGIC,
    BYTE_ORDER,
    MAX_RECORD,
    BlockType,
    CaptureFile,
    CaptureStats,
    _Interface,
    _interface,
    read_packets,
)

__all__ = ["CaptureInfo", "Interface", "probe"]

_HEAD_BLOCKS = 4096
"""Blocks read from the start of a pcapng file, at most, looking for its first packet."""
_TAIL_BLOCKS = 4096
"""Blocks walked back from the end of a pcapng file, at most, looking for its last packet."""
_SPAN_NS = 366 * 86_400 * 1_000_000_000
"""A last packet found from the end of a file is believed only if its time is within a year
after the first packet's. A classic pcap record header carries no marker, so a plausible time
is what tells a real one from payload bytes that happen to fit; a pcapng packet block in a
later section than the head's would be read with the wrong interface's clock."""

_OPT_HARDWARE, _OPT_OS, _OPT_USERAPPL = 2, 3, 4  # Section Header Block options
_OPT_IF_NAME, _OPT_IF_DESCRIPTION, _OPT_IF_FILTER = 2, 3, 11  # Interface Description Block


@dataclass(frozen=True, slots=True)
class Interface:
    """One interface a capture was made on (a classic pcap has one, without names)."""

    link_type: int
    snaplen: int
    name: str | None = None
    description: str | None = None
    capture_filter: str | None = None


@dataclass(frozen=True, slots=True)
class CaptureInfo:
    """A capture file's format, origin and time span (ns since the Unix epoch)."""

    path: str
    format: Literal["pcap", "pcapng"] | None
    """None for a capture this module cannot look into (a compressed one): nothing is known
    of its origin and times, so it is a capture point of its own."""
    size: int
    first_ts: int | None
    """The first packet's time; None when the file holds no timestamped packet."""
    last_ts: int | None
    interfaces: tuple[Interface, ...] = ()
    hardware: str | None = None
    os: str | None = None
    application: str | None = None

    @property
    def origin(self) -> tuple[object, ...]:
        """Everything the file says about where it was captured: files of one capture point
        (one capture tool on one host, writing a ring buffer) have equal origins."""
        return (self.format, self.interfaces, self.hardware, self.os, self.application)


def probe(path: str) -> CaptureInfo:
    """Look at a capture file's two ends.

    Raises :class:`~analyzer.errors.InputError` (with the same words as reading it would)
    for a file that is missing, unreadable or not a capture.
    """
    with CaptureFile(path):  # the checks and messages of the reader itself
        pass
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        size = st.st_size
        head = f.read(4)
        seekable = stat.S_ISREG(st.st_mode)
        if head == _PCAPNG_MAGIC:
            info = _pcapng(f, path, size, seekable)
        elif head in _PCAP_MAGICS:
            info = _pcap(f, path, size, head, seekable)
        else:  # a compressed capture, read by the reader as it decompresses
            return CaptureInfo(path, None, size, None, None)
    if info.first_ts is not None and info.last_ts is None:
        info = _read_through(path, info)
    return info


def _read_through(path: str, info: CaptureInfo) -> CaptureInfo:
    """``info`` with the last packet's time found by reading the whole file."""
    stats = CaptureStats()
    with open(path, "rb", buffering=0) as f:
        for _ in read_packets(f, stats):
            pass
    last = stats.last_ts if stats.last_ts is not None else info.first_ts
    return CaptureInfo(
        info.path,
        info.format,
        info.size,
        info.first_ts,
        last,
        info.interfaces,
        info.hardware,
        info.os,
        info.application,
    )


# --- classic pcap ------------------------------------------------------------------------


def _pcap(f: BinaryIO, path: str, size: int, magic: bytes, seekable: bool) -> CaptureInfo:
    endian, mul = _PCAP_MAGICS[magic]
    header = magic + f.read(20)
    if len(header) < 24:
        return CaptureInfo(path, "pcap", size, None, None)
    snaplen, linktype = struct.unpack_from(endian + "II", header, 16)
    interfaces = (Interface(linktype & 0xFFFF, snaplen),)
    record = struct.Struct(endian + "IIII")
    first = f.read(16)
    if len(first) < 16:
        return CaptureInfo(path, "pcap", size, None, None, interfaces)
    sec, frac, caplen, _ = record.unpack(first)
    if caplen > MAX_RECORD or 40 + caplen > size:  # cut or damaged: the reader reads no packet
        return CaptureInfo(path, "pcap", size, None, None, interfaces)
    first_ts = sec * 1_000_000_000 + frac * mul
    last_ts = _pcap_last(f, size, record, mul, snaplen, first_ts) if seekable else None
    return CaptureInfo(path, "pcap", size, first_ts, last_ts, interfaces)


def _pcap_last(
    f: BinaryIO, size: int, record: struct.Struct, mul: int, snaplen: int, first_ts: int
) -> int | None:
    """The time of the record that ends exactly at the end of the file, or None.

    Every length of that record's data is tried, shortest first (a capture usually ends with
    a short segment): the header in front of it must give that very length, and a time
    within a year after the first packet's."""
    limit = min(snaplen or MAX_RECORD, MAX_RECORD)
    window = min(size - 24, 16 + limit)
    f.seek(size - window)
    tail = f.read(window)
    units = 1_000_000_000 // mul  # fractions of a second a timestamp can hold
    unpack = record.unpack_from
    for caplen in range(len(tail) - 15):
        sec, frac, claimed, orig_len = unpack(tail, len(tail) - 16 - caplen)
        if claimed != caplen or orig_len < caplen or frac >= units:
            continue
        ts: int = sec * 1_000_000_000 + frac * mul
        if first_ts <= ts <= first_ts + _SPAN_NS:
            return ts
    return None


# --- pcapng ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Section:
    endian: str
    interfaces: list[Interface]
    clocks: list[_Interface]  # each interface's timestamp conversion
    hardware: str | None = None
    os: str | None = None
    application: str | None = None


def _pcapng(f: BinaryIO, path: str, size: int, seekable: bool) -> CaptureInfo:
    rest = f.read(8)
    endian = BYTE_ORDER.get(rest[4:8]) if len(rest) == 8 else None
    if endian is None:
        return CaptureInfo(path, "pcapng", size, None, None)
    blen = struct.unpack_from(endian + "I", rest)[0]
    if not 28 <= blen <= MAX_RECORD:
        return CaptureInfo(path, "pcapng", size, None, None)
    shb = _PCAPNG_MAGIC + rest + f.read(blen - 12)
    section = _Section(endian, [], [])
    _section_options(shb, section)
    first_ts, single = _first_packet(f, section, blen)
    last_ts = None
    if first_ts is not None and single and seekable:
        last_ts = _pcapng_last(f, size, blen, section)
        if last_ts is not None and not first_ts <= last_ts <= first_ts + _SPAN_NS:
            last_ts = None  # read through instead
    return CaptureInfo(
        path,
        "pcapng",
        size,
        first_ts,
        last_ts,
        tuple(section.interfaces),
        section.hardware,
        section.os,
        section.application,
    )


def _text(data: bytes) -> str:
    """An option's UTF-8 text (up to a NUL some writers leave in it)."""
    return data.split(b"\x00", 1)[0].decode("utf-8", "replace")


def _section_options(block: bytes, section: _Section) -> None:
    cls = (
        dpkt.pcapng.SectionHeaderBlockLE
        if section.endian == "<"
        else dpkt.pcapng.SectionHeaderBlock
    )
    try:
        options = cls(block).opts
    except (dpkt.Error, struct.error, ValueError, IndexError):
        return  # damaged options: the section is known by its interfaces alone
    for option in options:
        if option.code == _OPT_HARDWARE:
            section.hardware = _text(option.data)
        elif option.code == _OPT_OS:
            section.os = _text(option.data)
        elif option.code == _OPT_USERAPPL:
            section.application = _text(option.data)


def _add_interface(block: bytes, section: _Section) -> None:
    endian = section.endian
    linktype, _, snaplen = struct.unpack_from(endian + "HHI", block, 8)
    names: dict[int, str] = {}
    cls = (
        dpkt.pcapng.InterfaceDescriptionBlockLE
        if endian == "<"
        else dpkt.pcapng.InterfaceDescriptionBlock
    )
    try:
        for option in cls(block).opts:
            if option.code in (_OPT_IF_NAME, _OPT_IF_DESCRIPTION):
                names[option.code] = _text(option.data)
            elif option.code == _OPT_IF_FILTER and option.data:
                names[option.code] = _text(option.data[1:])  # after the filter's type byte
    except (dpkt.Error, struct.error, ValueError, IndexError):
        pass  # damaged options: known by link type and snap length
    section.interfaces.append(
        Interface(
            linktype,
            snaplen,
            names.get(_OPT_IF_NAME),
            names.get(_OPT_IF_DESCRIPTION),
            names.get(_OPT_IF_FILTER),
        )
    )
    section.clocks.append(_interface(block, 0, len(block), endian))


def _timestamp(block: bytes, btype: int, section: _Section) -> int | None:
    """A packet block's time, or None (a Simple Packet Block has none; an undefined
    interface cannot say)."""
    if btype == BlockType.EPB:
        iface, hi, lo, caplen = struct.unpack_from(section.endian + "IIII", block, 8)
    elif btype == BlockType.PB:
        iface, _, hi, lo, caplen = struct.unpack_from(section.endian + "HHIII", block, 8)
    else:
        return None
    blen = struct.unpack_from(section.endian + "I", block, 4)[0]
    if iface >= len(section.clocks) or caplen > blen - 32:  # the reader stops there
        return None
    clock = section.clocks[iface]
    ts: int = ((hi << 32 | lo) * clock.mul) // clock.div + clock.offset
    return ts


def _first_packet(f: BinaryIO, section: _Section, pos: int) -> tuple[int | None, bool]:
    """Read blocks after the Section Header Block up to the first packet: (its time, whether
    the file may hold this section only). Interfaces are added to ``section`` on the way."""
    header = struct.Struct(section.endian + "II")
    for _ in range(_HEAD_BLOCKS):
        raw = f.read(8)
        if len(raw) < 8:
            return None, True
        btype, blen = header.unpack(raw)
        if btype == BlockType.SHB:
            return None, False
        if blen < 12 or blen & 3 or blen > MAX_RECORD:
            return None, False
        block = raw + f.read(blen - 8)
        if len(block) < blen:
            return None, False
        if btype == BlockType.IDB and blen >= 20:
            _add_interface(block, section)
        elif btype in (BlockType.EPB, BlockType.PB) and blen >= 32:
            return _timestamp(block, btype, section), True
    return None, False


def _pcapng_last(f: BinaryIO, size: int, start: int, section: _Section) -> int | None:
    """Walk back from the end of the file by the blocks' trailing lengths to the last packet
    block, read with the clock of the head's section; None when a length does not add up, or
    a section begins on the way."""
    header = struct.Struct(section.endian + "II")
    trailer = struct.Struct(section.endian + "I")
    end = size
    for _ in range(_TAIL_BLOCKS):
        if end - 12 < start:
            return None
        f.seek(end - 4)
        (blen,) = trailer.unpack(f.read(4))
        if blen < 12 or blen & 3 or blen > end - start:
            return None
        f.seek(end - blen)
        block = f.read(min(blen, 28))
        btype, again = header.unpack_from(block)
        if again != blen or btype == BlockType.SHB:
            return None
        if btype in (BlockType.EPB, BlockType.PB) and blen >= 32:
            return _timestamp(block, btype, section)
        end -= blen
    return None
