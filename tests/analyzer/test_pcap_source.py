"""The capture-file source: pcap/pcapng records → TCP segments, checked against tshark.

Fixtures in tests/data/pcap/ are real captures (see its README). Variants that no tool
writes (other link types, VLAN tags, IP fragments, IPv6 extension headers, big-endian files,
hand-made pcapng sections) are built here from the frames of those captures, and tshark
reads every one of them too: what we yield must be what tshark shows, frame for frame.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.errors import InputError
from analyzer.sources import pcap as pcap_module
from analyzer.sources.packets import DecodeStats, FragmentTable, PacketDecoder
from analyzer.sources.pcap import CaptureFile, CaptureStats, read_packets
from dissectors.tcp import Segment
from tests.pcapgen import Frame, read_classic
from tests.peers import tool

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

DATA = Path(__file__).resolve().parent.parent / "data" / "pcap"
ECHO = DATA / "dicom_echo.pcap"
LO = DATA / "lo_v4v6_nsec.pcap"  # TCP over IPv4 and IPv6, one UDP datagram, one ICMP error

Row = tuple[int, int, int, int, int]  # (frame, sport, dport, raw seq, TCP payload length)

# --- writing captures -------------------------------------------------------------------


def write_pcap(
    path: Path, frames: Iterable[Frame], linktype: int, *, endian: str = "<", nanos: bool = False
) -> Path:
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 262144, linktype)]
    for ts, data, orig in frames:
        frac = ts % 10**9 if nanos else ts % 10**9 // 1000
        out.append(struct.pack(endian + "IIII", ts // 10**9, frac, len(data), orig) + data)
    path.write_bytes(b"".join(out))
    return path


def ng_block(btype: int, body: bytes, endian: str = "<") -> bytes:
    body += b"\0" * (-len(body) % 4)
    return (
        struct.pack(endian + "II", btype, len(body) + 12)
        + body
        + struct.pack(endian + "I", len(body) + 12)
    )


def ng_option(code: int, value: bytes, endian: str = "<") -> bytes:
    return struct.pack(endian + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def ng_shb(endian: str = "<") -> bytes:
    return ng_block(0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1), endian)


def ng_idb(
    linktype: int,
    *,
    snaplen: int = 0,
    tsresol: int | None = None,
    tsoffset: int | None = None,
    endian: str = "<",
) -> bytes:
    opts = b""
    if tsresol is not None:
        opts += ng_option(9, bytes([tsresol]), endian)
    if tsoffset is not None:
        opts += ng_option(14, struct.pack(endian + "q", tsoffset), endian)
    if opts:
        opts += ng_option(0, b"", endian)
    return ng_block(1, struct.pack(endian + "HHI", linktype, 0, snaplen) + opts, endian)


def ng_epb(
    iface: int, units: int, data: bytes, orig: int | None = None, endian: str = "<"
) -> bytes:
    head = struct.pack(
        endian + "IIIII", iface, units >> 32, units & 0xFFFFFFFF, len(data), orig or len(data)
    )
    return ng_block(6, head + data, endian)


def ng_pb(iface: int, units: int, data: bytes, endian: str = "<") -> bytes:
    head = struct.pack(
        endian + "HHIIII", iface, 0, units >> 32, units & 0xFFFFFFFF, len(data), len(data)
    )
    return ng_block(2, head + data, endian)


def ng_spb(data: bytes, orig: int, endian: str = "<") -> bytes:
    return ng_block(3, struct.pack(endian + "I", orig) + data, endian)


# --- reshaping Ethernet frames ----------------------------------------------------------


def ip_of(frame: bytes) -> bytes:
    return frame[14:]


def with_vlans(frame: bytes, tpids: Sequence[int]) -> bytes:
    tags = b"".join(struct.pack("!HH", tpid, 100 + i) for i, tpid in enumerate(tpids))
    return frame[:12] + tags + frame[12:]


def with_ipv4_options(frame: bytes) -> bytes:
    """An IPv4 frame with a Router Alert option (IHL 6); others as they are."""
    if frame[14] >> 4 != 4:
        return frame
    head = bytearray(frame[14:34])
    head[0] = 0x46
    struct.pack_into("!H", head, 2, struct.unpack_from("!H", head, 2)[0] + 4)
    return frame[:14] + bytes(head) + b"\x94\x04\x00\x00" + frame[34:]


def family_header(frame: bytes, order: str, af6: int) -> bytes:
    return struct.pack(order + "I", 2 if frame[14] >> 4 == 4 else af6) + ip_of(frame)


def fragment_v4(ip: bytes, cuts: Sequence[int], order: Sequence[int]) -> list[bytes]:
    """IPv4 fragments of ``ip`` cut at payload offsets ``cuts``, sent in ``order``; index
    ``len(cuts) + 1`` in ``order`` is a copy of the bytes across the first cut, as a router
    that sends a datagram twice in different pieces might."""
    ihl = (ip[0] & 15) * 4
    payload = ip[ihl:]
    bounds = [0, *cuts, len(payload)]
    pieces = [(bounds[i], payload[bounds[i] : bounds[i + 1]]) for i in range(len(bounds) - 1)]
    pieces.append((cuts[0] - 8, payload[cuts[0] - 8 : cuts[0] + 16]))

    def one(off: int, chunk: bytes) -> bytes:
        more = 0x2000 if off + len(chunk) < len(payload) else 0
        head = bytearray(ip[:ihl])
        struct.pack_into("!H", head, 2, ihl + len(chunk))
        struct.pack_into("!H", head, 6, more | off // 8)
        return bytes(head) + chunk

    return [one(*pieces[i]) for i in order]


def v6_ext(ip6: bytes) -> bytes:
    """``ip6`` (TCP inside) with hop-by-hop, routing, destination-options and AH headers."""
    hbh = bytes([43, 0, 1, 4, 0, 0, 0, 0])
    rh = bytes([60, 2, 0, 0, 0, 0, 0, 0]) + bytes(16)
    dst = bytes([51, 0, 1, 4, 0, 0, 0, 0])
    ah = bytes([6, 4, 0, 0]) + struct.pack("!II", 0x1234, 1) + bytes(12)
    ext = hbh + rh + dst + ah
    head = bytearray(ip6[:40])
    head[6] = 0
    struct.pack_into("!H", head, 4, len(ip6) - 40 + len(ext))
    return bytes(head) + ext + ip6[40:]


def fragment_v6(ip6: bytes, cut: int, ident: int) -> list[bytes]:
    """Two IPv6 fragments, the second first; a destination-options header rides inside."""
    dst = bytes([6, 0, 1, 4, 0, 0, 0, 0])
    body = dst + ip6[40:]
    parts = [(0, body[:cut], 1), (cut, body[cut:], 0)]
    out = []
    for off, chunk, more in reversed(parts):
        head = bytearray(ip6[:40])
        head[6] = 0  # hop-by-hop first: it is not fragmentable
        struct.pack_into("!H", head, 4, 8 + 8 + len(chunk))
        hbh = bytes([44, 0, 1, 4, 0, 0, 0, 0])
        frag = struct.pack("!BBHI", 60, 0, off | more, ident)
        out.append(bytes(head) + hbh + frag + chunk)
    return out


# --- tshark and us ----------------------------------------------------------------------


def tshark(path: Path, *fields: str) -> list[list[str]]:
    cmd = [
        tool("tshark"),
        "-r",
        str(path),
        "-n",
        "-Y",
        "tcp",
        "-T",
        "fields",
        "-E",
        "occurrence=f",
    ]
    cmd += ["-o", "ip.defragment:TRUE", "-o", "ipv6.defragment:TRUE"]
    for f in fields:
        cmd += ["-e", f]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120)
    return [line.split("\t") for line in done.stdout.splitlines()]


def tshark_rows(path: Path) -> list[Row]:
    rows = tshark(path, "frame.number", "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.len")
    return [(int(a), int(b), int(c), int(d), int(e)) for a, b, c, d, e in rows if d and e]


def tshark_times(path: Path) -> dict[int, int]:
    out = {}
    for number, epoch in tshark(path, "frame.number", "frame.time_epoch"):
        if not epoch:
            continue  # a Simple Packet Block: tshark shows no time
        sec, _, frac = epoch.partition(".")
        out[int(number)] = int(sec) * 10**9 + int(frac.ljust(9, "0"))
    return out


def segments(path: Path) -> tuple[list[Segment], CaptureStats]:
    with CaptureFile(path) as capture:
        segs = list(capture.segments())
    return segs, capture.stats


def rows(segs: Iterable[Segment]) -> list[Row]:
    return [(s.frame or 0, s.sport, s.dport, s.seq, len(s.payload) + s.missing) for s in segs]


# --- the variants -----------------------------------------------------------------------


def _relink(src: Path, linktype: int, reshape: Callable[[bytes], bytes]) -> Callable[[Path], Path]:
    def make(out: Path) -> Path:
        _, frames = read_classic(src)
        reshaped = [(t, reshape(d), len(reshape(d))) for t, d, _ in frames]
        return write_pcap(out, reshaped, linktype, nanos=True)

    return make


def _fragmented(out: Path) -> Path:
    _, frames = read_classic(LO)
    new: list[Frame] = []
    for ts, data, _ in frames:
        ip = ip_of(data)
        if ip[0] >> 4 == 4 and ip[9] == 6 and len(ip) > 300:  # the 300- and 1000-byte segments
            for i, piece in enumerate(fragment_v4(ip, [48, 200], [2, 3, 0, 1, 2])):
                new.append((ts + i, data[:14] + piece, 14 + len(piece)))
        elif ip[0] >> 4 == 6 and ip[6] == 6 and len(ip) > 300:
            for i, piece in enumerate(fragment_v6(ip, 152, ts & 0xFFFF)):
                new.append((ts + i, data[:14] + piece, 14 + len(piece)))
        else:
            new.append((ts, data, len(data)))
    return write_pcap(out, new, 1, nanos=True)


def _swapped(nanos: bool) -> Callable[[Path], Path]:
    def make(out: Path) -> Path:
        linktype, frames = read_classic(ECHO)
        return write_pcap(out, frames, linktype, endian=">", nanos=nanos)

    return make


def _padded(out: Path) -> Path:
    _, frames = read_classic(ECHO)
    return write_pcap(out, [(t, d + b"\0" * 6 + b"FCS!", len(d) + 10) for t, d, _ in frames], 1)


def _ng_big_endian(out: Path) -> Path:
    _, frames = read_classic(ECHO)
    blocks = [ng_shb(">"), ng_idb(1, endian=">")]
    blocks += [ng_epb(0, t // 1000, d, endian=">") for t, d, _ in frames]
    out.write_bytes(b"".join(blocks))
    return out


def _ng_multi(out: Path) -> Path:
    """Two sections (little- then big-endian), interfaces of four link types and resolutions,
    obsolete Packet Blocks, blocks to skip, and a custom block Wireshark counts as a frame."""
    _, frames = read_classic(LO)
    le = [
        ng_shb("<"),
        ng_idb(1),  # Ethernet, microseconds
        ng_idb(101, tsresol=9),  # raw IP, nanoseconds
        ng_idb(0, tsresol=0x80 | 20),  # NULL, 2^-20 s
        ng_idb(276, tsresol=3, tsoffset=1000),  # SLL2 (made up below), milliseconds, +1000 s
        ng_block(4, b"\0" * 4),  # a Name Resolution Block (empty): skipped
    ]
    for n, (ts, data, _) in enumerate(frames[:20]):
        kind = n % 4
        if kind == 0:
            le.append(ng_epb(0, ts // 1000, data))
        elif kind == 1:
            le.append(ng_epb(1, ts, ip_of(data)))
        elif kind == 2:
            le.append(ng_pb(2, ts * 2**20 // 10**9, family_header(data, "<", 30)))
        else:
            sll2 = struct.pack(
                "!HHIHBB8s", 0x0800 if data[14] >> 4 == 4 else 0x86DD, 0, 1, 772, 0, 6, b""
            )
            le.append(ng_epb(3, (ts - 1000 * 10**9) // 10**6, sll2 + ip_of(data)))
        if n == 5:
            le.append(ng_block(0x0BAD, struct.pack("<I", 32473) + b"custom"))
        if n == 7:
            le.append(ng_block(0x7FFF1234, b"an unknown block"))
    be = [ng_shb(">"), ng_idb(108, tsresol=6, endian=">")]
    be += [
        ng_epb(0, ts // 1000, family_header(data, ">", 24), endian=">")
        for ts, data, _ in frames[20:]
    ]
    out.write_bytes(b"".join(le + be))
    return out


def _ng_simple(out: Path) -> Path:
    """Simple Packet Blocks of an interface with a snap length of 80: TCP payloads are cut."""
    _, frames = read_classic(ECHO)
    blocks = [ng_shb(), ng_idb(1, snaplen=80), ng_epb(0, frames[0][0] // 1000, frames[0][1])]
    blocks += [ng_spb(d[:80], len(d)) for _, d, _ in frames[1:]]
    out.write_bytes(b"".join(blocks))
    return out


def _editcap(src: Path, *args: str) -> Callable[[Path], Path]:
    def make(out: Path) -> Path:
        editcap = tool("editcap")
        subprocess.run([editcap, *args, str(src), str(out)], check=True, capture_output=True)
        return out

    return make


def _copy(src: Path) -> Callable[[Path], Path]:
    return lambda out: src


VARIANTS: dict[str, Callable[[Path], Path]] = {
    "pcap-usec-le": _copy(ECHO),
    "pcap-nsec-le": _copy(DATA / "dicom_echo_nsec.pcap"),
    "pcap-usec-be": _swapped(nanos=False),
    "pcap-nsec-be": _swapped(nanos=True),
    "pcapng": _copy(DATA / "dicom_echo.pcapng"),
    "pcapng-be": _ng_big_endian,
    "pcapng-merged": _copy(DATA / "merged.pcapng"),
    "pcapng-multi": _ng_multi,
    "pcapng-spb": _ng_simple,
    "lo-v4v6": _copy(LO),
    "sll": _copy(DATA / "any_sll.pcap"),
    "sll2": _copy(DATA / "any_sll2.pcap"),
    "snaplen-tcpdump": _copy(DATA / "lo_snap96.pcap"),
    "snaplen-editcap": _editcap(LO, "-s", "80"),
    "vlan": _relink(LO, 1, lambda d: with_vlans(d, [0x8100])),
    "qinq": _relink(LO, 1, lambda d: with_vlans(d, [0x88A8, 0x8100])),
    "qinq-9100": _relink(LO, 1, lambda d: with_vlans(d, [0x9100, 0x8100])),
    "null-le": _relink(LO, 0, lambda d: family_header(d, "<", 30)),
    "null-be": _relink(LO, 0, lambda d: family_header(d, ">", 28)),
    "loop": _relink(LO, 108, lambda d: family_header(d, ">", 24)),
    "raw": _relink(LO, 101, ip_of),
    "raw-12": _relink(LO, 12, ip_of),
    "raw-14": _relink(LO, 14, ip_of),
    "ipv4": _relink(ECHO, 228, ip_of),
    "ipv6": _relink(LO, 229, ip_of),
    "ipv4-options": _relink(LO, 1, with_ipv4_options),
    "ipv6-ext": _relink(LO, 1, lambda d: d[:14] + v6_ext(ip_of(d)) if d[14] >> 4 == 6 else d),
    "fragments": _fragmented,
    "padding": _padded,
}


@pytest.fixture(params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return VARIANTS[request.param](tmp_path / f"{request.param}.cap")


@pytest.mark.peers
def test_segments_match_tshark(variant: Path) -> None:
    """Frame numbers, ports, raw sequence numbers and TCP lengths are tshark's."""
    expected = tshark_rows(variant)
    segs, stats = segments(variant)
    assert expected
    assert rows(segs) == expected
    assert not stats.truncated
    assert stats.bytes_read == stats.file_size == variant.stat().st_size


