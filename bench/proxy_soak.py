"""Soak of ``dicomtap proxy``: many concurrent associations for a long time, with faults.

Not a test: it prints figures. Everything runs on the loopback of a private network namespace
(root) or of the host, with real peers:

* ``--concurrency`` workers (200) each run DCMTK storescu through the proxy to
  ``storescp --fork +B`` again and again, each time with new objects (unique UIDs, random
  sizes), so that every completed transfer can be checked byte for byte at the upstream;
* faults, all the while: the upstream killed (its whole process group) and restarted every
  ``--kill-every`` seconds; a client killed in the middle of a PDU every few seconds; a
  client whose upstream stops reading (``--route STALL``, a peer that accepts and never reads
  again, so the proxy's write timeout must end it); and slowloris connections sending an
  A-ASSOCIATE-RQ one byte a second (the first-PDU timeout must end them);
* every ``--sample`` seconds the proxy's resident memory and open files are sampled, and
  the files the upstream received are checked against what was sent (then deleted).

At the end: the transfers (completed, failed and why), the byte-for-byte verdicts (a
completed transfer whose objects did not all arrive intact is a failure of the soak), the
faults injected and what the proxy logged about them, and the memory samples over time.

Usage (from the repository root, as root for the namespace)::

    python bench/proxy_soak.py [--duration 600] [--concurrency 200] [--kill-every 90]
                               [--sample 10] [--no-pcap]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
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

from tests.objects import big_image  # noqa: E402
from tests.peers import Net, Process, dcmtk, dicomtap_argv  # noqa: E402
from tests.proxy.harness import dataset_digest, script  # noqa: E402

UPSTREAM = 11113
PROXY = 11112
STALL = 11114
SLOWLORIS = 20  # connections at a time


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Soak:
    """The soak's state, shared by its threads."""

    def __init__(self, net: Net, tmp: Path, opts: argparse.Namespace) -> None:
        self.net = net
        self.tmp = tmp
        self.opts = opts
        self.deadline = time.monotonic() + opts.duration
        self.lock = threading.Lock()
        self.index = itertools.count(1)
        self.expected: dict[str, str] = {}  # UID → digest, for completed transfers
        self.failed_uids: set[str] = set()
        self.results: Counter[str] = Counter()
        self.objects_sent = 0
        self.bytes_sent = 0
        self.verified = 0
        self.mismatched: list[str] = []
        self.faults: Counter[str] = Counter()
        self.samples: list[tuple[float, float, int]] = []
        self.received = tmp / "received"
        self.received.mkdir()
        self.sent = tmp / "sent"
        self.sent.mkdir()
        self.upstream: Process | None = None
        self.start = time.monotonic()

    def running(self) -> bool:
        return bool(time.monotonic() < self.deadline)

    # --- peers -------------------------------------------------------------------------

    def start_upstream(self) -> None:
        argv = [dcmtk("storescp"), "--fork", "+B", "-od", str(self.received), str(UPSTREAM)]
        self.upstream = Process(self.net, argv, self.tmp / "storescp.log")
        self.net.wait_listening(UPSTREAM, self.upstream)

    def kill_upstream(self) -> None:
        """SIGKILL to storescp and every child it forked (its process group)."""
        if self.upstream is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.upstream.popen.pid, signal.SIGKILL)
            self.upstream.stop()

    # --- workers -----------------------------------------------------------------------

    def _objects(self) -> tuple[list[Path], dict[str, str]]:
        """One to three new objects of random sizes (8 KiB to 2 MiB, now and then 8 MiB)."""
        paths: list[Path] = []
        digests: dict[str, str] = {}
        for _ in range(random.randint(1, 3)):
            n = next(self.index)
            size = 8 << 20 if random.random() < 0.01 else random.randint(8 << 10, 2 << 20)
            path = big_image(self.sent / f"{n}.dcm", size, index=n)
            paths.append(path)
            digests[_uid(path)] = dataset_digest(path)
        return paths, digests

    def storer(self, worker: int) -> None:
        while self.running():
            paths, digests = self._objects()
            argv = [dcmtk("storescu"), "-aet", f"SOAK{worker:03d}", "-aec", "PACS"]
            argv += ["127.0.0.1", str(PROXY), *map(str, paths)]
            try:
                result = self.net.run(argv, timeout=300)
                outcome = "completed" if result.returncode == 0 else _failure(result)
            except subprocess.TimeoutExpired:
                outcome = "timed out (300 s)"
            with self.lock:
                self.results[outcome] += 1
                if outcome == "completed":
                    self.expected.update(digests)
                    self.objects_sent += len(paths)
                    self.bytes_sent += sum(p.stat().st_size for p in paths)
                else:
                    self.failed_uids.update(digests)
            for path in paths:
                path.unlink()

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

    def _every(self, seconds: float, action: Callable[[], None]) -> None:
        while self.running():
            action()
            time.sleep(seconds)

    def kill_mid_pdu(self) -> None:
        self.net.run(script("rawclient.py", "killmid", "127.0.0.1", str(PROXY)), timeout=60)
        self.faults["client killed mid-PDU"] += 1

    def stalled(self) -> None:
        big = self.tmp / "stall.dcm"
        if not big.exists():
            big_image(big, 16 << 20, index=0)
        argv = [dcmtk("storescu"), "-aet", "STALLED", "-aec", "STALL", "127.0.0.1", str(PROXY)]
        result = self.net.run([*argv, str(big)], timeout=120)
        self.faults["upstream stopped reading"] += 1
        if result.returncode == 0:
            self.faults["... but the transfer completed (unexpected)"] += 1

    def slowloris(self) -> None:
        while self.running():
            self.net.run(
                script("rawclient.py", "slowloris", "127.0.0.1", str(PROXY), "1"), timeout=120
            )
            self.faults["slowloris connection"] += 1

    # --- checking ----------------------------------------------------------------------

    def verify(self, final: bool = False) -> None:
        """Check every file the upstream wrote completely, then delete it."""
        for path in sorted(self.received.glob("*")):
            if not final and time.time() - path.stat().st_mtime < 5:
                continue  # maybe still being written
            uid = path.name.split(".", 1)[1] if "." in path.name else path.name
            with self.lock:
                if not final and uid not in self.expected and uid not in self.failed_uids:
                    continue  # its storescu has not returned yet
                want = self.expected.pop(uid, None)
                failed = uid in self.failed_uids
                self.failed_uids.discard(uid)
            if want is None and failed:
                path.unlink()
                continue  # a transfer that failed: whatever it left is not a delivery
            try:
                got = dataset_digest(path)
            except (AssertionError, OSError, ValueError):
                got = "unreadable"
            with self.lock:
                if want is not None and got == want:
                    self.verified += 1
                else:
                    self.mismatched.append(path.name)
            path.unlink()

    def verifier(self) -> None:
        while self.running():
            time.sleep(5)
            self.verify()

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
            print(
                f"  t={elapsed:5.0f} s  RSS {rss:6.1f} MiB  files {fds:4d}  "
                f"transfers {done} ({ok} completed)  objects verified {self.verified}  "
                f"mismatched {len(self.mismatched)}",
                flush=True,
            )


