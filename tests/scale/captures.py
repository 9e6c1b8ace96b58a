"""Capture folders for the scale tests: the samples, rings split from them by editcap, and a
second capture point that saw the same traffic a little later."""

from __future__ import annotations

import heapq
import random
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from analyzer.findings import Diagnosis
from analyzer.pipeline import analyze_files
from analyzer.reports.jsonl import records
from analyzer.scale.runner import InProcess, plan
from analyzer.scale.runner import records as scaled_records
from analyzer.scale.task import Settings
from analyzer.store import Store
from tests.pcapgen import read_classic
from tests.peers import tool

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "samples").glob("*.pcap*"))
GENERATOR = "dicomtap test"

Record = dict[str, Any]


def plain(paths: list[Path] | list[str], **options: Any) -> list[Record]:
    """What ``dicomtap analyze --format json`` writes for ``paths`` read as one capture;
    ``options`` are its ``ports`` and ``keep``."""
    store = Store()
    analyze_files([str(p) for p in paths], store, rules=Diagnosis(), **options)
    return list(records(store, GENERATOR))


def in_process(paths: list[str], **options: Any) -> list[Record]:
    """The scaled analysis of ``paths``, every task run in this process; ``options`` are
    :class:`~analyzer.scale.task.Settings`' ``ports`` and ``keep``."""
    executor = InProcess()
    settings = Settings(generator=GENERATOR, **options)
    return list(scaled_records(plan(paths, executor), settings, executor))


def split(source: Path, folder: Path, packets: int, name: str = "ring") -> list[Path]:
    """``source`` cut by editcap into files of ``packets`` packets, named as dumpcap names
    a ring buffer (``NAME_00000_20261124194122.pcap``), in time order."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{name}{''.join(source.suffixes) or '.pcap'}"
    editcap = tool("editcap")
    subprocess.run(
        [editcap, "-c", str(packets), str(source), str(out)],
        check=True,
        timeout=60,
        capture_output=True,
    )
    return sorted(folder.glob(f"{name}_*"))


def shifted(source: Path, target: Path, seconds: float) -> Path:
    """A copy of ``source`` with every timestamp ``seconds`` later (editcap -t)."""
    subprocess.run(
        [tool("editcap"), "-t", str(seconds), str(source), str(target)],
        check=True,
        timeout=60,
        capture_output=True,
    )
    return target


def shuffled(paths: list[Path], seed: int = 1) -> list[str]:
    out = [str(p) for p in paths]
    random.Random(seed).shuffle(out)
    return out


def folder_of_samples(folder: Path) -> list[Path]:
    """Every sample copied into ``folder`` (each is a capture point of its own)."""
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(p, folder / p.name)) for p in SAMPLES]


def repeated(sample: Path, target: Path, copies: int) -> Path:
    """``sample``'s traffic ``copies`` times over, each copy a second after the last, as
    one capture (a larger capture of real traffic, for a task that takes a while)."""
    linktype, frames = read_classic(sample)
    t0 = frames[0][0]
    span = frames[-1][0] - t0 + 1_000_000_000
    with open(target, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, linktype))
        for copy in range(copies):
            for ts, data, orig in frames:
                ts += copy * span
                out.write(struct.pack("<IIII", ts // 10**9, ts % 10**9, len(data), orig) + data)
    return target


def overlapping(samples: list[Path], target: Path, copies: int, gap_ns: int = 20_000_000) -> Path:
    """A larger capture of many concurrent connections: the traffic of the Ethernet
    ``samples``, ``copies`` times over, each sample's copy starting ``gap_ns`` after the one
    before it (so the copies overlap in time), every copy on client ports of its own."""
    streams = []
    for sample in samples:
        linktype, frames = read_classic(sample)
        if linktype == 1:
            t0 = frames[0][0]
            streams.append([(ts - t0, data, orig) for ts, data, orig in frames])
    start = 1_800_000_000 * 10**9

    def copy(k: int, frames: list[tuple[int, bytes, int]]) -> Iterator[tuple[int, int, bytes, int]]:
        for offset, data, orig in frames:
            yield start + k * gap_ns + offset, k, _client_ports_moved(data, k), orig

    copies_in_order = (
        copy(c * len(streams) + i, frames)
        for c in range(copies)
        for i, frames in enumerate(streams)
    )
    with open(target, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1))
        for ts, _, data, orig in heapq.merge(*copies_in_order):
            out.write(struct.pack("<IIII", ts // 10**9, ts % 10**9, len(data), orig) + data)
    return target


def _client_ports_moved(frame: bytes, k: int) -> bytes:
    """``frame`` (Ethernet) with its ephemeral TCP ports (32768 and up) moved to copy
    ``k``'s own range of 53 ports: the same conversation on other client ports, never those
    of another copy (for up to 528 copies). Checksums are not recomputed (dicomtap does not
    check them)."""
    if frame[12:14] != b"\x08\x00" or len(frame) < 34 or frame[23] != 6:
        return frame
    at = 14 + (frame[14] & 0x0F) * 4
    if len(frame) < at + 4:
        return frame
    ports = [
        32768 + (k % 528) * 53 + p % 53 if p >= 32768 else p
        for p in struct.unpack_from("!HH", frame, at)
    ]
    return frame[:at] + struct.pack("!HH", *ports) + frame[at + 4 :]