@pytest.mark.peers
def test_timestamps_match_tshark_to_the_nanosecond(variant: Path) -> None:
    times = tshark_times(variant)
    ours = {s.frame or 0: s.ts for s in segments(variant)[0]}
    if variant.name.startswith("pcapng-spb"):  # Simple Packet Blocks have no timestamp
        ours = {1: ours[1]}
    assert ours == {frame: times[frame] for frame in ours}


# --- formats and timestamps -------------------------------------------------------------


def test_every_classic_magic_gives_the_same_segments(tmp_path: Path) -> None:
    reference, _ = segments(ECHO)
    for name in ("pcap-nsec-le", "pcap-usec-be", "pcap-nsec-be", "pcapng", "pcapng-be"):
        segs, stats = segments(VARIANTS[name](tmp_path / name))
        assert segs == reference, name
        assert stats.format == ("pcapng" if name.startswith("pcapng") else "pcap")
    assert reference[0].ts == 1652013491508006000
    assert [len(s.payload) for s in reference if s.payload] == [211, 190, 80, 12, 78, 10, 10]


def test_pcapng_interfaces_resolutions_and_sections(tmp_path: Path) -> None:
    path = _ng_multi(tmp_path / "multi.pcapng")
    _, frames = read_classic(LO)
    segs, stats = segments(path)
    assert stats.link_types == {1, 101, 0, 276, 108}
    assert stats.packets == len(frames) + 1  # the custom block is a frame, as in Wireshark
    by_frame = {s.frame: s for s in segs}
    # Each frame holds frames[n] of the source (one later after the custom block, frame 7);
    # the interface's resolution and offset decide what is left of its nanoseconds.
    expected = {}
    for n, (ts, _, _) in enumerate(frames[:28]):
        kind = n % 4 if n < 20 else 4
        expected[n + 1 + (n >= 6)] = [
            ts // 1000 * 1000,  # microseconds
            ts,  # nanoseconds
            ts * 2**20 // 10**9 * 10**9 // 2**20,  # 2^-20 s
            (ts - 10**12) // 10**6 * 10**6 + 10**12,  # milliseconds, +1000 s
            ts // 1000 * 1000,  # the big-endian section: microseconds
        ][kind]
    assert {f: s.ts for f, s in by_frame.items()} == expected
    assert [len(s.payload) for s in segs if s.payload] == [20, 300, 1000, 50] * 2


