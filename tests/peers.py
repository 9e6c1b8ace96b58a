"""Real peers for the tests: DCMTK, Orthanc, pynetdicom, tcpdump, inside a network namespace.

Every process is started with a bounded wait for readiness and stopped by its PID; every
namespace is deleted again. With root, each test gets its own namespace with its own
loopback (so captures hold only the test's traffic and ports never clash); without it, the
host's 127.0.0.1 and free ports are used. ``dicomtap`` itself runs there as a subprocess
(:func:`dicomtap_argv`); :func:`analyze` gives the records it writes for capture files.

In CI (``CI=true``) a missing peer fails the test; elsewhere it skips it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from analyzer.findings import Diagnosis
from analyzer.pipeline import analyze_files
from analyzer.reports.jsonl import records
from analyzer.store import Store

IN_CI = os.environ.get("CI", "").lower() == "true"
_counter = itertools.count()


def missing(what: str) -> None:
    """Fail in CI, skip elsewhere."""
    message = f"{what} is not available"
    if IN_CI:
        pytest.fail(message + " (CI must install it: see .ci/install)")
    pytest.skip(message)


def dcmtk(name: str) -> str:
    """Absolute path of a DCMTK tool. pynetdicom installs Python apps with the same names
    (storescu, echoscu, ...) that may come first on PATH, so /usr/bin is tried first and the
    tool must say it is DCMTK."""
    for candidate in (f"/usr/bin/{name}", shutil.which(name)):
        if candidate and os.access(candidate, os.X_OK):
            out = subprocess.run(
                [candidate, "--version"], capture_output=True, text=True, timeout=10
            )
            if "dcmtk" in (out.stdout + out.stderr).lower():
                return candidate
    missing(f"DCMTK's {name}")
    raise AssertionError("unreachable")


def tool(name: str) -> str:
    """Absolute path of a program on PATH (tcpdump, tshark, Orthanc ...)."""
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    missing(name)
    raise AssertionError("unreachable")


def tshark_frames(path: Path, display_filter: str) -> list[int]:
    """The numbers of the frames of ``path`` that Wireshark's ``display_filter`` selects."""
    argv = [tool("tshark"), "-r", str(path), "-Y", display_filter]
    done = subprocess.run(
        [*argv, "-T", "fields", "-e", "frame.number"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return [int(n) for n in done.stdout.split()]


def can_use_netns() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    probe = f"dtprobe{os.getpid()}"
    ok = subprocess.run(["ip", "netns", "add", probe], capture_output=True).returncode == 0
    if ok:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return ok


class Net:
    """Where the peers run: a fresh network namespace (root) or the host's loopback."""

    def __init__(self) -> None:
        self.name: str | None = None
        self.host = "127.0.0.1"

    def __enter__(self) -> Net:
        if can_use_netns():
            self.name = f"dt{os.getpid()}x{next(_counter)}"
            subprocess.run(["ip", "netns", "add", self.name], check=True)
            subprocess.run(
                ["ip", "netns", "exec", self.name, "ip", "link", "set", "lo", "up"], check=True
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.name is not None:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True)

    def wrap(self, cmd: Sequence[str]) -> list[str]:
        """The command, run inside the namespace if there is one."""
        if self.name is None:
            return list(cmd)
        return ["ip", "netns", "exec", self.name, *cmd]

    def port(self, preferred: int) -> int:
        """A port to listen on: the preferred one in a private namespace, a free one on the host."""
        if self.name is not None:
            return preferred
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    def run(
        self, cmd: Sequence[str], timeout: float = 60, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run a client to completion (bounded)."""
        return subprocess.run(
            self.wrap(cmd), capture_output=True, text=True, timeout=timeout, check=check
        )

    def listening(self, port: int) -> bool:
        out = subprocess.run(
            self.wrap(["ss", "-ltnH", f"sport = :{port}"]),
            capture_output=True,
            text=True,
            timeout=10,
        )
        return bool(out.stdout.strip())

    def wait_listening(self, port: int, proc: Process, timeout: float = 20) -> None:
        """Wait until something listens on ``port`` (checked with ss, without connecting, so
        the wait leaves no connection in a capture)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.argv[0]} exited early: {proc.output()}")
            if self.listening(port):
                return
            time.sleep(0.05)
        raise TimeoutError(f"nothing listens on port {port} after {timeout} s: {proc.output()}")


class Process:
    """A background process, stopped by its PID; ``env`` is added to this environment."""

    def __init__(
        self,
        net: Net,
        argv: Sequence[str],
        log: Path,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            net.wrap(argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env={**os.environ, **env} if env else None,
            start_new_session=True,
        )

    def output(self) -> str:
        self._log.flush()
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        self._log.close()
        return self.popen.returncode


@contextlib.contextmanager
def running(
    net: Net,
    argv: Sequence[str],
    log: Path,
    port: int | None = None,
    cwd: Path | None = None,
    *,
    env: dict[str, str] | None = None,
    stop_timeout: float = 10,
) -> Iterator[Process]:
    """A server for the duration of a ``with`` block, stopped with SIGTERM (SIGKILL after
    ``stop_timeout`` seconds)."""
    proc = Process(net, argv, log, cwd, env)
    try:
        if port is not None:
            net.wait_listening(port, proc)
        yield proc
    finally:
        proc.stop(timeout=stop_timeout)


def dicomtap_argv(*args: str) -> list[str]:
    """``dicomtap ARGS`` with this interpreter (whether or not the entry point is installed)."""
    return [sys.executable, "-c", "from analyzer.cli import main; main()", *args]


def analyze(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """The records of ``dicomtap analyze --format json`` on capture files, in order."""
    store = Store()
    analyze_files(paths, store, rules=Diagnosis())  # as `dicomtap analyze` does
    return list(records(store, "test"))


@contextlib.contextmanager
def capture(
    net: Net, path: Path, bpf: str = "tcp", iface: str = "lo", snaplen: int = 0
) -> Iterator[Path]:
    """tcpdump on ``iface`` while the block runs; the file is complete when the block ends."""
    tcpdump = tool("tcpdump")
    # --immediate-mode: without it this kernel hands packets to tcpdump only when its buffer
    # fills, so the last packets are lost at SIGINT; -B: room for bursts at loopback speed.
    argv = [tcpdump, "-U", "--immediate-mode", "-B", "32768", "-n", "-i", iface, "-w", str(path)]
    if snaplen:
        argv += ["-s", str(snaplen)]
    argv.append(bpf)
    log = path.with_suffix(".tcpdump.log")
    proc = Process(net, argv, log)
    deadline = time.monotonic() + 20
    while "listening on" not in proc.output():
        if proc.popen.poll() is not None or time.monotonic() > deadline:
            proc.stop()
            raise RuntimeError(f"tcpdump did not start: {proc.output()}")
        time.sleep(0.05)
    try:
        yield path
    finally:
        time.sleep(0.2)  # let the last packets through the capture buffer
        proc.stop(signal.SIGINT)


def orthanc_config(
    directory: Path, dicom_port: int, http_port: int, *, aet: str = "ORTHANC", **extra: object
) -> Path:
    """A minimal Orthanc configuration of its own (storage in ``directory``)."""
    config = {
        "Name": "dicomtap-test",
        "StorageDirectory": str(directory / "storage"),
        "IndexDirectory": str(directory / "storage"),
        "DicomAet": aet,
        "DicomPort": dicom_port,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomServerEnabled": True,
        "HttpServerEnabled": True,
        "Plugins": [],
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        **extra,
    }
    path = directory / "orthanc.json"
    path.write_text(json.dumps(config, indent=2))
    return path
