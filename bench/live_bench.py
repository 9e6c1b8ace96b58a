"""Benchmark: the highest sustained C-STORE rate ``dicomtap live`` keeps up with on loopback.

DCMTK's storescu sends GBs of C-STORE traffic to ``storescp --ignore`` on the loopback of a
network namespace while ``dicomtap live -i lo --port 11112 --format json`` runs there. The
rate is set with a token bucket on the loopback (``tc qdisc ... tbf``), from a few hundred
MB/s down, plus one run at full speed (no limit). For each run the benchmark reads the live
summary record and reports:

* the traffic rate (bytes captured / seconds storescu took),
* packets dropped (dumpcap's count: kernel, dumpcap, interface), and whether the analysis
  fell behind the capture (its ``capture`` summary), and whether every C-STORE was seen
  with its Success status,
* the CPU time of dicomtap + dumpcap.

A rate is *kept up with* when, in every run, nothing was dropped, the analysis never fell
behind, and every exchange was seen. Medians over the runs. This is a benchmark, not a
test: it reports figures and does not pass or fail on them (the machine is noisy).

Needs root (network namespace, tc), DCMTK, dumpcap. Usage::

    python bench/live_bench.py [--size-mb 2048] [--runs 3] [--rates 400,200,150,100,0]
                               [--buffer-size 64] [--keep DIR]

(``0`` in ``--rates``: no limit, full speed.)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchlib import dcmtk, make_objects, sh

PORT = 11112
NS = "dtlivebench"
LIVE = [sys.executable, "-c", "from analyzer.cli import main; main()", "live"]


def netns(*argv: str) -> list[str]:
    return ["ip", "netns", "exec", NS, *argv]


def set_rate(mb_per_s: int) -> None:
    """A token bucket on the namespace's loopback (0: none)."""
    sh(*netns("tc", "qdisc", "del", "dev", "lo", "root"), check=False)
    if mb_per_s:
        sh(
            *netns(
                "tc",
                "qdisc",
                "add",
                "dev",
                "lo",
                "root",
                "tbf",
                "rate",
                f"{mb_per_s * 8}mbit",
                "burst",
                "1mb",
                "latency",
                "200ms",
            )
        )


@dataclass
class Run:
    limit: int
    transfer_s: float
    mb_per_s: float
    dropped: int
    fell_behind: int
    max_delay_ms: float
    exchanges_ok: bool
    cpu_s: float
    exit_status: int | None

    @property
    def kept_up(self) -> bool:
        return not self.dropped and not self.fell_behind and self.exchanges_ok


def wait_for(path: Path, text: str, pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in path.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {text!r} in {path}: {path.read_text(errors='replace')}")
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0]:
                raise RuntimeError(f"dicomtap live exited: {path.read_text(errors='replace')}")
        time.sleep(0.05)