def test_simple_packet_blocks_use_first_interface_snaplen_and_previous_time(tmp_path: Path) -> None:
    segs, stats = segments(_ng_simple(tmp_path / "spb.pcapng"))
    reference, _ = segments(ECHO)
    assert [s.frame for s in segs] == [s.frame for s in reference]
    assert all(s.ts == reference[0].ts for s in segs)
    for got, want in zip(segs, reference, strict=True):
        assert got.payload == want.payload[: len(got.payload)]
        assert len(got.payload) + got.missing == len(want.payload)
    assert sum(1 for s in segs if s.missing) == stats.snaplen_cut == 4  # payloads over 80 - 66


def test_format_is_found_by_magic_not_name(tmp_path: Path) -> None:
    disguised = tmp_path / "really-pcapng.pcap"
    shutil.copy(DATA / "dicom_echo.pcapng", disguised)
    segs, stats = segments(disguised)
    assert stats.format == "pcapng" and len(segs) == 20


# --- link layers, IP, TCP ---------------------------------------------------------------


def test_link_layers_give_the_same_segments_as_ethernet(tmp_path: Path) -> None:
    reference, _ = segments(LO)
    for name in (
        "vlan",
        "qinq",
        "qinq-9100",
        "null-le",
        "null-be",
        "loop",
        "raw",
        "raw-12",
        "raw-14",
    ):
        segs, stats = segments(VARIANTS[name](tmp_path / name))
        assert segs == reference, name
        assert stats.non_tcp == 2 and stats.undecodable == 0, name
    for name in ("sll", "sll2"):  # the same traffic, captured by tcpdump -i any at once
        segs, _ = segments(DATA / f"any_{name}.pcap")
        assert rows(segs) == rows(reference)
        assert [s.payload for s in segs] == [s.payload for s in reference]


