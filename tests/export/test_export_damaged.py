"""A capture that lost bytes, was cut short, or began in the middle of a transfer never
gives a full-looking file for the data set it damaged: nothing, or with --partial a
``.partial.dcm`` whose missing ranges the manifest lists (and whose other bytes are right)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dpkt
import pytest
from pydicom import dcmread

from tests.objects import big_image, write_image
from tests.peers import dicomtap_argv

from .mtu import dataset_bytes, store, veth_pair

pytestmark = pytest.mark.peers


def export(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        dicomtap_argv("export", *args), capture_output=True, text=True, timeout=600
    )


class Capture:
    def __init__(self, path: Path, expected: dict[str, bytes], big: str) -> None:
        self.path = path
        self.expected = expected
        self.big = big
        with path.open("rb") as f:
            reader = dpkt.pcap.Reader(f)
            self.linktype = reader.datalink()
            self.packets = list(reader)

    def write(self, out: Path, keep: list[int]) -> Path:
        """A copy with only the packets at indexes ``keep``."""
        with out.open("wb") as f:
            w = dpkt.pcap.Writer(f, snaplen=262144, linktype=self.linktype, nano=True)
            for i in keep:
                w.writepkt(self.packets[i][1], self.packets[i][0])
        return out

    def big_frames(self) -> list[int]:
        """Indexes of the full-size client segments (the big object's data set)."""
        return [
            i
            for i, (_, d) in enumerate(self.packets)
            if len(d) >= 1500 and d[26:30] == self.packets[0][1][26:30]
        ]


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Capture]:
    tmp = tmp_path_factory.mktemp("damaged")
    files = [write_image(tmp / "s1.dcm", index=1), write_image(tmp / "s2.dcm", index=2)]
    files.append(big_image(tmp / "big.dcm", 2 << 20))
    with veth_pair(reorder=False) as pair:
        received, done = store(pair, tmp, files, tmp / "cap.pcap", "-xe")
    assert done.returncode == 0, done.stderr
    expected = {}
    for f in received.iterdir():
        uid = str(dcmread(f, stop_before_pixels=True).SOPInstanceUID)
        expected[uid] = dataset_bytes(f)
    big = max(expected, key=lambda u: len(expected[u]))
    yield Capture(tmp / "cap.pcap", expected, big)


def manifest(path: Path) -> dict[str, dict[str, Any]]:
    return {r["sop_instance"]: r for r in map(json.loads, path.read_text().splitlines())}


def test_a_lost_segment(capture: Capture, tmp_path: Path) -> None:
    frames = capture.big_frames()
    lost = frames[len(frames) // 2]
    cap = capture.write(
        tmp_path / "gap.pcap", [i for i in range(len(capture.packets)) if i != lost]
    )
    out = tmp_path / "out"
    plain = export(str(cap), "-o", str(out), "--manifest", str(tmp_path / "m.jsonl"))
    assert plain.returncode == 1, plain.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{u}.dcm" for u in capture.expected if u != capture.big
    )
    rec = manifest(tmp_path / "m.jsonl")[capture.big]
    assert rec["file"] is None and not rec["complete"] and "left_out" in rec
    partial = export(
        str(cap), "--partial", "-o", str(tmp_path / "p"), "--manifest", str(tmp_path / "p.jsonl")
    )
    assert partial.returncode == 1
    path = tmp_path / "p" / f"{capture.big}.partial.dcm"
    rec = manifest(tmp_path / "p.jsonl")[capture.big]
    assert rec["file"] == path.name and rec["complete"] is False
    missing = rec["missing"]
    assert isinstance(missing, list) and len(missing) == 1
    offset, size = (int(x) for x in missing[0])
    assert size == len(capture.packets[lost][1]) - 66  # the segment's payload
    got, want = dataset_bytes(path), capture.expected[capture.big]
    assert len(got) == len(want)
    assert got[:offset] == want[:offset] and got[offset + size :] == want[offset + size :]
    assert got[offset : offset + size] == bytes(size)


def test_a_capture_cut_short(capture: Capture, tmp_path: Path) -> None:
    frames = capture.big_frames()
    cut = frames[len(frames) // 3]
    cap = capture.write(tmp_path / "cut.pcap", list(range(cut)))
    out = tmp_path / "out"
    result = export(str(cap), "-o", str(out), "--partial", "--manifest", str(tmp_path / "m.jsonl"))
    assert result.returncode == 1
    names = sorted(p.name for p in out.iterdir())
    assert f"{capture.big}.partial.dcm" in names and f"{capture.big}.dcm" not in names
    rec = manifest(tmp_path / "m.jsonl")[capture.big]
    assert rec["missing_end"] is True and rec["complete"] is False
    got = dataset_bytes(out / f"{capture.big}.partial.dcm")
    assert capture.expected[capture.big].startswith(got)


def test_a_capture_begun_mid_transfer(capture: Capture, tmp_path: Path) -> None:
    frames = capture.big_frames()
    start = frames[len(frames) // 2]
    cap = capture.write(tmp_path / "mid.pcap", list(range(start, len(capture.packets))))
    out = tmp_path / "out"
    for partial in ((), ("--partial",)):
        result = export(str(cap), "-o", str(out), *partial)
        assert result.returncode == 0, result.stderr  # nothing selected was written incomplete
        assert not out.exists() or not list(out.iterdir())
