"""Capture files → capture points: the rule of analyzer.scale.groups, case by case."""

from __future__ import annotations

import random
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from analyzer.scale.groups import Group, group, sequence, stem
from analyzer.sources.pcapinfo import CaptureInfo, Interface, probe
from tests.peers import tool

ROOT = Path(__file__).resolve().parents[2]
S = 1_000_000_000
ETH = (Interface(1, 262144, "eth0", None, "port 104"),)


@pytest.mark.parametrize(
    ("name", "expected_stem", "expected_sequence"),
    [
        ("ring_00001_20261206120000.pcapng", "ring", 1),
        ("/var/cap/pacs-a_00017_20261206120000.pcapng.gz", "pacs-a", 17),
        ("ring_20261206120000_00003.pcapng", "ring", 3),  # dumpcap -b nametimenum:2
        ("night.pcap", "night", None),
        ("night.pcap12", "night", 12),  # tcpdump -C
        ("night.pcap012", "night", 12),  # tcpdump -C -W 100
        ("ct-2026-12-06T12:00:00Z.pcap", "ct", None),  # tcpdump -G with a strftime name
        ("modality 3.pcap", "modality", None),
        ("siteB.pcapng", "siteB", None),
        ("20261206.pcap", "", None),  # nothing but a date: every such name has the same stem
    ],
)
def test_stem_and_sequence(name: str, expected_stem: str, expected_sequence: int | None) -> None:
    assert stem(name) == expected_stem
    assert sequence(name) == expected_sequence