def test_ipv4_options_are_skipped(tmp_path: Path) -> None:
    reference, _ = segments(LO)
    assert segments(VARIANTS["ipv4-options"](tmp_path / "opts.pcap"))[0] == reference


def test_ipv6_extension_headers_are_walked(tmp_path: Path) -> None:
    reference, _ = segments(LO)
    segs, _ = segments(VARIANTS["ipv6-ext"](tmp_path / "ext.pcap"))
    assert segs == reference
    assert len([s for s in segs if len(s.src) == 16]) == 14


def test_fragments_out_of_order_and_overlapping_are_reassembled(tmp_path: Path) -> None:
    reference, _ = segments(LO)
    segs, stats = segments(_fragmented(tmp_path / "frag.pcap"))
    strip = [s._replace(frame=0, ts=0) for s in segs]
    assert strip == [s._replace(frame=0, ts=0) for s in reference]
    assert stats.fragments_reassembled == 4  # 300 and 1000 bytes, over IPv4 and IPv6
    assert stats.fragments == 2 * 5 + 2 * 2 and stats.fragments_incomplete == 0
    # A segment comes at the frame of the fragment that completes it: frame 6 of the capture
    # became frames 6-10 (complete at 9, then a duplicate), its ACK frame 11, and frame 8
    # frames 12-16 (complete at 15).
    assert [s.frame for s in segs][5:8] == [9, 11, 15]


