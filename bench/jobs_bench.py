"""Benchmark of ``dicomtap analyze --jobs N`` on one large capture at Ethernet MTU.

Makes a capture of about ``--mb`` MB: ``samples/store_mtu1500.pcap`` (C-STOREs in 1500-byte
frames) over and over, the copies overlapping in time, each on client ports of its own (see
``tests.scale.captures.overlapping``). Then times, in the same conditions,

    dicomtap analyze --jobs 1 --format json -o /dev/null CAPTURE
    dicomtap analyze --jobs N --format json -o /dev/null CAPTURE

a few times each, alternating, checks that both wrote the same records, and prints the
median wall time, the CPU time of all the processes of the run and the peak RSS of the
largest process (GNU time's figures), with the load average before each run: on a machine
other work keeps busy, the wall time of N jobs says little without it. This is a benchmark,
not a test.

Usage::

    python bench/jobs_bench.py [--mb 220] [--jobs 2] [--runs 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from scale_bench import Run, measure  # also puts the repository on sys.path

from tests.scale.captures import overlapping

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "store_mtu1500.pcap"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=220, help="size of the capture to make")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="make the capture here and keep it (or use it)")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="dtjobs"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        capture = root / f"store_mtu1500_{args.mb}MB.pcap"
        if not capture.exists():
            copies = max(1, (args.mb << 20) // SAMPLE.stat().st_size)
            overlapping([SAMPLE], capture, copies=copies)
        print(f"{capture.name}: {capture.stat().st_size / 1e6:.0f} MB")
        dicomtap = [sys.executable, "-c", "from analyzer.cli import main; main()", "analyze"]
        runs: dict[int, list[Run]] = {1: [], args.jobs: []}
        for _ in range(args.runs):
            for jobs in runs:
                out = root / f"jobs{jobs}.jsonl"
                argv = [*dicomtap, "--jobs", str(jobs), "--format", "json", "-o", str(out)]
                runs[jobs].append(measure([*argv, str(capture)]))
        if not filecmp.cmp(root / "jobs1.jsonl", root / f"jobs{args.jobs}.jsonl", shallow=False):
            sys.exit("the outputs differ")
        walls = {}
        for jobs, figures in runs.items():
            walls[jobs] = statistics.median(f[0] for f in figures)
            print(
                f"--jobs {jobs}: wall {walls[jobs]:6.1f} s"
                f"  CPU {statistics.median(f[1] for f in figures):6.1f} s"
                f"  peak RSS {max(f[2] for f in figures) / 1024:.0f} MiB"
                "  (wall/CPU/load average of each run: "
                + ", ".join(f"{f[0]:.1f}/{f[1]:.1f}/{f[3]:.1f}" for f in figures)
                + ")"
            )
        print(f"--jobs {args.jobs} is {walls[1] / walls[args.jobs]:.2f}x --jobs 1; same output")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
