"""Benchmark: many capture files, one process against ``dicomtap analyze --dask``.

Makes a folder tree of capture points, each a ring buffer of files named as dumpcap names
them (``tap_00001_20261124194122.pcap``), filled with the traffic of the bundled samples
(C-STORE at MTU 1500 and on loopback, C-FIND, C-MOVE, rejections, aborts) repeated one
after the other, every capture point from its own time. Then times, in the same run:

    dicomtap analyze --format json -o /dev/null FILES...            (one process)
    dicomtap analyze --dask --format json -o /dev/null FOLDER...     (local cluster)

a few times each, alternating, and prints the median wall time, the CPU time of all the
processes of the run (user + system, Dask's workers included) and the peak RSS of the
largest process (GNU time's figures), with the load average before each run: on a
machine other work keeps busy, a run gets a share of the cores whatever its number of
processes, and the CPU time says what it cost.
One process reads every file as one capture; ``--dask`` analyses each capture point as a
task. Both do the same work: the capture points do not overlap in time. This is a
benchmark, not a test.

Usage::

    python bench/scale_bench.py [--points 4] [--files 5] [--file-mb 20] [--runs 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchlib  # noqa: F401 - puts the repository on sys.path

from tests.pcapgen import read_classic

ROOT = Path(__file__).resolve().parents[1]
MIX = ("store_mtu1500.pcap", "store.pcap", "move_orthanc.pcap", "find_orthanc.pcap")


def make_tree(root: Path, points: int, files: int, file_mb: int) -> list[Path]:
    """``points`` folders of ``files`` ring files of about ``file_mb`` MB each."""
    traffic = []
    for name in MIX:
        linktype, frames = read_classic(ROOT / "samples" / name)
        assert linktype == 1, name
        t0 = frames[0][0]
        traffic.append([(ts - t0, data, orig) for ts, data, orig in frames])
    folders = []
    for p in range(points):
        folder = root / f"point{p + 1}"
        folder.mkdir(parents=True)
        folders.append(folder)
        clock = 1_800_000_000 * 10**9 + p * 10**12  # each capture point its own hours
        for f in range(files):
            path = folder / f"tap_{f + 1:05}_20270115{p:02}{f:04}.pcap"
            clock = _write(path, traffic, clock, file_mb << 20)
    return folders


def _write(path: Path, traffic: list[list[tuple[int, bytes, int]]], clock: int, size: int) -> int:
    """Repeat ``traffic`` from ``clock`` on until ``path`` holds ``size`` bytes; the clock
    after the last packet."""
    written = 0
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1))
        while written < size:
            for frames in traffic:
                for offset, data, orig in frames:
                    ts = clock + offset
                    out.write(struct.pack("<IIII", ts // 10**9, ts % 10**9, len(data), orig))
                    out.write(data)
                    written += 16 + len(data)
                clock += frames[-1][0] + 10**9  # the next conversation a second later
    return clock


Run = tuple[float, float, int, float]
"""Wall seconds, CPU seconds, peak RSS of the largest process (KiB), load average before."""


def measure(argv: list[str]) -> Run:
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%U %S %M", *argv], capture_output=True, text=True, timeout=3600
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(argv)}\n{proc.stderr}")
    user, system, rss = proc.stderr.strip().splitlines()[-1].split()
    return wall, float(user) + float(system), int(rss), load


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=4)
    ap.add_argument("--files", type=int, default=5)
    ap.add_argument("--file-mb", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument(
        "--keep", type=Path, help="make the captures here and keep them (or use those there)"
    )
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="dtscale"))
    try:
        tree = root / "captures"
        if tree.exists():  # made by an earlier run with --keep
            folders = sorted(p for p in tree.iterdir() if p.is_dir())
        else:
            folders = make_tree(tree, args.points, args.files, args.file_mb)
        files = sorted(str(p) for f in folders for p in f.iterdir())
        size = sum(Path(f).stat().st_size for f in files)
        print(f"{len(files)} files, {len(folders)} capture points, {size / 1e6:.0f} MB")
        dicomtap = [sys.executable, "-c", "from analyzer.cli import main; main()", "analyze"]
        runs: dict[str, list[Run]] = {"one process": [], "--dask": []}
        for _ in range(args.runs):
            runs["one process"].append(
                measure([*dicomtap, "--format", "json", "-o", "/dev/null", *files])
            )
            runs["--dask"].append(
                measure(
                    [*dicomtap, "--dask", "--format", "json", "-o", "/dev/null"]
                    + [str(f) for f in folders]
                )
            )
        for name, figures in runs.items():
            wall = statistics.median(f[0] for f in figures)
            cpu = statistics.median(f[1] for f in figures)
            print(
                f"{name:12} wall {wall:6.1f} s  CPU {cpu:6.1f} s"
                f"  peak RSS {max(f[2] for f in figures) / 1024:.0f} MiB"
                f"  (wall, CPU, load average of each run: "
                + ", ".join(f"{f[0]:.1f}/{f[1]:.1f}/{f[3]:.1f}" for f in figures)
                + ")"
            )
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
