"""Benchmark: ``dicomtap export`` and ``dicomtap anonymize`` on a capture of about 1 GB.

Makes the MTU 1500 capture of bench/analyze_bench.py (storescu → storescp across a veth pair
between two network namespaces, one packet per 1500-byte segment), or takes an existing one
with ``--capture``, then times, each ``--runs`` times:

    dicomtap analyze --format json CAPTURE > /dev/null      (for scale)
    dicomtap export CAPTURE -o DIR                           (then DIR is emptied)
    dicomtap anonymize CAPTURE -o OUT.pcapng                 (reads twice, writes, checks)

and prints wall and CPU time, peak RSS and throughput (capture MB per CPU second). A
benchmark, not a test: it reports figures and does not pass or fail on them. Needs root to
make the capture.

    python bench/export_bench.py [--size-mb 1024] [--runs 1] [--keep DIR] [--capture FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from analyze_bench import NS_CLIENT, NS_SERVER, capture, setup_veth, teardown
from benchlib import make_objects, measure


def timed(argv: list[str], runs: int, size: int, after: object = None) -> dict[str, object]:
    walls, cpus, rss = [], [], []
    for _ in range(runs):
        run = measure(argv)
        walls.append(run.wall_s)
        cpus.append(run.cpu_s)
        rss.append(run.peak_rss_kib)
        if callable(after):
            after()
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "mb_per_cpu_s": round(size / 1e6 / cpu, 1),
        "peak_rss_mb": round(statistics.median(rss) / 1024, 1),
        "load_average": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="C-STORE payload (MiB)")
    parser.add_argument("--runs", type=int, default=1, help="timed runs per command")
    parser.add_argument("--keep", type=Path, help="keep objects and files in this directory")
    parser.add_argument("--capture", type=Path, help="use this capture instead of making one")
    args = parser.parse_args()
    dicomtap = shutil.which("dicomtap") or sys.exit("dicomtap is not installed here")
    work = args.keep or Path(tempfile.mkdtemp(prefix="dicomtap-export-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    cap = args.capture
    if cap is None:
        if os.geteuid() != 0:
            sys.exit("run as root to make the capture (network namespaces, tcpdump)")
        files = make_objects(work / "objects", args.size_mb)
        teardown()
        try:
            setup_veth()
            cap = work / "store_mtu1500.pcap"
            info = capture(NS_SERVER, NS_CLIENT, "dtb1", "10.78.0.2", files, cap)
            print(f"capture: {cap.stat().st_size / 1e6:.0f} MB, {info}", flush=True)
        finally:
            teardown()
    size = cap.stat().st_size
    out = work / "exported"

    def empty() -> None:
        shutil.rmtree(out, ignore_errors=True)

    results = {
        "capture_mb": round(size / 1e6, 1),
        "analyze": timed(
            [dicomtap, "analyze", "--format", "json", "--no-progress", str(cap)], args.runs, size
        ),
        "export": timed(
            [dicomtap, "export", "--no-progress", str(cap), "-o", str(out)], args.runs, size, empty
        ),
        "anonymize": timed(
            [
                dicomtap,
                "anonymize",
                "--no-progress",
                str(cap),
                "-o",
                str(work / "anonymized.pcapng"),
            ],
            args.runs,
            size,
        ),
    }
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
