"""Soak of ``dicomtap proxy``: many concurrent associations for a long time, with faults.

Not a test: it prints figures. Everything runs on the loopback of a private network namespace
(root) or of the host, with real peers:

* ``--concurrency`` workers (200) each run DCMTK storescu through the proxy to
  ``storescp --fork +B +uf`` again and again, each time with one to three objects drawn from
  a pool (random sizes, 8 KiB to 2 MiB, a few of 8 MiB); the upstream writes every object it
  receives, exactly as received, to a file of its own, so that each can be checked byte for
  byte: every completed transfer must have delivered each of its objects intact, and a
  damaged file is allowed only for an object whose transfer failed;
* faults, all the while: the upstream killed (its whole process group) and restarted every
  ``--kill-every`` seconds; every 3 seconds a client gone in the middle of a PDU (its socket
  closed or reset, as when a process is killed); a client whose upstream stops reading
  (``--route STALL``, a peer that accepts and never reads again, so the proxy's write timeout
  must end it); and 20 slowloris connections at a time sending an A-ASSOCIATE-RQ one byte a
  second (the first-PDU timeout, or the pending limits, must end them);
* every ``--sample`` seconds the proxy's resident memory and open files are sampled, and
  the files the upstream received are checked against what was sent (then deleted);
* every ``--rest-every`` seconds the storescu workers pause until the proxy is idle (the
  faults go on) and the memory of the proxy (with its recording process: the sum, then each)
  is sampled *at rest*, and once more after the load ends. Under load the resident size
  follows how much is in flight (up to 200 objects of up to 8 MiB buffered at once), so
  "memory flat" is judged on the samples at rest: what the proxy keeps once its connections
  are gone.

At the end: the transfers (completed, failed and why), the byte-for-byte verdicts (a
completed transfer whose objects did not all arrive intact is a failure of the soak), the
faults injected and what the proxy logged about them, and the memory samples over time.

Usage (from the repository root, as root for the namespace)::

    python bench/proxy_soak.py [--duration 600] [--concurrency 200] [--kill-every 90]
                               [--sample 10] [--rest-every 150] [--no-pcap]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import family, rss_kib  # noqa: E402
from pydicom.filereader import read_file_meta_info  # noqa: E402

from tests.objects import big_image  # noqa: E402
from tests.peers import Net, Process, dcmtk, dicomtap_argv  # noqa: E402
from tests.proxy.harness import dataset_digest, script  # noqa: E402

UPSTREAM = 11113
PROXY = 11112
STALL = 11114
SLOWLORIS = 20  # connections at a time
POOL = 300  # distinct objects sent
REST_SETTLE = 25.0  # seconds between the last transfer and a sample at rest


def rss_mib(pid: int) -> float:
    """Resident memory of the proxy and its recording process, MiB."""
    return rss_kib(pid) / 1024


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Soak:
    """The soak's state, shared by its threads."""

    def __init__(self, net: Net, tmp: Path, opts: argparse.Namespace) -> None:
        self.net = net
        self.tmp = tmp
        self.opts = opts
        self.lock = threading.Lock()
        self.received = tmp / "received"
        self.received.mkdir()
        self.pool = self._pool(tmp / "pool", POOL)
        self.digests = {uid: dataset_digest(path) for uid, path in self.pool}
        self.completed: Counter[str] = Counter()  # UID → transfers that completed
        self.failed: Counter[str] = Counter()  # UID → transfers that failed
        self.intact: Counter[str] = Counter()  # UID → files received intact
        self.damaged: Counter[str] = Counter()  # UID → files received damaged
        self.unreadable = 0  # files cut short before their UID (a killed upstream)
        self.results: Counter[str] = Counter()
        self.bytes_sent = 0
        self.faults: Counter[str] = Counter()
        self.samples: list[tuple[float, float, int]] = []
        self.rests: list[tuple[float, float]] = []  # (elapsed, RSS) with the load paused
        self.resting = threading.Event()
        self.busy = 0  # storescu runs under way
        self.upstream: Process | None = None
        self.storescu, self.storescp = dcmtk("storescu"), dcmtk("storescp")  # looked up once
        self.start = time.monotonic()
        self.deadline = self.start + opts.duration

    @staticmethod
    def _pool(directory: Path, count: int) -> list[tuple[str, Path]]:
        """Objects of random sizes (8 KiB to 2 MiB, one in fifty of 8 MiB), unique UIDs."""
        directory.mkdir()
        rng = random.Random(1)
        out = []
        for n in range(1, count + 1):
            size = 8 << 20 if n % 50 == 0 else rng.randint(8 << 10, 2 << 20)
            path = big_image(directory / f"{n}.dcm", size, index=n)
            out.append((_uid(path), path))
        return out

    def running(self) -> bool:
        return bool(time.monotonic() < self.deadline)

    # --- peers -------------------------------------------------------------------------

    def start_upstream(self) -> None:
        argv = [self.storescp, "--fork", "+B", "+uf", "-od", str(self.received)]
        self.upstream = Process(self.net, [*argv, str(UPSTREAM)], self.tmp / "storescp.log")
        self.net.wait_listening(UPSTREAM, self.upstream)

    def kill_upstream(self) -> None:
        """SIGKILL to storescp and every child it forked (its process group)."""
        if self.upstream is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.upstream.popen.pid, signal.SIGKILL)
            self.upstream.stop()

    # --- workers -----------------------------------------------------------------------

    def storer(self, worker: int) -> None:
        rng = random.Random(worker)
        while self.running():
            if self.resting.is_set():
                time.sleep(0.2)
                continue
            chosen = rng.sample(self.pool, rng.randint(1, 3))
            argv = [self.storescu, "-aet", f"SOAK{worker:03d}", "-aec", "PACS"]
            argv += ["127.0.0.1", str(PROXY), *(str(path) for _, path in chosen)]
            with self.lock:
                self.busy += 1
            try:
                result = self.net.run(argv, timeout=300)
                outcome = "completed" if result.returncode == 0 else _failure(result)
            except subprocess.TimeoutExpired:
                outcome = "failed: timed out (300 s)"
            with self.lock:
                self.busy -= 1
                self.results[outcome] += 1
                tally = self.completed if outcome == "completed" else self.failed
                for uid, path in chosen:
                    tally[uid] += 1
                    if outcome == "completed":
                        self.bytes_sent += path.stat().st_size

    def killer(self) -> None:
        """The upstream killed and restarted, again and again."""
        while self.running():
            time.sleep(min(self.opts.kill_every, max(0.0, self.deadline - time.monotonic())))
            if not self.running():
                return
            self.kill_upstream()
            self.faults["upstream killed and restarted"] += 1
            time.sleep(2)
            self.start_upstream()

    def every(self, seconds: float, action: Callable[[], None]) -> None:
        while self.running():
            action()
            time.sleep(seconds)

    def stalled(self) -> None:
        big = self.tmp / "stall.dcm"
        if not big.exists():
            big_image(big, 16 << 20, index=0)
        argv = [self.storescu, "-aet", "STALLED", "-aec", "STALL", "127.0.0.1", str(PROXY)]
        result = self.net.run([*argv, str(big)], timeout=120)
        self.faults["upstream stopped reading"] += 1
        if result.returncode == 0:
            self.faults["... but the transfer completed (unexpected)"] += 1

    # --- checking ----------------------------------------------------------------------

    def verify(self, final: bool = False) -> None:
        """Check every file the upstream wrote and closed, then delete it."""
        writing = set() if final else _open_files(self.received)
        for path in sorted(self.received.glob("*")):
            try:
                # Closed a few seconds ago: a transfer slowed down by the load can leave a
                # file unwritten for longer than that, but not open.
                if not final and (path in writing or time.time() - path.stat().st_mtime < 5):
                    continue
            except OSError:
                continue
            try:
                uid = str(read_file_meta_info(path).MediaStorageSOPInstanceUID)
                ok = dataset_digest(path) == self.digests.get(uid)
            except Exception:  # cut short by a killed upstream before its UID: no object
                with self.lock:
                    self.unreadable += 1
                path.unlink(missing_ok=True)
                continue
            with self.lock:
                (self.intact if ok else self.damaged)[uid] += 1
            path.unlink(missing_ok=True)

    def verifier(self) -> None:
        while self.running():
            time.sleep(5)
            self.verify()

    def rest(self, pid: int) -> None:
        """Pause the storers until none runs, let the proxy settle, sample its memory."""
        self.resting.set()
        try:
            until = time.monotonic() + 300
            while self.busy and time.monotonic() < until:
                time.sleep(0.5)
            # --linger and --write-timeout are 5 s; the proxy trims its heap every 10 s.
            time.sleep(REST_SETTLE)
            elapsed, rss = time.monotonic() - self.start, rss_mib(pid)
            self.rests.append((elapsed, rss))
            each = ", ".join(f"{rss_kib(one, alone=True) / 1024:.1f}" for one in family(pid))
            print(f"  t={elapsed:5.0f} s  at rest: RSS {rss:6.1f} MiB ({each})", flush=True)
        finally:
            self.resting.clear()

    def rester(self, pid: int) -> None:
        next_at = self.start + self.opts.rest_every
        while True:
            time.sleep(max(0.0, next_at - time.monotonic()))
            if not self.running() or next_at > self.deadline - self.opts.rest_every / 2:
                return
            self.rest(pid)
            next_at += self.opts.rest_every

    def sample(self, pid: int) -> None:
        next_at = self.start
        while self.running():
            next_at += self.opts.sample
            time.sleep(max(0.0, next_at - time.monotonic()))
            elapsed = time.monotonic() - self.start
            rss, fds = rss_mib(pid), open_files(pid)
            self.samples.append((elapsed, rss, fds))
            with self.lock:
                done = sum(self.results.values())
                ok = self.results["completed"]
                intact, damaged = sum(self.intact.values()), sum(self.damaged.values())
            print(
                f"  t={elapsed:5.0f} s  RSS {rss:6.1f} MiB  files {fds:4d}  "
                f"transfers {done} ({ok} completed)  objects received intact {intact}, "
                f"damaged {damaged}",
                flush=True,
            )