def test_fragment_table_is_bounded_and_expires() -> None:
    table = FragmentTable(timeout_ns=10, max_datagrams=2, max_bytes=100)
    for key in range(3):
        assert table.add((key,), 0, 8, True, b"x" * 8, 8, 6) is None
    assert len(table) == 2 and table.dropped == 1
    assert table.add(("big",), 0, 0, True, b"y" * 120, 120, 6) is None
    assert len(table) == 0  # over the byte cap, the oldest go first, this one too
    assert table.add(("late",), 0, 0, True, b"a" * 8, 8, 6) is None
    assert table.add(("late",), 100, 8, False, b"b" * 8, 8, 6) is None  # after the timeout
    assert table.add(("ok",), 0, 8, False, b"d" * 8, 8, 6) is None
    assert table.add(("ok",), 0, 0, True, b"c" * 8, 8, 6) == (b"c" * 8 + b"d" * 8, 16, 16, 6)


def test_ethernet_padding_and_trailers_are_stripped(tmp_path: Path) -> None:
    reference, _ = segments(ECHO)
    segs, _ = segments(_padded(tmp_path / "padded.pcap"))
    assert segs == reference


def test_snap_length_cut_is_reported_as_missing_bytes() -> None:
    segs, stats = segments(DATA / "lo_snap96.pcap")  # tcpdump -s 96
    full, _ = segments(LO)
    assert rows(segs) == rows(full)
    cut = [s for s in segs if s.missing]
    assert [len(s.payload) + s.missing for s in cut] == [300, 1000, 50, 20, 300, 1000, 50]
    assert [len(s.payload) for s in cut] == [96 - 66] * 3 + [96 - 86] * 4  # IPv4, IPv6
    assert stats.snaplen_cut == 7
    assert all(s.payload == f.payload[: len(s.payload)] for s, f in zip(segs, full, strict=True))


