"""Benchmark: ``dicomtap analyze --format json`` against tshark's DICOM dissector.

Generates ≥ 1 GB of C-STORE traffic with DCMTK (storescu → storescp) and captures it with
tcpdump twice: across a veth pair at MTU 1500 (Ethernet-sized segments, between two
network namespaces) and on a namespace's loopback (MTU 65536). Then, in the same run, times

    dicomtap analyze --format json CAPTURE > /dev/null
    tshark -r CAPTURE -d tcp.port==11112,dicom -Y dicom -T fields -e dicom.pdu.type > /dev/null

a few times each, alternating, and prints wall time and peak RSS (medians) and the ratios.
This is a benchmark, not a test: it reports figures and does not pass or fail on them.

Needs root (network namespaces, tcpdump), DCMTK, tcpdump and tshark. Usage::

    python bench/analyze_bench.py [--size-mb 1024] [--runs 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import dcmtk, make_objects, sh

PORT = 11112
NS_CLIENT, NS_SERVER, NS_LO = "dtbench-c", "dtbench-s", "dtbench-lo"


def netns(*argv: str) -> list[str]:
    return ["ip", "netns", "exec", *argv]


def setup_veth() -> None:
    for ns in (NS_CLIENT, NS_SERVER):
        sh("ip", "netns", "add", ns)
        sh(*netns(ns, "ip", "link", "set", "lo", "up"))
    sh(
        "ip",
        "link",
        "add",
        "dtb0",
        "netns",
        NS_CLIENT,
        "type",
        "veth",
        "peer",
        "dtb1",
        "netns",
        NS_SERVER,
    )
    for ns, dev, addr in ((NS_CLIENT, "dtb0", "10.78.0.1/24"), (NS_SERVER, "dtb1", "10.78.0.2/24")):
        sh(*netns(ns, "ip", "addr", "add", addr, "dev", dev))
        # One packet per 1500-byte segment in the capture: no segmentation offload.
        sh(
            *netns(
                ns,
                "ip",
                "link",
                "set",
                dev,
                "mtu",
                "1500",
                "gso_max_size",
                "1500",
                "gso_max_segs",
                "1",
            )
        )
        sh(*netns(ns, "ip", "link", "set", dev, "up"))


def teardown() -> None:
    for ns in (NS_CLIENT, NS_SERVER, NS_LO):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def capture(
    server_ns: str, client_ns: str, iface: str, host: str, files: list[Path], out: Path
) -> dict[str, object]:
    """Run storescu → storescp while tcpdump writes ``out``; return what the tools said."""
    scp = subprocess.Popen(
        netns(server_ns, dcmtk("storescp"), "--ignore", str(PORT)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    dump = subprocess.Popen(
        netns(
            server_ns,
            "tcpdump",
            "-n",
            "-i",
            iface,
            "-B",
            "524288",
            "-s",
            "0",
            "-w",
            str(out),
            f"tcp port {PORT}",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            listening = sh(*netns(server_ns, "ss", "-ltnH", f"sport = :{PORT}")).stdout.strip()
            if listening or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        # tcpdump says "listening on IFACE" once it captures: on a loaded machine a fixed
        # pause was not always enough, and the capture then began after the association did.
        assert dump.stderr is not None
        ready = dump.stderr.readline()
        if "listening on" not in ready:
            raise RuntimeError(f"tcpdump did not start: {ready.strip()}")
        start = time.monotonic()
        scu = sh(
            *netns(client_ns, dcmtk("storescu"), "-xe", host, str(PORT), *map(str, files)),
            check=False,
            timeout=1800,
        )
        seconds = time.monotonic() - start
    finally:
        time.sleep(2.0)  # the last packets on their way to the file
        os.kill(dump.pid, signal.SIGINT)
        _, err = dump.communicate(timeout=60)
        os.kill(scp.pid, signal.SIGTERM)
        scp.wait(30)
    dropped = next((line for line in err.splitlines() if "dropped by kernel" in line), "?")
    return {"storescu_exit": scu.returncode, "transfer_s": round(seconds, 2), "tcpdump": dropped}


def measure(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one run, stdout discarded.

    posix_spawn (vfork, then exec) rather than fork: a forked child is charged the parent's
    resident pages until it execs, which would inflate its peak RSS.
    """
    null = os.open(os.devnull, os.O_WRONLY)
    start = time.perf_counter()
    try:
        pid = os.posix_spawn(
            argv[0],
            argv,
            os.environ,
            file_actions=[(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)],
        )
        _, status, usage = os.wait4(pid, 0)
    finally:
        os.close(null)
    wall = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"{argv[0]} failed with status {status}")
    return wall, usage.ru_maxrss


