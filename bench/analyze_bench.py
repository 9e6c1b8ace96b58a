"""Benchmark: ``dicomtap analyze`` against tshark's DICOM dissector and the dpkt floor.

Generates C-STORE traffic with DCMTK (storescu → storescp) and captures it with tcpdump:

    mtu1500   CT objects of 30 KB to 2 MB across a veth pair at MTU 1500 (Ethernet-sized
              segments, between two network namespaces): typical hospital traffic;
    loopback  the same objects on a namespace's loopback (MTU 65536);
    big32     objects of 32 MiB across the veth pair at MTU 1500 (tshark's worst case).

Then, in the same run, alternating, times each of

    dicomtap analyze --format json --no-progress CAPTURE > /dev/null  (and --jobs N when the
              installed dicomtap has that option, N = the machine's cores)
    tshark -r CAPTURE -d tcp.port==11112,dicom -Y dicom -T fields -e dicom.pdu.type > /dev/null
    python -c 'for ts, buf in dpkt.pcap.Reader(f): n += 1'   (the floor: reading the
              packet records and nothing else)

and prints wall time and peak RSS (medians of --runs), the ratios, and the load average.
tshark gets --tshark-timeout seconds per run (on big32 it needs more than ten minutes): a
run cut there is reported as "> T s", and the speed-up as a lower bound.
This is a benchmark, not a test: it reports figures and does not pass or fail on them.

Captures are kept in --work (default /tmp/dicomtap-bench) and reused by later runs of the
same --size-mb (--fresh makes them again).

Needs root (network namespaces, tcpdump), DCMTK, tcpdump and tshark. Usage::

    python bench/analyze_bench.py [--size-mb 1024] [--runs 3] [--only mtu1500,loopback]
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
import time
from pathlib import Path

from benchlib import Measured, dcmtk, make_ct_objects, make_objects, measure, sh

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


DPKT_FLOOR = """
import sys, dpkt
n = 0
with open(sys.argv[1], "rb") as f:
    for ts, buf in dpkt.pcap.Reader(f):
        n += 1
"""


def frames(path: Path) -> int:
    """Packet records in a classic pcap file (little-endian, as tcpdump writes here)."""
    count = 0
    with path.open("rb") as f:
        f.seek(24)
        while header := f.read(16):
            if len(header) < 16:
                break
            count += 1
            f.seek(int.from_bytes(header[8:12], "little"), os.SEEK_CUR)
    return count


def has_jobs(dicomtap: str) -> bool:
    """Whether this dicomtap's ``analyze`` takes ``--jobs``."""
    helptext = sh(dicomtap, "analyze", "--help").stdout
    return "--jobs" in helptext