def test_tcp_header_cut_by_snap_length_is_undecodable(tmp_path: Path) -> None:
    segs, stats = segments(_editcap(ECHO, "-s", "50")(tmp_path / "s50.pcap"))
    assert segs == [] and stats.undecodable == 20


def test_non_tcp_and_unsupported_link_types_are_counted(tmp_path: Path) -> None:
    _, stats = segments(LO)
    assert stats.non_tcp == 2 and stats.tcp_segments == 28 and stats.packets == 30
    _, frames = read_classic(ECHO)
    _, stats = segments(write_pcap(tmp_path / "wifi.pcap", frames, 105))
    assert stats.unsupported_linktypes == {105: 20}
    assert stats.warnings() == ["20 frames of unsupported link type 105 (IEEE802_11) skipped"]


@pytest.mark.parametrize(
    ("linktype", "frame", "counter"),
    [
        (1, b"\0" * 13, "undecodable"),  # a runt
        (1, b"\0" * 12 + b"\x08\x00" + b"\x44" + b"\0" * 30, "undecodable"),  # IHL 4
        (1, b"\0" * 12 + b"\x08\x06" + b"\0" * 28, "non_tcp"),  # ARP
        (0, struct.pack("<I", 7) + b"\0" * 40, "non_tcp"),  # an unknown address family
        (101, b"\x10" + b"\0" * 40, "non_tcp"),  # IP version 1
        (229, b"\x60" + b"\0" * 5 + b"\x3b" + b"\0" * 33, "non_tcp"),  # "no next header"
        (229, b"\x60" + b"\0" * 5 + b"\x00" + b"\0" * 33, "undecodable"),  # HBH cut
        (113, b"\0" * 10, "undecodable"),
        (276, b"\0" * 19, "undecodable"),
    ],
)
def test_decoder_counts_what_it_skips(linktype: int, frame: bytes, counter: str) -> None:
    decoder = PacketDecoder()
    assert decoder.decode(0, 1, linktype, memoryview(frame), len(frame)) is None
    assert getattr(decoder.stats, counter) == 1
    assert sum(v for k, v in vars_of(decoder.stats).items() if k != counter) == 0


def vars_of(stats: DecodeStats) -> dict[str, int]:
    return {k: getattr(stats, k) for k in ("non_tcp", "undecodable", "snaplen_cut", "fragments")}


def test_null_accepts_every_af_inet6(tmp_path: Path) -> None:
    _, frames = read_classic(LO)
    v6 = [f for f in frames if f[1][14] >> 4 == 6]
    for af6 in (24, 28, 30, 10):
        for order in "<>":
            decoder = PacketDecoder()
            data = family_header(v6[0][1], order, af6)
            seg = decoder.decode(0, 1, 0, data, len(data))
            assert seg is not None and len(seg.src) == 16, (af6, order)


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [30, 40, 100, 1000, 2200, 2270])
def test_truncated_pcap_yields_what_came_before(tmp_path: Path, cut: int) -> None:
    whole, _ = segments(ECHO)
    path = tmp_path / "cut.pcap"
    path.write_bytes(ECHO.read_bytes()[:cut])
    segs, stats = segments(path)
    assert segs == whole[: len(segs)]
    assert stats.truncated and stats.truncation is not None
    assert f"frame {len(segs) + 1}" in stats.truncation
    assert stats.packets == len(segs)


@pytest.mark.parametrize("cut", [4, 20, 200, 300, 1000, 2700])
def test_truncated_pcapng_yields_what_came_before(tmp_path: Path, cut: int) -> None:
    whole, _ = segments(ECHO)
    path = tmp_path / "cut.pcapng"
    path.write_bytes((DATA / "dicom_echo.pcapng").read_bytes()[:cut])
    segs, stats = segments(path)
    assert segs == whole[: len(segs)]
    assert (
        stats.truncated and stats.truncation and stats.truncation.startswith("capture is truncated")
    )