def compare(path: Path, runs: int) -> dict[str, object]:
    dicomtap = shutil.which("dicomtap") or sys.exit("dicomtap is not installed in this environment")
    tshark = shutil.which("tshark") or sys.exit("tshark not found (apt install tshark)")
    ours_cmd = [dicomtap, "analyze", "--format", "json", "--no-progress", str(path)]
    theirs_cmd = [
        tshark,
        "-r",
        str(path),
        "-d",
        f"tcp.port=={PORT},dicom",
        "-Y",
        "dicom",
        "-T",
        "fields",
        "-e",
        "dicom.pdu.type",
    ]
    ours, theirs = [], []
    for _ in range(runs):
        ours.append(measure(ours_cmd))
        theirs.append(measure(theirs_cmd))
    o_wall = statistics.median(w for w, _ in ours)
    t_wall = statistics.median(w for w, _ in theirs)
    o_rss = statistics.median(r for _, r in ours) / 1024
    t_rss = statistics.median(r for _, r in theirs) / 1024
    size = path.stat().st_size
    return {
        "capture_mb": round(size / 1e6, 1),
        "dicomtap_s": round(o_wall, 2),
        "tshark_s": round(t_wall, 2),
        "speedup": round(t_wall / o_wall, 2),
        "dicomtap_mb_per_s": round(size / 1e6 / o_wall, 1),
        "dicomtap_peak_rss_mb": round(o_rss, 1),
        "tshark_peak_rss_mb": round(t_rss, 1),
        "runs": runs,
        "all_dicomtap_s": [round(w, 2) for w, _ in ours],
        "all_tshark_s": [round(w, 2) for w, _ in theirs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size-mb", type=int, default=1024, help="C-STORE payload to generate (MiB)"
    )
    parser.add_argument("--runs", type=int, default=3, help="timed runs per tool and capture")
    parser.add_argument("--keep", type=Path, help="keep objects and captures in this directory")
    parser.add_argument("--only", choices=["mtu1500", "loopback"], help="one of the two captures")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark creates network namespaces and captures with tcpdump")
    work = args.keep or Path(tempfile.mkdtemp(prefix="dicomtap-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, object] = {}
    teardown()
    try:
        files = make_objects(work / "objects", args.size_mb)
        print(
            f"sending {len(files)} objects of {files[0].stat().st_size / 2**20:.0f} MiB", flush=True
        )
        if args.only in (None, "mtu1500"):
            setup_veth()
            cap = work / "store_mtu1500.pcap"
            info = capture(NS_SERVER, NS_CLIENT, "dtb1", "10.78.0.2", files, cap)
            print(f"MTU 1500 capture: {cap.stat().st_size / 1e6:.0f} MB, {info}", flush=True)
            results["mtu1500"] = {**info, **compare(cap, args.runs)}
            print(json.dumps(results["mtu1500"]), flush=True)
            teardown()
        if args.only in (None, "loopback"):
            sh("ip", "netns", "add", NS_LO)
            sh(*netns(NS_LO, "ip", "link", "set", "lo", "up"))
            cap = work / "store_loopback.pcap"
            info = capture(NS_LO, NS_LO, "lo", "127.0.0.1", files, cap)
            print(f"loopback capture: {cap.stat().st_size / 1e6:.0f} MB, {info}", flush=True)
            results["loopback"] = {**info, **compare(cap, args.runs)}
            print(json.dumps(results["loopback"]), flush=True)
    finally:
        teardown()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(
        f"{'capture':<10} {'size MB':>8} {'dicomtap s':>11} {'tshark s':>9} {'speed-up':>9} "
        f"{'dicomtap RSS MB':>16} {'tshark RSS MB':>14}"
    )
    for name, r in results.items():
        assert isinstance(r, dict)
        print(
            f"{name:<10} {r['capture_mb']:>8} {r['dicomtap_s']:>11} {r['tshark_s']:>9} "
            f"{r['speedup']:>8}x {r['dicomtap_peak_rss_mb']:>16} {r['tshark_peak_rss_mb']:>14}"
        )


if __name__ == "__main__":
    main()