def info(path: str, first: float | None, last: float | None, **kw: object) -> CaptureInfo:
    return CaptureInfo(
        path,
        kw.pop("format", "pcapng"),  # type: ignore[arg-type]
        100,
        None if first is None else int(first * S),
        None if last is None else int(last * S),
        kw.pop("interfaces", ETH),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def files(groups: Sequence[Group]) -> list[tuple[str, ...]]:
    return [g.files for g in groups]


def test_a_ring_buffer_is_one_capture_point_in_time_order_whatever_the_names() -> None:
    """tcpdump -W reuses its file names: name order is not time order."""
    ring = [info(f"r.pcap{n}", t, t + 9) for n, t in [(2, 0), (0, 10), (1, 20), (3, 30)]]
    shuffled = ring[:]
    random.Random(7).shuffle(shuffled)
    assert files(group(shuffled)) == [("r.pcap2", "r.pcap0", "r.pcap1", "r.pcap3")]


def test_two_capture_points_that_overlap_in_time_are_kept_apart() -> None:
    """Same folder, tool, interface and stem: only time tells them apart (rule 2)."""
    a = [info(f"a_{n:05}_20261206120000.pcap", t, t + 9.99) for n, t in [(1, 0), (2, 10)]]
    b = [info(f"a_{n:05}_20261206120005.pcap", t + 5, t + 15) for n, t in [(7, 0), (8, 10)]]
    assert files(group(b + a)) == [
        ("a_00001_20261206120000.pcap", "a_00002_20261206120000.pcap"),
        ("a_00007_20261206120005.pcap", "a_00008_20261206120005.pcap"),
    ]


def test_folders_are_capture_points_of_their_own() -> None:
    a = info("host1/ring_00001_20261206120000.pcapng", 0, 5)
    b = info("host2/ring_00002_20261206120000.pcapng", 6, 9)
    assert files(group([a, b])) == [(a.path,), (b.path,)]


def test_a_sequence_number_twice_means_two_capture_points() -> None:
    """dumpcap restarted with the same file name numbers its ring from 1 again: a file
    cannot continue a ring that already has its number, even when the times allow it, and
    the next numbers follow their own ring."""
    one = [info(f"r_{n:05}_20261206120000.pcapng", n, n + 0.9) for n in (1, 2, 3)]
    two = [info(f"r_{n:05}_20261206130000.pcapng", 10 + n, 10 + n + 0.9) for n in (1, 2)]
    assert files(group(two + one)) == [
        tuple(i.path for i in one),
        tuple(i.path for i in two),
    ]


def test_timestamps_a_little_out_of_order_at_a_file_switch() -> None:
    """The next file of a ring (by its number) begins 2 ms before the last packet of the
    previous one: the same ring (rule 2's exception); 2 s before: another capture point."""
    first = info("ring_00001_20261206120000.pcapng", 0, 10)
    assert len(group([first, info("ring_00002_20261206120000.pcapng", 9.998, 20)])) == 1
    assert len(group([first, info("ring_00002_20261206120000.pcapng", 8, 20)])) == 2
    assert len(group([first, info("ring_00005_20261206120000.pcapng", 9.998, 20)])) == 2


def test_different_origins_are_different_capture_points() -> None:
    base = info("cap_00001_20261206120000.pcapng", 0, 1)
    others = [
        info("cap_00002_20261206120000.pcapng", 2, 3, interfaces=(Interface(1, 262144, "eth1"),)),
        info("cap_00003_20261206120000.pcapng", 4, 5, hardware="another box"),
        info("cap_00004_20261206120000.pcapng", 6, 7, interfaces=(Interface(113, 262144, "eth0"),)),
        info("cap_00005_20261206120000.pcapng", 8, 9, format="pcap"),
        info("other_00006_20261206120000.pcapng", 10, 11),
    ]
    assert len(group([base, *others])) == 6
    assert len(group([base, info("cap_00002_20261206120000.pcapng", 2, 3)])) == 1


def test_files_without_packets_and_files_that_cannot_be_looked_into() -> None:
    ring = [
        info("ring_00001_20261206120000.pcapng", 0, 1),
        info("ring_00003_20261206120000.pcapng", 5, 6),
    ]
    empty = info("ring_00002_20261206120000.pcapng", None, None)
    compressed = info("old.pcap.gz", None, None, format=None)
    lone_empty = info("idle_00001_20261206120000.pcapng", None, None)
    assert files(group([compressed, empty, lone_empty, *ring])) == [
        (
            "ring_00001_20261206120000.pcapng",
            "ring_00003_20261206120000.pcapng",
            "ring_00002_20261206120000.pcapng",
        ),
        ("idle_00001_20261206120000.pcapng",),
        ("old.pcap.gz",),
    ]


def test_capture_points_in_the_order_of_their_first_packets() -> None:
    later = info("later.pcap", 50, 60, format="pcap")
    earlier = info("earlier.pcap", 10, 20, format="pcap")
    assert files(group([later, earlier])) == [("earlier.pcap",), ("later.pcap",)]


def test_real_rings_split_and_shifted_by_editcap(tmp_path: Path) -> None:
    """Files written by a real tool: editcap splits a capture into dumpcap-style numbered
    files, and a copy moved 50 ms later (the same traffic seen at another point), numbered
    from 50, overlaps it in time. In one folder, with one stem, named in shuffled order,
    they make two capture points, each in order."""
    editcap = tool("editcap")
    source = ROOT / "samples" / "store.pcap"
    shifted = tmp_path / "shifted.pcap"
    subprocess.run([editcap, "-t", "0.05", str(source), str(shifted)], check=True, timeout=60)
    (tmp_path / "other").mkdir()
    subprocess.run([editcap, "-c", "15", str(source), str(tmp_path / "ring.pcap")], check=True)
    subprocess.run([editcap, "-c", "15", str(shifted), str(tmp_path / "other" / "ring.pcap")])
    for part in (tmp_path / "other").iterdir():
        _, number, rest = part.name.split("_")
        part.rename(tmp_path / f"ring_{int(number) + 50:05}_{rest}")
    paths = sorted(str(p) for p in tmp_path.glob("ring_*.pcap"))
    assert len(paths) >= 8
    shuffled = paths[:]
    random.Random(3).shuffle(shuffled)
    groups = group(probe(p) for p in shuffled)
    assert files(groups) == [
        tuple(p for p in paths if sequence(p) < 50),  # type: ignore[operator]
        tuple(p for p in paths if sequence(p) >= 50),  # type: ignore[operator]
    ]