def commands(path: Path, jobs: bool) -> dict[str, list[str]]:
    dicomtap = shutil.which("dicomtap") or sys.exit("dicomtap is not installed in this environment")
    tshark = shutil.which("tshark") or sys.exit("tshark not found (apt install tshark)")
    ours = [dicomtap, "analyze", "--format", "json", "--no-progress"]
    out = {"dicomtap": [*ours, str(path)]}
    if jobs:
        out["dicomtap"] = [*ours, "--jobs", "1", str(path)]
        out["dicomtap_jobs"] = [*ours, "--jobs", str(os.cpu_count() or 1), str(path)]
    out["tshark"] = [
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
    out["dpkt"] = [sys.executable, "-c", DPKT_FLOOR, str(path)]
    return out


def compare(
    path: Path, runs: int, tshark_runs: int, tshark_timeout: float, jobs: bool
) -> dict[str, object]:
    """Every tool on ``path``, ``runs`` times each (tshark ``tshark_runs`` times), alternating;
    medians and ratios."""
    argvs = commands(path, jobs)
    times: dict[str, list[Measured]] = {name: [] for name in argvs}
    for i in range(max(runs, tshark_runs)):
        for name, argv in argvs.items():
            if i < (tshark_runs if name == "tshark" else runs):
                times[name].append(measure(argv, tshark_timeout if name == "tshark" else None))
    size = path.stat().st_size
    result: dict[str, object] = {
        "capture_mb": round(size / 1e6, 1),
        "frames": frames(path),
        "runs": runs,
        "tshark_runs": tshark_runs,
    }
    walls: dict[str, float] = {}
    for name, samples in times.items():
        walls[name] = statistics.median(m.wall_s for m in samples)
        result[f"{name}_s"] = round(walls[name], 2)
        result[f"{name}_cut"] = any(m.stopped for m in samples)
        # a run stopped early says nothing of memory
        rss = [m.peak_rss_kib for m in samples if not m.stopped]
        result[f"{name}_peak_rss_mb"] = round(statistics.median(rss) / 1024, 1) if rss else None
        result[f"all_{name}_s"] = [round(m.wall_s, 2) for m in samples]
    result["speedup_vs_tshark"] = round(walls["tshark"] / walls["dicomtap"], 2)
    result["dicomtap_over_dpkt"] = round(walls["dicomtap"] / walls["dpkt"], 2)
    result["dicomtap_mb_per_s"] = round(size / 1e6 / walls["dicomtap"], 1)
    if "dicomtap_jobs" in walls:
        result["jobs"] = os.cpu_count()
        result["speedup_jobs_vs_tshark"] = round(walls["tshark"] / walls["dicomtap_jobs"], 2)
        result["jobs_over_one_job"] = round(walls["dicomtap"] / walls["dicomtap_jobs"], 2)
    return result


CAPTURES = ("mtu1500", "loopback", "big32")


def make_capture(name: str, work: Path, size_mb: int) -> tuple[Path, dict[str, object]]:
    """The capture ``name`` of ``size_mb`` MiB of objects, made unless already in ``work``."""
    cap = work / f"{name}_{size_mb}MiB.pcap"
    info_path = cap.with_suffix(".json")
    if cap.exists() and info_path.exists():
        info: dict[str, object] = json.loads(info_path.read_text())
        print(f"{name}: reusing {cap} ({cap.stat().st_size / 1e6:.0f} MB)", flush=True)
        return cap, info
    if name == "big32":
        files = make_objects(work / "objects32", size_mb)
    else:
        files = make_ct_objects(work / "objects_ct", size_mb)
    teardown()
    try:
        if name == "loopback":
            sh("ip", "netns", "add", NS_LO)
            sh(*netns(NS_LO, "ip", "link", "set", "lo", "up"))
            info = capture(NS_LO, NS_LO, "lo", "127.0.0.1", files, cap)
        else:
            setup_veth()
            info = capture(NS_SERVER, NS_CLIENT, "dtb1", "10.78.0.2", files, cap)
    finally:
        teardown()
    info = {"objects": len(files), **info}
    info_path.write_text(json.dumps(info))
    print(f"{name}: made {cap} ({cap.stat().st_size / 1e6:.0f} MB), {info}", flush=True)
    return cap, info


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size-mb", type=int, default=1024, help="C-STORE payload per capture (MiB)"
    )
    parser.add_argument("--runs", type=int, default=3, help="timed runs per tool and capture")
    parser.add_argument(
        "--tshark-runs", type=int, help="timed runs of tshark per capture (default: --runs)"
    )
    parser.add_argument(
        "--work", type=Path, default=Path("/tmp/dicomtap-bench"), help="objects and captures"
    )
    parser.add_argument("--fresh", action="store_true", help="make the captures again")
    parser.add_argument(
        "--only",
        default=",".join(CAPTURES),
        help=f"comma-separated captures to run, of {', '.join(CAPTURES)}",
    )
    parser.add_argument(
        "--tshark-timeout", type=float, default=300, help="seconds per tshark run at most"
    )
    args = parser.parse_args()
    chosen = [c.strip() for c in args.only.split(",") if c.strip()]
    if unknown := set(chosen) - set(CAPTURES):
        sys.exit(f"unknown capture(s): {', '.join(sorted(unknown))}")
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark creates network namespaces and captures with tcpdump")
    args.work.mkdir(parents=True, exist_ok=True)
    if args.fresh:
        for old in args.work.glob(f"*_{args.size_mb}MiB.*"):
            old.unlink()
    dicomtap = shutil.which("dicomtap") or sys.exit("dicomtap is not installed in this environment")
    jobs = has_jobs(dicomtap)
    print(f"{sys.argv[0]} {' '.join(sys.argv[1:])}", flush=True)
    print(f"cores: {os.cpu_count()}; load average at start: {load()}", flush=True)
    if not jobs:
        print("dicomtap analyze has no --jobs option here: one process only", flush=True)
    results: dict[str, dict[str, object]] = {}
    for name in chosen:
        cap, info = make_capture(name, args.work, args.size_mb)
        tshark_runs = args.runs if args.tshark_runs is None else args.tshark_runs
        results[name] = {
            **info,
            **compare(cap, args.runs, tshark_runs, args.tshark_timeout, jobs),
        }
        results[name]["load_after"] = load()
        print(json.dumps({"capture": name, **results[name]}), flush=True)
    print(f"load average at end: {load()}")
    print()
    columns = ["dicomtap", *(["dicomtap_jobs"] if jobs else []), "tshark", "dpkt"]
    print(
        f"{'capture':<9} {'MB':>6} {'frames':>9} "
        + " ".join(f"{c + ' s':>15}" for c in columns)
        + f" {'vs tshark':>9} {'vs dpkt':>8} {'RSS MB':>7} {'tshark RSS':>10}"
    )
    for name, r in results.items():
        cells = []
        for c in columns:
            cells.append(f"{('> ' if r[f'{c}_cut'] else '') + str(r[f'{c}_s']):>15}")
        bound = "≥" if r["tshark_cut"] else ""
        print(
            f"{name:<9} {r['capture_mb']:>6} {r['frames']:>9} "
            + " ".join(cells)
            + f" {bound + str(r['speedup_vs_tshark']) + 'x':>9}"
            f" {str(r['dicomtap_over_dpkt']) + 'x':>8}"
            f" {r['dicomtap_peak_rss_mb']!s:>7} {r['tshark_peak_rss_mb'] or '-'!s:>10}"
        )


if __name__ == "__main__":
    main()
