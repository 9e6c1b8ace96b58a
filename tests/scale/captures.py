"""Capture folders for the scale tests: the samples, rings split from them by editcap, and a
second capture point that saw the same traffic a little later."""

from __future__ import annotations

import random
import shutil
import struct
import subprocess
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
