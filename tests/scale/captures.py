"""Capture folders for the scale tests: the samples, rings split from them by editcap, and a
second capture point that saw the same traffic a little later."""

from __future__ import annotations

import random
import shutil
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