def one_run(limit: int, files: list[Path], work: Path, buffer_mb: int) -> Run:
    out, err = work / "live.jsonl", work / "live.err"
    argv = netns(*LIVE, "-i", "lo", "--port", str(PORT), "--format", "json", "-B", str(buffer_mb))
    with open(out, "wb") as o, open(err, "wb") as e:
        # posix_spawn, and os.wait4 below: the CPU time of dicomtap and of dumpcap, its child
        pid = os.posix_spawnp(
            argv[0],
            argv,
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, o.fileno(), 1),
                (os.POSIX_SPAWN_DUP2, e.fileno(), 2),
            ],
        )
    try:
        wait_for(err, "capturing on", pid)
        start = time.monotonic()
        scu = sh(
            *netns(dcmtk("storescu"), "-xe", "127.0.0.1", str(PORT), *map(str, files)),
            check=False,
            timeout=3600,
        )
        seconds = time.monotonic() - start
        if scu.returncode != 0:
            raise RuntimeError(f"storescu failed: {scu.stderr[-2000:]}")
        time.sleep(1.0)  # the last packets through dumpcap's 250 ms read timeout
    finally:
        os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + 300
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)
            break
        time.sleep(0.1)
    records = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    summary = records[-1]
    if summary.get("type") != "summary":
        raise RuntimeError(f"no summary from dicomtap live: {err.read_text()[-2000:]}")
    capture = summary["capture"]
    stores = [r for r in records if r["type"] == "exchange" and r["command"] == "C-STORE"]
    ok = len(stores) == len(files) and all(r["status"] == 0 for r in stores)
    return Run(
        limit=limit,
        transfer_s=seconds,
        mb_per_s=capture["bytes"] / seconds / 1e6,
        dropped=capture["dropped"]["total"],
        fell_behind=capture["fell_behind"],
        max_delay_ms=capture["max_delay_ms"] or 0.0,
        exchanges_ok=ok,
        cpu_s=usage.ru_utime + usage.ru_stime,
        exit_status=os.waitstatus_to_exitcode(status),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=2048, help="traffic per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rates", default="400,200,150,100,0", help="MB/s limits (0: none)")
    parser.add_argument("--buffer-size", type=int, default=64, help="dicomtap live -B (MiB)")
    parser.add_argument("--keep", type=Path, help="keep the work files here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespace, tc)")
    for tool in ("tc", "dumpcap"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found")
    rates = [int(r) for r in args.rates.split(",")]
    work = args.keep or Path(tempfile.mkdtemp(prefix="dicomtap-live-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    files = make_objects(work / "objects", args.size_mb)
    print(f"{len(files)} C-STOREs of 32 MiB per run, {args.runs} runs per rate", file=sys.stderr)
    sh("ip", "netns", "del", NS, check=False)
    sh("ip", "netns", "add", NS)
    scp = None
    results: dict[int, list[Run]] = {}
    try:
        sh(*netns("ip", "link", "set", "lo", "up"))
        scp = subprocess.Popen(
            netns(dcmtk("storescp"), "--ignore", str(PORT)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        time.sleep(0.5)
        set_rate(0)
        start = time.monotonic()
        sh(*netns(dcmtk("storescu"), "-xe", "127.0.0.1", str(PORT), *map(str, files)), timeout=3600)
        base = time.monotonic() - start
        print(f"no capture, no limit: {args.size_mb} MiB in {base:.2f} s", file=sys.stderr)
        for rate in rates:
            set_rate(rate)
            for i in range(args.runs):
                run = one_run(rate, files, work, args.buffer_size)
                results.setdefault(rate, []).append(run)
                print(f"limit {rate or 'none'} MB/s, run {i + 1}: {run}", file=sys.stderr)
    finally:
        sh(*netns("tc", "qdisc", "del", "dev", "lo", "root"), check=False)
        if scp is not None:
            scp.send_signal(signal.SIGTERM)
            scp.wait(30)
        sh("ip", "netns", "del", NS, check=False)
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(
        f"\ndicomtap live -i lo --port {PORT} --format json -B {args.buffer_size}, "
        f"{args.size_mb} MiB of C-STORE per run, medians of {args.runs}:"
    )
    print(
        f"{'limit MB/s':>10} {'traffic MB/s':>12} {'dropped':>8} {'behind':>6} "
        f"{'max delay ms':>12} {'all seen':>8} {'CPU s':>6} {'kept up':>7}"
    )
    best = 0.0
    for rate, runs in results.items():
        kept = all(r.kept_up for r in runs)
        mbps = statistics.median(r.mb_per_s for r in runs)
        if kept:
            best = max(best, mbps)
        print(
            f"{rate or 'none':>10} {mbps:12.1f} {statistics.median(r.dropped for r in runs):8.0f} "
            f"{statistics.median(r.fell_behind for r in runs):6.0f} "
            f"{statistics.median(r.max_delay_ms for r in runs):12.1f} "
            f"{sum(r.exchanges_ok for r in runs):>5}/{len(runs)} "
            f"{statistics.median(r.cpu_s for r in runs):6.1f} {'yes' if kept else 'no':>7}"
        )
    print(f"highest rate kept up with (no drop, never behind, every exchange): {best:.1f} MB/s")


if __name__ == "__main__":
    main()