def _open_files(directory: Path) -> set[Path]:
    """The files under ``directory`` some process has open."""
    found: set[Path] = set()
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            links = list(fd_dir.iterdir())
        except OSError:  # gone, or not ours to see
            continue
        for link in links:
            with contextlib.suppress(OSError):
                target = Path(os.readlink(link))
                if target.parent == directory:
                    found.add(target)
    return found


def _uid(path: Path) -> str:
    return str(read_file_meta_info(path).MediaStorageSOPInstanceUID)


def _failure(result: subprocess.CompletedProcess[str]) -> str:
    text = result.stdout + result.stderr
    for pattern, name in (
        (r"Temporary Congestion", "refused: upstream down (RJ 2/3/1)"),
        (r"Local Limit Exceeded", "refused: association limit (RJ 2/3/2)"),
        (r"Association Aborted|A-ABORT", "aborted"),
        (r"Peer aborted|connection closed|Connection reset|Broken pipe", "connection lost"),
    ):
        if re.search(pattern, text):
            return f"failed: {name}"
    return "failed: other"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=600, help="seconds (600)")
    parser.add_argument("--concurrency", type=int, default=200, help="storescu workers (200)")
    parser.add_argument("--kill-every", type=float, default=90, help="seconds between kills")
    parser.add_argument("--sample", type=float, default=10, help="seconds between samples")
    parser.add_argument("--rest-every", type=float, default=150, help="seconds between rests (150)")
    parser.add_argument("--no-pcap", action="store_true", help="the proxy writes no pcapng")
    opts = parser.parse_args()

    # SIGTERM as SIGINT: the namespace and the peers in it are cleaned up either way.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with tempfile.TemporaryDirectory(prefix="proxy-soak-") as tmpdir, Net() as net:
        tmp = Path(tmpdir)
        started = time.monotonic()
        soak = Soak(net, tmp, opts)
        print(f"pool of {POOL} objects made in {time.monotonic() - started:.0f} s", flush=True)
        soak.deadline = time.monotonic() + opts.duration
        soak.start = time.monotonic()
        peers: list[Process] = []
        try:
            soak.start_upstream()
            stall = Process(
                net,
                script("stubborn.py", str(STALL), str(tmp / "stall.txt"), "stall"),
                tmp / "stall.log",
            )
            peers.append(stall)
            net.wait_listening(STALL, stall)
            proxy = Process(
                net, dicomtap_argv("proxy", *_proxy_args(opts, tmp)), tmp / "out", cwd=ROOT
            )
            peers.append(proxy)
            net.wait_listening(PROXY, proxy)
            pid = proxy.popen.pid
            print(
                f"soak: {opts.concurrency} storescu workers for {opts.duration:g} s through "
                f"the proxy (pid {pid}), upstream killed every {opts.kill_every:g} s, faults "
                f"all the while; pcapng: {not opts.no_pcap}; namespace: "
                f"{net.name or 'host loopback'}",
                flush=True,
            )
            threads = [
                threading.Thread(target=soak.storer, args=(n,), daemon=True)
                for n in range(opts.concurrency)
            ]
            threads += [
                threading.Thread(target=soak.killer, daemon=True),
                threading.Thread(target=soak.every, args=(20, soak.stalled), daemon=True),
                threading.Thread(target=soak.sample, args=(pid,), daemon=True),
                threading.Thread(target=soak.rester, args=(pid,), daemon=True),
                threading.Thread(target=soak.verifier, daemon=True),
            ]
            # Slowloris and clients vanishing mid-PDU: one process of threads.
            hostile = script(
                "faults.py", "127.0.0.1", str(PROXY), str(opts.duration), str(SLOWLORIS), "3"
            )
            faults = subprocess.Popen(net.wrap(hostile), stdout=subprocess.PIPE, text=True)
            for t in threads:
                t.start()
            for t in threads:
                t.join(max(0.0, soak.deadline + 400 - time.monotonic()))
            out, _ = faults.communicate(timeout=120)
            soak.rest(pid)  # the last rest: the load has ended
            for line in out.splitlines():
                kind, count = line.split()
                name = {"slowloris": "slowloris connection", "vanished": "client gone mid-PDU"}
                soak.faults[name.get(kind, kind)] += int(count)
            status = proxy.stop(timeout=120)
            soak.kill_upstream()
            soak.verify(final=True)
            report(soak, status, tmp)
        finally:
            soak.deadline = 0.0  # every thread stops starting anything
            soak.kill_upstream()
            for peer in peers:
                peer.stop()


