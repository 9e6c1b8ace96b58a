"""What a capture file says about itself (analyzer.sources.pcapinfo), checked against
Wireshark's capinfos on real captures, and on files no tool writes."""

from __future__ import annotations

import itertools
import re
import struct
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.errors import InputError
from analyzer.sources.pcap import CaptureStats, read_packets
from analyzer.sources.pcapinfo import Interface, probe
from tests.analyzer.test_pcap_source import ng_block, ng_epb, ng_idb, ng_option, ng_shb, ng_spb
from tests.pcapgen import Conversation, write_pcap
from tests.peers import tool

ROOT = Path(__file__).resolve().parents[2]
REAL = sorted((ROOT / "samples").glob("*.pcap*")) + sorted(
    (ROOT / "tests" / "data" / "pcap").glob("*.pcap*")
)


def capinfos(path: Path) -> dict[str, object]:
    """First and last packet times (ns) and each interface's fields, as capinfos says."""
    out = subprocess.run(
        [tool("capinfos"), "-a", "-e", "-S", "-I", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    times = {}
    for key in ("First", "Last"):
        found = re.search(rf"{key} packet time:\s+([\d.]+)", out)
        assert found, out
        times[key] = int(Decimal(found.group(1)) * 1_000_000_000)
    interfaces = []
    for block in re.split(r"Interface #\d+ info:", out)[1:]:
        fields = dict(re.findall(r"^\s+([A-Za-z ]+?) = (.*)$", block, re.M))
        interfaces.append(
            (
                fields.get("Name"),
                fields.get("Description"),
                fields.get("Filter string"),
                int(fields["Capture length"]),
            )
        )
    return {"first": times["First"], "last": times["Last"], "interfaces": interfaces}


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_real_captures_as_capinfos_sees_them(path: Path) -> None:
    info = probe(str(path))
    seen = capinfos(path)
    assert info.first_ts == seen["first"]
    assert info.last_ts == seen["last"]
    assert [(i.name, i.description, i.capture_filter, i.snaplen) for i in info.interfaces] == seen[
        "interfaces"
    ]


def test_a_dumpcap_ring_buffer(tmp_path: Path) -> None:
    """A ring buffer dumpcap wrote while DICOM traffic flowed: each file's origin names the
    host, the application and the interface with its filter, and its times are capinfos'."""
    source = ROOT / "samples" / "store.pcap"
    dumpcap = tool("dumpcap")
    # dumpcap reads a capture from a pipe as from an interface and writes its ring buffer.
    with open(source, "rb") as stdin:
        subprocess.run(
            [dumpcap, "-q", "-i", "-", "-b", "packets:20", "-w", str(tmp_path / "ring.pcapng")],
            stdin=stdin,
            capture_output=True,
            timeout=60,
            check=True,
        )
    files = sorted(tmp_path.glob("ring_*.pcapng"))
    assert len(files) >= 3
    infos = [probe(str(f)) for f in files]
    assert len({i.origin for i in infos}) == 1
    assert infos[0].application and infos[0].application.startswith("Dumpcap")
    for f, info in zip(files, infos, strict=True):
        seen = capinfos(f)
        assert (info.first_ts, info.last_ts) == (seen["first"], seen["last"])
    assert all(a.last_ts <= b.first_ts for a, b in itertools.pairwise(infos))  # type: ignore[operator]


def _frames(n: int, t0: float = 1_800_000_000.0) -> list[tuple[float, bytes]]:
    conv = Conversation(("10.0.0.1", 40000), ("10.0.0.2", 104), t0).handshake()
    for i in range(n):
        conv.send(True, bytes([i % 256]) * 100)
    return conv.close().frames


def test_pcap_whose_payload_ends_like_a_record_header(tmp_path: Path) -> None:
    """The last record is found by the header whose length reaches the end of the file;
    payload bytes that look like a header of a shorter record at an implausible time do
    not fool it."""
    frames = _frames(3)
    t_last = frames[-1][0]
    trap = struct.pack("<IIII", 7, 0, 0, 0)  # a 'record' of 0 bytes at 1970-01-01
    frames[-1] = (t_last, frames[-1][1] + trap)
    path = write_pcap(tmp_path / "trap.pcap", frames)
    info = probe(str(path))
    assert info.last_ts == round(t_last * 1e6) * 1000


def test_pcap_cut_short_is_read_through(tmp_path: Path) -> None:
    path = write_pcap(tmp_path / "cut.pcap", _frames(5))
    data = path.read_bytes()
    path.write_bytes(data[:-7])  # the last record loses its end
    info = probe(str(path))
    whole = probe(str(write_pcap(tmp_path / "whole.pcap", _frames(5)[:-1])))
    assert info.last_ts == whole.last_ts


def _pcapng(endian: str, *, second_section: bool = False, spb_only: bool = False) -> bytes:
    shb = ng_block(
        0x0A0D0D0A,
        struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1)
        + ng_option(2, b"Box 1", endian)
        + ng_option(3, b"Plan 9", endian)
        + ng_option(4, b"tapper 2.0", endian)
        + ng_option(0, b"", endian),
        endian,
    )
    idb = ng_block(
        1,
        struct.pack(endian + "HHI", 1, 0, 1514)
        + ng_option(2, b"eth3", endian)
        + ng_option(3, b"PACS uplink", endian)
        + ng_option(11, b"\x00port 104", endian)
        + ng_option(9, bytes([3]), endian)  # milliseconds
        + ng_option(0, b"", endian),
        endian,
    )
    frames = _frames(2)
    if spb_only:
        return shb + idb + b"".join(ng_spb(f, len(f), endian) for _, f in frames)
    body = b"".join(ng_epb(0, int(t * 1000), f, endian=endian) for t, f in frames)
    out = shb + idb + body
    if second_section:
        out += ng_shb(endian) + ng_idb(1, endian=endian) + ng_epb(0, 5_000_000, frames[0][1])
    return out


@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcapng_origin_and_times(tmp_path: Path, endian: str) -> None:
    path = tmp_path / "ng.pcapng"
    path.write_bytes(_pcapng(endian))
    info = probe(str(path))
    assert (info.hardware, info.os, info.application) == ("Box 1", "Plan 9", "tapper 2.0")
    assert info.interfaces == (Interface(1, 1514, "eth3", "PACS uplink", "port 104"),)
    frames = _frames(2)
    assert info.first_ts == int(frames[0][0] * 1000) * 1_000_000
    assert info.last_ts == int(frames[-1][0] * 1000) * 1_000_000


def test_pcapng_with_a_second_section_is_read_through(tmp_path: Path) -> None:
    """The last packet is in a section whose interfaces the head did not describe: the
    file is read through (5 000 000 µs after the epoch: 5 s)."""
    path = tmp_path / "two.pcapng"
    path.write_bytes(_pcapng("<", second_section=True))
    assert probe(str(path)).last_ts == 5_000_000_000


def test_pcapng_of_simple_packets_has_no_times(tmp_path: Path) -> None:
    path = tmp_path / "spb.pcapng"
    path.write_bytes(_pcapng("<", spb_only=True))
    info = probe(str(path))
    assert (info.first_ts, info.last_ts) == (None, None)


def test_pcapng_with_damaged_options_keeps_its_interfaces(tmp_path: Path) -> None:
    """An option that claims to run past its block: read as far as the block goes, never an
    exception."""
    idb = ng_block(1, struct.pack("<HHI", 1, 0, 96) + struct.pack("<HH", 2, 400) + b"eth0")
    frames = _frames(1)
    path = tmp_path / "bad.pcapng"
    path.write_bytes(ng_shb() + idb + ng_epb(0, int(frames[0][0] * 1e6), frames[0][1]))
    info = probe(str(path))
    assert [(i.link_type, i.snaplen) for i in info.interfaces] == [(1, 96)]
    assert info.first_ts == info.last_ts == int(frames[0][0] * 1e6) * 1000


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"", "is empty"), (b"hello, world\n", "not a pcap or pcapng capture")],
)
def test_not_a_capture(tmp_path: Path, content: bytes, words: str) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(content)
    with pytest.raises(InputError, match=words):
        probe(str(path))


_HEADS = [
    struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1),
    struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 0, 1),
    ng_shb() + ng_idb(1, tsresol=9),
    ng_shb(">") + ng_idb(1, endian=">"),
    b"\x0a\x0d\x0d\x0a",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(head=st.sampled_from(_HEADS), body=st.binary(max_size=600), cut=st.integers(0, 700))
def test_crafted_bytes_never_raise_anything_but_input_errors(
    tmp_path_factory: pytest.TempPathFactory, head: bytes, body: bytes, cut: int
) -> None:
    """Whatever follows a capture's first bytes, and wherever the file ends, probing it
    gives an answer or a clear input error; times, when found, are the reader's."""
    path = tmp_path_factory.mktemp("crafted") / "x.pcap"
    path.write_bytes((head + body)[: len(head) + cut])
    try:
        info = probe(str(path))
    except InputError:
        return
    if info.first_ts is not None:
        stats = CaptureStats()
        with open(path, "rb") as f:
            packets = list(read_packets(f, stats))
        assert packets and packets[0][0] == info.first_ts
