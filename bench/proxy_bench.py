"""Benchmark of ``dicomtap proxy`` against a direct connection, in the same run.

Not a test: it prints figures. Everything runs on the loopback of a private network
namespace (root) or of the host, with real peers:

* throughput: DCMTK storescu sending a few large generated files (>= 1 GB in all) to
  ``storescp --ignore`` (received, not written: the disk is not the bottleneck), direct and
  through the proxy, alternating, ``--repeat`` times; medians and the ratio;
* latency: a raw-socket client doing ``--echoes`` C-ECHOs on one association (one PDU out,
  one in, TCP_NODELAY), direct and proxied, with the proxy's outputs off (``-q``) and on
  (the live log on stdout and in ``--log``, ``--jsonl``; then also ``--pcap``), each in a
  fresh proxy, the configurations taking turns ``--repeat`` times; p50/p99 of each and of
  the difference. ``--pace MS`` waits that long between echoes (a modality is not a loop);
* memory: the proxy's RSS (with its recording process) idle and with ``--concurrent``
  associations open at once. CPU figures also count the recording process.

``--baseline DIR`` runs the proxy of another checkout of dicomtap (``DIR``, e.g. a worktree
of the main branch) in the same runs, taking turns with this one: before and after a change,
in the same conditions (on a shared machine the load moves more than most changes do).
Given more than once, every checkout takes its turn (variants of a change, side by side).

Usage (from the repository root, as root for the namespace)::

    python bench/proxy_bench.py [--size-mb 1024] [--files 4] [--repeat 3] [--echoes 1000]
                                [--concurrent 50] [--pcap] [--scp-pdu 16384]
                                [--latency-only] [--pace MS] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# benchlib also when this module is imported as bench.proxy_bench (the namespace's clients)
sys.path.insert(1, str(ROOT / "bench"))

from benchlib import cpu_seconds, rss_kib  # noqa: E402

from tests.factories import associate_rq, echo_rq, release_rq  # noqa: E402
from tests.objects import big_image  # noqa: E402
from tests.peers import Net, Process, dcmtk, dicomtap_argv, running  # noqa: E402

UPSTREAM = 11113
PROXY = 11112
RELAY = 11115  # socat, the baseline relay
BASELINE = 11114  # the proxy of the first --baseline DIR, next to this one (the others: 11116...)

_HOLDER = """
import socket, struct, sys, time
sys.path.insert(0, {root!r})
from tests.factories import associate_rq, release_rq
socks = []
for i in range({count}):
    s = socket.create_connection(("127.0.0.1", {port}))
    s.sendall(associate_rq(calling=f"HOLD{{i:03d}}", called="ANY-SCP"))
    socks.append(s)
for s in socks:
    head = s.recv(6)
    s.recv(struct.unpack(">BBI", head)[2], socket.MSG_WAITALL)
print("held", flush=True)
sys.stdin.readline()
for s in socks:
    s.sendall(release_rq())
    s.recv(10)
    s.close()
"""


def _read_pdu(sock: socket.socket) -> bytes:
    head = sock.recv(6, socket.MSG_WAITALL)
    length = struct.unpack(">BBI", head)[2]
    return head + sock.recv(length, socket.MSG_WAITALL)


def echo_latencies(port: int, count: int, pace_ms: float = 0.0) -> list[float]:
    """Round-trip times (µs) of ``count`` C-ECHOs on one association, ``pace_ms`` apart."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(associate_rq(calling="BENCH", called="ANY-SCP"))
        assert _read_pdu(sock)[0] == 2
        out = []
        for n in range(1, count + 1):
            rq = echo_rq(message_id=n & 0xFFFF)
            start = time.perf_counter_ns()
            sock.sendall(rq)
            _read_pdu(sock)
            out.append((time.perf_counter_ns() - start) / 1000)
            if pace_ms:
                time.sleep(pace_ms / 1000)
        sock.sendall(release_rq())
        _read_pdu(sock)
    return out


def _in_namespace(net: Net, fn: str, *args: str) -> str:
    """Run a function of this module inside the namespace (clients must live there)."""
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); import bench.proxy_bench as b; "
        f"print(b.{fn}({', '.join(args)}))"
    )
    out = net.run([sys.executable, "-c", code], timeout=600, check=True)
    return out.stdout.strip()


