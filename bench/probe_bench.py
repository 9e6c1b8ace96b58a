"""Benchmark: the cost of ``dicomtap probe`` against DCMTK's ``echoscu``, and a full storage
scan, against DCMTK's storescp on loopback, in the same run.

Times, alternating, ``runs`` times each (medians printed):

    echoscu -aec STORESCP 127.0.0.1 PORT
    dicomtap probe 127.0.0.1:PORT --called STORESCP --format json

as whole processes (wall time, what a monitoring system waits for), and the probe's own
measurement of itself (``timing_ms.total``: from before connecting to after the release,
without Python's start-up) and of the C-ECHO (request to response, as observed). Then times
``dicomtap probe ... --scan storage`` (every storage SOP class pynetdicom knows, 8 transfer
syntaxes each, in associations of 128 contexts). It reports figures; it does not pass or
fail on them.

Needs DCMTK. Usage::

    python bench/probe_bench.py [--runs 15] [--port 11190]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import dcmtk

DICOMTAP = [sys.executable, "-c", "from analyzer.cli import main; main()"]


def timed(argv: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({out.returncode}): {out.stdout}{out.stderr}")
    return elapsed, out.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--port", type=int, default=11190)
    args = parser.parse_args()
    port = str(args.port)
    echoscu = [dcmtk("echoscu"), "-aec", "STORESCP", "127.0.0.1", port]
    probe = [*DICOMTAP, "probe", f"127.0.0.1:{port}", "--called", "STORESCP", "--format", "json"]
    with tempfile.TemporaryDirectory() as tmp:
        scp = subprocess.Popen(
            [dcmtk("storescp"), "-aet", "STORESCP", "-od", tmp, port],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.5)
            timed(echoscu)  # warm the page cache for both
            timed(probe)
            echo_wall, probe_wall, probe_self, probe_echo = [], [], [], []
            for _ in range(args.runs):
                echo_wall.append(timed(echoscu)[0])
                elapsed, out = timed(probe)
                doc = json.loads(out)
                probe_wall.append(elapsed)
                probe_self.append(doc["timing_ms"]["total"] / 1000)
                probe_echo.append(doc["services"][0]["latency_ms"] / 1000)
            scan_wall, out = timed([*probe[:-2], "--scan", "storage", "--format", "json"])
            scan = json.loads(out)["scan"]
            imports, _ = timed([*DICOMTAP, "--version"])
        finally:
            scp.terminate()
            scp.wait(10)
    med = statistics.median
    print(f"runs: {args.runs} each, alternating, storescp on 127.0.0.1:{port}")
    print(f"echoscu, whole process:            median {med(echo_wall) * 1000:8.1f} ms")
    print(f"dicomtap probe, whole process:     median {med(probe_wall) * 1000:8.1f} ms")
    print(f"  of which Python start-up (dicomtap --version, once): {imports * 1000:.1f} ms")
    print(f"dicomtap probe, its own measure:   median {med(probe_self) * 1000:8.1f} ms")
    print(f"  C-ECHO latency observed:         median {med(probe_echo) * 1000:8.2f} ms")
    print(f"ratio probe/echoscu (whole process): {med(probe_wall) / med(echo_wall):.1f}x")
    print(
        f"storage scan: {scan['contexts']} contexts in {scan['associations']} associations, "
        f"{len(scan['accepted'])} SOP classes accepted: {scan['elapsed_ms']:.0f} ms scanning, "
        f"{scan_wall * 1000:.0f} ms whole process"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