def test_truncated_file_header_is_a_truncation_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    path.write_bytes(ECHO.read_bytes()[:10])
    segs, stats = segments(path)
    assert segs == []
    assert stats.truncation == "capture is truncated: the file header is cut after 10 of 24 bytes"


def test_truncation_message_names_the_record(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    data = ECHO.read_bytes()
    path.write_bytes(data[: 24 + 16 + 74 + 16 + 50])  # frame 2 cut after 50 of its 74 bytes
    _, stats = segments(path)
    assert (
        stats.truncation
        == "capture is truncated: the last record (frame 2) is cut after 50 of 74 bytes"
    )


def test_damaged_files_stop_with_a_message(tmp_path: Path) -> None:
    _, frames = read_classic(ECHO)
    good = ng_shb() + ng_idb(1) + ng_epb(0, 0, frames[0][1])
    bad = tmp_path / "bad.pcapng"
    bad.write_bytes(good + struct.pack("<II", 6, 5) + b"\0" * 40)
    segs, stats = segments(bad)
    assert len(segs) == 1
    assert stats.truncation == (
        f"capture is damaged after frame 1: a block claims a length of 5 bytes at byte {len(good)}"
    )
    bad.write_bytes(good + ng_epb(3, 0, frames[1][1]))
    assert segments(bad)[1].truncation == (
        f"capture is damaged after frame 1: a packet block names interface 3, which is not "
        f"defined at byte {len(good)}"
    )
    huge = tmp_path / "huge.pcap"
    huge.write_bytes(
        ECHO.read_bytes()[:24] + struct.pack("<IIII", 0, 0, 0xFFFFFFF0, 60) + b"\0" * 60
    )
    _, stats = segments(huge)
    assert (
        stats.truncation
        == "capture is damaged after frame 0: record 1 claims 4294967280 bytes at byte 24"
    )


def test_input_errors(tmp_path: Path) -> None:
    (tmp_path / "empty.pcap").write_bytes(b"")
    (tmp_path / "text.pcap").write_text("Not a capture at all\n")
    (tmp_path / "gz.pcap").write_bytes(b"\x1f\x8b\x08\x00" + b"\0" * 20)
    cases = {
        "empty.pcap": "is empty",
        "text.pcap": "is not a pcap or pcapng capture (starts with 4e 6f 74 20 61 20 63 61); "
        "it looks like text",
        "gz.pcap": "gzip-compressed",
        "missing.pcap": "no such file",
        ".": "is a directory",
    }
    for name, message in cases.items():
        with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
            CaptureFile(tmp_path / name)


def test_read_packets_rejects_what_is_not_a_capture() -> None:
    with pytest.raises(InputError, match="input is empty"):
        list(read_packets(io.BytesIO(b"")))
    with pytest.raises(
        InputError, match=r"input is not a pcap or pcapng capture \(starts with 3c 3f"
    ):
        list(read_packets(io.BytesIO(b"<?xml version")))


# --- streaming --------------------------------------------------------------------------


class Trickle(io.RawIOBase):
    """A stream that hands out a few bytes per read, as a pipe may."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self._n = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer)
        self._n = self._n % 7 + 1
        chunk = self._data[self._pos : self._pos + min(self._n, len(view))]
        view[: len(chunk)] = chunk
        self._pos += len(chunk)
        return len(chunk)


@pytest.mark.parametrize("name", ["dicom_echo.pcap", "dicom_echo.pcapng", "merged.pcapng"])
def test_read_packets_from_a_trickling_stream(name: str) -> None:
    data = (DATA / name).read_bytes()
    whole = list(read_packets(io.BytesIO(data)))
    stats = CaptureStats()
    assert list(read_packets(cast(BinaryIO, Trickle(data)), stats)) == whole  # read()
    assert stats.packets == len(whole) and stats.bytes_read == len(data) and not stats.truncated
    assert list(read_packets(io.BufferedReader(Trickle(data)))) == whole  # read1()
    decoder = PacketDecoder()
    segs = [decoder.decode(*p) for p in whole]
    assert [s for s in segs if s is not None] == segments(DATA / name)[0]


def test_read_packets_from_a_pipe_yields_each_record_when_it_arrives() -> None:
    data = ECHO.read_bytes()
    r, w = os.pipe()
    first_record_end = 24 + 16 + 74
    with os.fdopen(r, "rb") as reader, os.fdopen(w, "wb", buffering=0) as writer:
        writer.write(data[:first_record_end])
        packets = read_packets(reader)
        assert next(packets)[1] == 1  # while the writer is still open

        def feed() -> None:
            writer.write(data[first_record_end:])
            writer.close()

        feeder = threading.Thread(target=feed)
        feeder.start()
        assert len(list(packets)) == 19
        feeder.join()


def test_small_chunks_cross_every_boundary(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = {name: segments(DATA / name)[0] for name in ("dicom_echo.pcap", "merged.pcapng")}
    monkeypatch.setattr(pcap_module, "CHUNK", 5)
    for name, segs in expected.items():
        assert segments(DATA / name)[0] == segs


def test_stats_and_segments_once() -> None:
    with CaptureFile(ECHO) as capture:
        assert capture.stats.file_size == 2271 and capture.stats.format == "pcap"
        segs = capture.segments()
        first = next(segs)
        assert first.frame == 1 and first.flags == 0x02
        rest = list(segs)
        with pytest.raises(RuntimeError):
            list(capture.segments())
    s = capture.stats
    assert (s.packets, s.tcp_segments, s.bytes_read) == (20, 20, 2271)
    assert s.first_ts == first.ts and s.last_ts == rest[-1].ts
    assert s.link_types == {1} and s.warnings() == []


# --- robustness -------------------------------------------------------------------------

HEADERS = [
    ECHO.read_bytes()[:24],
    (DATA / "dicom_echo.pcapng").read_bytes()[:200],  # SHB, IDB and then some
    ng_shb(">") + ng_idb(1, endian=">"),
]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(header=st.sampled_from(HEADERS), tail=st.binary(max_size=600))
def test_garbage_after_a_valid_header_never_raises(
    tmp_path: Path, header: bytes, tail: bytes
) -> None:
    path = tmp_path / "fuzz.cap"
    path.write_bytes(header + tail)
    try:
        with CaptureFile(path) as capture:
            for seg in capture.segments():
                assert isinstance(seg.payload, bytes)
            assert capture.stats.bytes_read == len(header) + len(tail)
    except InputError:
        pass
    for _ in read_packets(io.BytesIO(header + tail)):
        pass


def _sample_frames() -> list[tuple[int, bytes]]:
    _, frames = read_classic(LO)
    out: list[tuple[int, bytes]] = []
    for _, data, _ in frames:
        ip = ip_of(data)
        out += [
            (1, data),
            (1, with_vlans(data, [0x88A8, 0x8100])),
            (101, ip),
            (0, family_header(data, "<", 30)),
        ]
        if ip[0] >> 4 == 6:
            out.append((229, v6_ext(ip)))
            out += [(229, piece) for piece in fragment_v6(ip, 16, 7)]
        elif len(ip) > 300:
            out += [(228, piece) for piece in fragment_v4(ip, [48, 200], [0, 3, 1, 2])]
    return out


SAMPLE_FRAMES = _sample_frames()


@settings(max_examples=500, deadline=None)
@given(data=st.data())
def test_decoder_never_raises_on_mangled_frames(data: st.DataObject) -> None:
    decoder = PacketDecoder()
    for _ in range(data.draw(st.integers(1, 4))):  # several: fragments meet in the table
        linktype, frame = data.draw(st.sampled_from(SAMPLE_FRAMES))
        mangled = bytearray(frame)
        for _ in range(data.draw(st.integers(0, 6))):
            mangled[data.draw(st.integers(0, len(mangled) - 1))] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, len(mangled)))
        orig_len = data.draw(st.integers(0, len(mangled) + 100))
        seg = decoder.decode(0, 1, linktype, bytes(mangled[:cut]), orig_len)
        if seg is not None:
            assert isinstance(seg.payload, bytes) and seg.missing >= 0
            assert len(seg.payload) <= max(cut, 65535)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from(["dicom_echo.pcap", "dicom_echo.pcapng", "merged.pcapng"]),
    flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=6),
)
def test_mangled_files_never_raise(tmp_path: Path, name: str, flips: list[tuple[int, int]]) -> None:
    data = bytearray((DATA / name).read_bytes())
    for where, value in flips:
        data[where % len(data)] = value
    path = tmp_path / "mangled.cap"
    path.write_bytes(bytes(data))
    try:
        with CaptureFile(path) as capture:
            for _ in capture.segments():
                pass
    except InputError:  # the magic number itself was hit
        assert data[:4] != (DATA / name).read_bytes()[:4]