def store_seconds(net: Net, port: int, files: list[Path]) -> float:
    start = time.perf_counter()
    result = net.run(
        [dcmtk("storescu"), "-aet", "BENCH", "127.0.0.1", str(port), *map(str, files)], timeout=600
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"storescu failed: {result.stderr}")
    return elapsed


@contextmanager
def plain_relay(net: Net, tmp: Path) -> Iterator[Process | None]:
    """socat relaying RELAY to the SCP, if installed: the baseline of a relay without a
    parser, so the proxy's ratio can be read against what the machine allows."""
    socat = shutil.which("socat")
    if socat is None:
        yield None
        return
    argv = [
        socat,
        "-b",
        "262144",
        f"TCP-LISTEN:{RELAY},fork,reuseaddr",
        f"TCP:127.0.0.1:{UPSTREAM}",
    ]
    with running(net, argv, tmp / "socat.log", RELAY) as proc:
        yield proc


def _pcap_args(tmp: Path) -> list[str]:
    return ["--pcap", str(tmp / "bench.pcapng"), "--pcap-max-size", "256MiB", "--keep-files", "2"]


#: Output configurations of the latency runs: name, and what they add to the command line.
OUTPUTS: dict[str, Callable[[Path], list[str]]] = {
    "outputs off (-q)": lambda tmp: ["-q"],
    "live log + --log + --jsonl": lambda tmp: [
        "--log",
        str(tmp / "bench.log"),
        "--jsonl",
        str(tmp / "bench.jsonl"),
    ],
    "... + --pcap": lambda tmp: [
        "--log",
        str(tmp / "bench.log"),
        "--jsonl",
        str(tmp / "bench.jsonl"),
        *_pcap_args(tmp),
    ],
}