def _uid(path: Path) -> str:
    from pydicom import dcmread

    return str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)


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
    parser.add_argument("--no-pcap", action="store_true", help="the proxy writes no pcapng")
    opts = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="proxy-soak-") as tmpdir, Net() as net:
        tmp = Path(tmpdir)
        soak = Soak(net, tmp, opts)
        soak.start_upstream()
        stall = Process(
            net, script("stubborn.py", str(STALL), str(tmp / "stall.txt"), "stall"), tmp / "s.log"
        )
        net.wait_listening(STALL, stall)
        args = ["--listen", f"127.0.0.1:{PROXY}", "--upstream", f"127.0.0.1:{UPSTREAM}"]
        args += ["--route", f"STALL=127.0.0.1:{STALL}", "--write-timeout", "5", "--linger", "5"]
        args += ["--max-associations", str(opts.concurrency + 50), "-q"]
        args += ["--log", str(tmp / "proxy.log"), "--jsonl", str(tmp / "proxy.jsonl")]
        args += ["--log-max-size", "64MiB", "--keep-files", "2"]
        if not opts.no_pcap:
            args += ["--pcap", str(tmp / "proxy.pcapng"), "--pcap-max-size", "256MiB"]
        proxy = Process(net, dicomtap_argv("proxy", *args), tmp / "proxy.out", cwd=ROOT)
        net.wait_listening(PROXY, proxy)
        pid = proxy.popen.pid
        print(
            f"soak: {opts.concurrency} storescu workers for {opts.duration:g} s through the "
            f"proxy (pid {pid}), upstream killed every {opts.kill_every:g} s, faults all the "
            f"while; pcapng: {not opts.no_pcap}; namespace: {net.name or 'host loopback'}",
            flush=True,
        )
        threads = [
            threading.Thread(target=soak.storer, args=(n,), daemon=True)
            for n in range(opts.concurrency)
        ]
        threads.append(threading.Thread(target=soak.killer, daemon=True))
        threads.append(
            threading.Thread(target=soak._every, args=(3, soak.kill_mid_pdu), daemon=True)
        )
        threads.append(threading.Thread(target=soak._every, args=(20, soak.stalled), daemon=True))
        threads += [threading.Thread(target=soak.slowloris, daemon=True) for _ in range(SLOWLORIS)]
        threads.append(threading.Thread(target=soak.sample, args=(pid,), daemon=True))
        threads.append(threading.Thread(target=soak.verifier, daemon=True))
        for t in threads:
            t.start()
        for t in threads:
            t.join(opts.duration + 400)
        status = proxy.stop(timeout=120)
        soak.kill_upstream()
        stall.stop()
        soak.verify(final=True)
        report(soak, status, tmp)


def report(soak: Soak, status: int, tmp: Path) -> None:
    log = "".join(p.read_text(errors="replace") for p in sorted(tmp.glob("proxy*.log")))
    print(f"\nproxy exit status after SIGTERM: {status}")
    total = sum(soak.results.values())
    print(f"transfers: {total}")
    for outcome, n in soak.results.most_common():
        print(f"  {outcome}: {n}")
    print(
        f"objects of completed transfers: {soak.objects_sent} "
        f"({soak.bytes_sent / 1e9:.2f} GB); verified byte for byte at the upstream: "
        f"{soak.verified}; mismatched: {len(soak.mismatched)}; never arrived: "
        f"{len(soak.expected)}"
    )
    if soak.mismatched:
        print(f"  mismatched: {', '.join(soak.mismatched[:10])}")
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
        "recording failures": r"recording failed",
    }
    print("the proxy's log says:")
    for name, pattern in said.items():
        print(f"  {name}: {len(re.findall(pattern, log))}")
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


if __name__ == "__main__":
    main()
