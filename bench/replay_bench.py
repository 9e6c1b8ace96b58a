"""Benchmark: ``dicomtap replay`` of a large C-STORE association against DCMTK storescp.

Generates C-STORE traffic with DCMTK (storescu → storescp, objects of 32 MiB) on a network
namespace's loopback and captures it with tcpdump; then, in the same namespace, replays the
captured requestor against a fresh ``storescp --ignore``:

    dicomtap replay CAPTURE -a 1 --to 127.0.0.1:11112                  (as fast as it takes)
    dicomtap replay CAPTURE -a 1 --to 127.0.0.1:11112 --pace captured  (once)
    dicomtap analyze --format json CAPTURE                             (for reference)

and prints wall time and peak RSS (medians; ``ip netns exec`` execs the command in the same
process, so the RSS is the command's), the replay's last line, and the captured transfer
time. The replay reads the capture twice (analysis, then the data sets as they are
sent) and never holds a data set: its memory should not grow with the objects' size. This is
a benchmark, not a test: it reports figures and does not pass or fail on them.

Needs root (a network namespace, tcpdump), DCMTK and tcpdump. Usage::

    python bench/replay_bench.py [--size-mb 256] [--runs 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from analyze_bench import PORT, capture, netns
from benchlib import dcmtk, make_objects, measure, sh

NS = "dtbench-replay"


def result_line(argv: list[str]) -> str:
    """The last line a replay prints (``Result: ...``), from a run of its own (untimed)."""
    out = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
    lines = out.stdout.strip().splitlines()
    return f"{lines[-1] if lines else out.stderr.strip()} (exit status {out.returncode})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=256, help="C-STORE payload (MiB)")
    parser.add_argument("--runs", type=int, default=3, help="timed replays at the fast pace")
    parser.add_argument("--keep", type=Path, help="keep objects and the capture in this directory")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark creates a network namespace and runs tcpdump")
    dicomtap = shutil.which("dicomtap") or sys.exit("dicomtap is not installed in this environment")
    ip = shutil.which("ip") or sys.exit("ip not found (apt install iproute2)")
    work = args.keep or Path(tempfile.mkdtemp(prefix="dicomtap-replay-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)
    scp: subprocess.Popen[bytes] | None = None
    try:
        sh("ip", "netns", "add", NS)
        sh(*netns(NS, "ip", "link", "set", "lo", "up"))
        files = make_objects(work / "objects", args.size_mb)
        cap = work / "store_loopback.pcap"
        info = capture(NS, NS, "lo", "127.0.0.1", files, cap)
        print(
            f"captured {len(files)} C-STOREs of {files[0].stat().st_size / 2**20:.0f} MiB: "
            f"{cap.stat().st_size / 1e6:.0f} MB, {info}",
            flush=True,
        )
        scp = subprocess.Popen(
            netns(NS, dcmtk("storescp"), "--ignore", str(PORT)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        time.sleep(1.0)
        target = ["--to", f"127.0.0.1:{PORT}"]
        replay = [ip, "netns", "exec", NS, dicomtap, "replay", str(cap), "-a", "1", *target]
        print(f"replay: {result_line(replay)}", flush=True)
        fast = []
        for n in range(args.runs):
            run = measure(replay)  # raises unless the replay exits 0 (no difference)
            fast.append((run.wall_s, run.peak_rss_kib))
            print(
                f"replay {n + 1}: {run.wall_s:.1f} s, peak RSS {run.peak_rss_kib / 1024:.0f} MB",
                flush=True,
            )
        paced = measure([*replay, "--pace", "captured"])
        wall, rss = paced.wall_s, paced.peak_rss_kib
        print(f"replay --pace captured: {wall:.1f} s, peak RSS {rss / 1024:.0f} MB", flush=True)
        analyzed = measure([dicomtap, "analyze", "--format", "json", "--no-progress", str(cap)])
        a_wall, a_rss = analyzed.wall_s, analyzed.peak_rss_kib
        print()
        print(f"capture: {cap.stat().st_size / 1e6:.0f} MB; storescu took {info['transfer_s']} s")
        print(
            f"replay (fast, median of {args.runs}): "
            f"{statistics.median(w for w, _ in fast):.1f} s, "
            f"peak RSS {statistics.median(r for _, r in fast) / 1024:.0f} MB"
        )
        print(f"replay --pace captured: {wall:.1f} s, peak RSS {rss / 1024:.0f} MB")
        print(f"analyze: {a_wall:.1f} s, peak RSS {a_rss / 1024:.0f} MB")
    finally:
        if scp is not None:
            scp.terminate()
            scp.wait(30)
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