def _proxy_args(opts: argparse.Namespace, tmp: Path) -> list[str]:
    args = ["--listen", f"127.0.0.1:{PROXY}", "--upstream", f"127.0.0.1:{UPSTREAM}"]
    args += ["--route", f"STALL=127.0.0.1:{STALL}", "--write-timeout", "5", "--linger", "5"]
    args += ["--max-associations", str(opts.concurrency + 50), "-q"]
    args += ["--log", str(tmp / "proxy.log"), "--jsonl", str(tmp / "proxy.jsonl")]
    args += ["--log-max-size", "64MiB", "--keep-files", "2"]
    if not opts.no_pcap:
        args += ["--pcap", str(tmp / "proxy.pcapng"), "--pcap-max-size", "256MiB"]
    return args


def report(soak: Soak, status: int, tmp: Path) -> None:
    log = "".join(p.read_text(errors="replace") for p in sorted(tmp.glob("proxy*.log")))
    print(f"\nproxy exit status after SIGTERM: {status}")
    total = sum(soak.results.values())
    print(f"transfers: {total}")
    for outcome, n in soak.results.most_common():
        print(f"  {outcome}: {n}")
    sent = sum(soak.completed.values())
    missing = {u: n - soak.intact[u] for u, n in soak.completed.items() if soak.intact[u] < n}
    unexplained = {u: n - soak.failed[u] for u, n in soak.damaged.items() if n > soak.failed[u]}
    # A file cut short before its UID is some failed transfer's: as many as the failed
    # transfers that left no damaged file of their object.
    spare = sum(max(0, n - soak.damaged[u]) for u, n in soak.failed.items())
    cut_short = max(0, soak.unreadable - spare)
    print(
        f"objects in completed transfers: {sent} ({soak.bytes_sent / 1e9:.2f} GB); received "
        f"intact at the upstream: {sum(soak.intact.values())}; damaged: "
        f"{sum(soak.damaged.values())} (objects of failed transfers: "
        f"{sum(soak.failed.values())})"
    )
    print(f"  files cut short before their UID (a killed upstream): {soak.unreadable}")
    exact = not missing and not unexplained and not cut_short
    verdict = "BYTE-EXACT" if exact else "NOT BYTE-EXACT"
    print(
        f"  {verdict}: completed transfers whose object did not arrive intact: "
        f"{sum(missing.values())}; damaged files no failed transfer explains: "
        f"{sum(unexplained.values()) + cut_short}"
    )
    print("faults injected:")
    for fault, n in soak.faults.most_common():
        print(f"  {fault}: {n}")
    said = {
        "write timeouts (upstream stopped reading)": r"write timeout: the upstream",
        "first-PDU timeouts (slowloris)": r"no A-ASSOCIATE-RQ within",
        "refused, upstream unreachable": r"upstream unreachable",
        "resets passed on": r"reset passed on",
        "closed after --linger": r"did not close within",
        "pending connections reset (too many waiting)": r"while too many connections wait",
        "internal errors": r"internal error",
        "recording failures": r"recording failed|recording stopped",
    }
    print("the proxy's log says:")
    for name, pattern in said.items():
        print(f"  {name}: {len(re.findall(pattern, log))}")
    # An internal error is a defect of the proxy: show what they were, not only how many.
    errors = Counter(re.findall(r"internal error \(([^)]*)\)", log))
    for text, n in errors.most_common(5):
        print(f"    internal error x{n}: {text}")
    if soak.samples:
        rss = [r for _, r, _ in soak.samples]
        fds = [f for _, _, f in soak.samples]
        warm = soak.samples[len(soak.samples) // 10]
        last = soak.samples[-1]
        minutes = (last[0] - warm[0]) / 60 or 1.0
        print(
            f"proxy RSS over {len(rss)} samples: min {min(rss):.1f} MiB, median "
            f"{statistics.median(rss):.1f} MiB, max {max(rss):.1f} MiB; after warm-up "
            f"(t={warm[0]:.0f} s) {warm[1]:.1f} MiB, at the end {last[1]:.1f} MiB "
            f"({(last[1] - warm[1]) / minutes:+.2f} MiB/min)"
        )
        print(f"proxy open files: min {min(fds)}, max {max(fds)}, at the end {fds[-1]}")
    if len(soak.rests) >= 2:
        first, end = soak.rests[0], soak.rests[-1]
        print(
            "proxy RSS at rest: "
            + ", ".join(f"t={t:.0f} s {r:.1f} MiB" for t, r in soak.rests)
            + f"; least-squares trend {_slope(soak.rests):+.2f} MiB/min; last minus first "
            f"{end[1] - first[1]:+.1f} MiB over {(end[0] - first[0]) / 60:.1f} min"
        )


def _slope(points: list[tuple[float, float]]) -> float:
    """MiB per minute of the least-squares line through (seconds, MiB) points."""
    xs, ys = [t / 60 for t, _ in points], [r for _, r in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0


if __name__ == "__main__":
    main()