@contextmanager
def running_proxy(
    net: Net,
    tmp: Path,
    args: list[str],
    root: Path = ROOT,
    port: int = PROXY,
    probe: Path | None = None,
) -> Iterator[Process]:
    """The proxy of the checkout ``root`` with ``args``; its stdout (the live log, unless -q)
    goes to a file. (``python -c`` imports from its working directory: ``root``'s code.)
    With ``probe``, the rounds of recording on its relay's thread are timed into that file
    (:mod:`bench.recording_probe`, this checkout's) when it exits."""
    base = ["--listen", f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{UPSTREAM}"]
    argv = dicomtap_argv("proxy", *base, *args)
    env = None
    if probe is not None:
        hook = f"import sys; sys.path.insert(1, {str(ROOT / 'bench')!r}); import recording_probe"
        argv = [argv[0], "-c", f"{hook}; {argv[2]}", *argv[3:]]
        env = {"PROXY_BENCH_PROBE": str(probe)}
    log = tmp / f"proxy-{port}.log"
    with running(net, argv, log, port, cwd=root, env=env, stop_timeout=60) as proc:
        yield proc


def latencies(
    net: Net, tmp: Path, repeat: int, echoes: int, pace: float, baselines: list[Path]
) -> None:
    """C-ECHO round trips direct and through the proxy (and the baseline's), for each output
    configuration, and through socat (the floor of any relay on the machine)."""
    checkouts = {"": ROOT, **{_who(i, len(baselines)): b for i, b in enumerate(baselines)}}
    names = [f"{who}{name}" for who in checkouts for name in OUTPUTS]
    direct: dict[str, list[float]] = {name: [] for name in names}
    proxied: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    rounds: dict[str, dict[str, list[int]]] = {
        name: {"wall": [], "cpu": [], "readable": []} for name in names
    }
    socat_direct: list[float] = []
    socat: list[float] = []
    loads: list[float] = []
    with plain_relay(net, tmp) as relay:
        for _ in range(repeat):
            for output, args in OUTPUTS.items():
                for who, root in checkouts.items():
                    name = f"{who}{output}"
                    probe = tmp / "probe.json"
                    with running_proxy(net, tmp, args(tmp), root, probe=probe) as px:
                        for port, into in ((UPSTREAM, direct), (PROXY, proxied)):
                            before = cpu_seconds(px.popen.pid)
                            into[name] += _echoes(net, port, echoes, pace)
                        cpu[name].append((cpu_seconds(px.popen.pid) - before) / echoes * 1e6)
                    with contextlib.suppress(OSError, ValueError):
                        timed = json.loads(probe.read_text())
                        for key in ("wall", "cpu", "readable"):
                            rounds[name][key] += timed[key]
                    probe.unlink(missing_ok=True)
            if relay is not None:
                socat_direct += _echoes(net, UPSTREAM, echoes, pace)
                socat += _echoes(net, RELAY, echoes, pace)
            loads.append(os.getloadavg()[0])
    paced = f", {pace:g} ms apart" if pace else ", back to back"
    print(f"\nC-ECHO round trip over {repeat} x {echoes} echoes{paced} (µs):")
    heads = ("direct p50/p99", "proxied p50/p99", "added p50/p99", "proxy CPU/echo", "added p90")
    print(f"  {'proxy outputs':38s}" + "".join(f" {h:>16s}" for h in heads))
    rows: list[tuple[str, list[float], list[float], float | None]] = [
        (name, direct[name], proxied[name], statistics.median(cpu[name])) for name in names
    ]
    if socat:
        rows.append(("socat (no parsing, in C)", socat_direct, socat, None))
    for name, d, p, used in rows:
        d50, d99 = percentile(d, 0.5), percentile(d, 0.99)
        p50, p99 = percentile(p, 0.5), percentile(p, 0.99)
        cost = f"{used:16.0f}" if used is not None else f"{'':>16s}"
        p90 = percentile(p, 0.9) - percentile(d, 0.9)
        print(
            f"  {name:38s} {d50:7.0f} {d99:8.0f} {p50:7.0f} {p99:8.0f} "
            f"{p50 - d50:7.0f} {p99 - d99:8.0f} {cost} {p90:16.0f}"
        )
    print(f"  load average (1 min) during the runs: {min(loads):.1f} to {max(loads):.1f}")
    _print_rounds(rounds)


def _print_rounds(rounds: dict[str, dict[str, list[int]]]) -> None:
    """The rounds of recording on each proxy's relay thread after which a socket was
    readable: what a request or an answer waited for (µs; CPU: the thread's own time)."""
    print(
        "\nRounds of recording on the relay's thread that a readable socket waited for "
        "(µs; CPU: the\nthread's own time, without what the machine's other processes took):"
    )
    titles = ("rounds", "waited", "wall p50/p99/max", "CPU p50/p99/max")
    print(f"  {'proxy outputs':38s} {titles[0]:>7s} {titles[1]:>7s} ", end="")
    print(f"{titles[2]:>20s} {titles[3]:>20s}")
    for name, timed in rounds.items():
        waited = [i for i, readable in enumerate(timed["readable"]) if readable]
        if not waited:
            continue
        cells = []
        for key in ("wall", "cpu"):
            values = [float(timed[key][i]) for i in waited]
            cells.append("/".join(f"{percentile(values, q):.0f}" for q in (0.5, 0.99, 1.0)))
        print(f"  {name:38s} {len(timed['wall']):7d} {len(waited):7d} ", end="")
        print(f"{cells[0]:>20s} {cells[1]:>20s}")


def _echoes(net: Net, port: int, echoes: int, pace: float) -> list[float]:
    out = json.loads(_in_namespace(net, "echo_latencies", str(port), str(echoes), str(pace)))
    assert isinstance(out, list)
    return out


def _who(i: int, count: int) -> str:
    """The name of the ``i``-th of ``count`` baselines in the tables."""
    return "baseline: " if count == 1 else f"baseline {i + 1}: "


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def throughput(
    net: Net, tmp: Path, files: list[Path], repeat: int, pcap: bool, baselines: list[Path]
) -> None:
    """C-STORE throughput direct, through the proxy (and the baseline's) and through socat,
    taking turns."""
    total = sum(f.stat().st_size for f in files)
    args = ["-q", *(_pcap_args(tmp) if pcap else [])]
    direct: list[float] = []
    names = ["proxied", *(_who(i, len(baselines)).rstrip(": ") for i in range(len(baselines)))]
    proxied: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    relayed: list[float] = []
    with contextlib.ExitStack() as stack:
        proxies = {"proxied": (stack.enter_context(running_proxy(net, tmp, args)), PROXY)}
        for i, baseline in enumerate(baselines):
            base_args = ["-q"]  # two proxies must not write the same pcapng
            port = BASELINE if i == 0 else RELAY + i
            px = stack.enter_context(running_proxy(net, tmp, base_args, baseline, port))
            proxies[names[i + 1]] = (px, port)
        relay = stack.enter_context(plain_relay(net, tmp))
        for _ in range(repeat):
            direct.append(total / store_seconds(net, UPSTREAM, files) / 1e6)
            for who, (px, port) in proxies.items():
                before = cpu_seconds(px.popen.pid)
                proxied[who].append(total / store_seconds(net, port, files) / 1e6)
                cpu[who].append((cpu_seconds(px.popen.pid) - before) / (total / 1e9))
            if relay is not None:
                relayed.append(total / store_seconds(net, RELAY, files) / 1e6)
    d = statistics.median(direct)
    print("\nC-STORE throughput (MB/s), runs:", " ".join(f"{x:.0f}" for x in direct), end="")
    for who, runs in proxied.items():
        if runs:
            print(f" | {who}:", " ".join(f"{x:.0f}" for x in runs), end="")
    print()
    print(f"  direct median {d:.0f} MB/s")
    for who, runs in proxied.items():
        if runs:
            p = statistics.median(runs)
            print(
                f"  {who} median {p:.0f} MB/s, ratio {p / d:.1%}; the proxy's CPU time "
                f"{statistics.median(cpu[who]):.2f} s per GB (median)"
            )
    if relayed:
        r = statistics.median(relayed)
        print(
            f"  socat (a C byte relay that parses nothing), same runs: median "
            f"{r:.0f} MB/s, ratio {r / d:.1%}: what any relay leaves on this machine"
        )
    print(f"  load average (1 min) at the end: {os.getloadavg()[0]:.1f}")


def memory(net: Net, tmp: Path, concurrent: int) -> None:
    """The proxy's RSS idle and with ``concurrent`` associations open."""
    with running_proxy(net, tmp, ["-q"]) as px:
        idle = rss_kib(px.popen.pid)
        holder = subprocess.Popen(
            net.wrap(
                [
                    sys.executable,
                    "-c",
                    _HOLDER.format(root=str(ROOT), count=concurrent, port=PROXY),
                ]
            ),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout is not None and holder.stdin is not None
        if holder.stdout.readline().strip() != "held":
            raise RuntimeError("the holder could not open its associations")
        time.sleep(0.5)
        busy = rss_kib(px.popen.pid)
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(60)
    print(
        f"\nproxy RSS: {idle / 1024:.1f} MiB idle, "
        f"{busy / 1024:.1f} MiB with {concurrent} associations open"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=1024, help="total C-STORE size (MB)")
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--echoes", type=int, default=1000)
    parser.add_argument("--pace", type=float, default=0.0, help="ms between two C-ECHOs")
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--pcap", action="store_true", help="the proxy also writes a pcapng")
    parser.add_argument("--latency-only", action="store_true", help="only the C-ECHO round trips")
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        action="append",
        default=[],
        help="another checkout of dicomtap whose proxy runs in the same runs (before/after; "
        "may be given more than once)",
    )
    parser.add_argument(
        "--scp-pdu",
        type=int,
        default=16384,
        help="storescp's maximum receive PDU (4096..131072): the size of the "
        "P-DATA-TF PDUs storescu sends",
    )
    opts = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="proxy-bench-") as tmpdir, Net() as net:
        tmp = Path(tmpdir)
        where = net.name or "host loopback"
        scp = [dcmtk("storescp"), "--fork", "--ignore", "-pdu", str(opts.scp_pdu), str(UPSTREAM)]
        with running(net, scp, tmp / "scp.log", UPSTREAM):
            if not opts.latency_only:
                per_file = opts.size_mb * 1_000_000 // opts.files
                files = [
                    big_image(tmp / f"big{i}.dcm", per_file, index=i) for i in range(opts.files)
                ]
                total = sum(f.stat().st_size for f in files)
                print(
                    f"namespace: {where}; {opts.files} files, {total / 1e6:.0f} MB in all; "
                    f"P-DATA-TF PDUs of {opts.scp_pdu} bytes; proxy writes a pcapng: {opts.pcap}"
                )
                throughput(net, tmp, files, opts.repeat, opts.pcap, opts.baseline)
            else:
                print(f"namespace: {where}")
            latencies(net, tmp, opts.repeat, opts.echoes, opts.pace, opts.baseline)
            if not opts.latency_only:
                memory(net, tmp, opts.concurrent)
        if os.environ.get("PROXY_BENCH_KEEP"):
            print(f"(files in {tmp})")


if __name__ == "__main__":
    main()
