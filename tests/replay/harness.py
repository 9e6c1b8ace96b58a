"""Running ``dicomtap replay`` against real peers inside a test's network namespace.

The replay runs as a real subprocess in the namespace; the peers are DCMTK, Orthanc, the
pynetdicom peers of ``samples/`` (the very programs the samples were captured from) and
``dicomtap replay --as-acceptor`` itself.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dpkt

from analyzer.sources.packets import PacketDecoder
from analyzer.sources.pcap import read_packets
from tests.peers import Net, Process, analyze, dicomtap_argv, running

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
SCRIPTS = Path(__file__).resolve().parent / "scripts"
HOST = "127.0.0.1"


@dataclass
class Run:
    """One finished ``dicomtap replay``."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def result(self) -> str:
        """The last line: ``Result: ...``."""
        lines = self.stdout.strip().splitlines()
        return lines[-1] if lines else ""

    def row(self, topic: str) -> list[str]:
        """The comparison row of ``topic``: [mark, captured ..., replay ...] as printed."""
        for line in self.stdout.splitlines():
            cells = line.split()
            if len(cells) > 1 and cells[0] in "=≠~" and line.strip()[1:].strip().startswith(topic):
                return [cells[0], line]
        raise AssertionError(f"no row {topic!r} in:\n{self.stdout}")

    def mark(self, topic: str) -> str:
        return self.row(topic)[0]


def _checked(run: Run) -> Run:
    assert "Traceback" not in run.stdout + run.stderr, run.stdout + run.stderr
    return run


def replay(net: Net, *args: str, timeout: float = 120) -> Run:
    """``dicomtap replay ARGS`` in the namespace, to completion (bounded)."""
    t0 = time.monotonic()
    out = subprocess.run(
        net.wrap(dicomtap_argv("replay", *args)),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    return _checked(Run(out.returncode, out.stdout, out.stderr, time.monotonic() - t0))


class Acceptor:
    """``dicomtap replay --as-acceptor`` running in the background."""

    def __init__(self, proc: Process) -> None:
        self.proc = proc
        self.run: Run | None = None

    def wait(self, timeout: float = 60) -> Run:
        """Its end (it serves one association)."""
        t0 = time.monotonic()
        try:
            self.proc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.stop(signal.SIGKILL)
            raise AssertionError(f"the acceptor did not end: {self.proc.output()}") from None
        code = self.proc.stop()
        text = self.proc.log.read_text(errors="replace")
        self.run = _checked(Run(code, text, "", time.monotonic() - t0))
        return self.run


@contextlib.contextmanager
def acceptor(
    net: Net, tmp: Path, capture: str | Path, association: int, port: int, *extra: str
) -> Iterator[Acceptor]:
    """The captured acceptor of ``association`` played on ``port`` (listening when this
    yields; the capture is analysed first, which takes a while on a loaded machine)."""
    path = capture if isinstance(capture, Path) else SAMPLES / capture
    argv = dicomtap_argv(
        "replay",
        str(path),
        "-a",
        str(association),
        "--as-acceptor",
        "--listen",
        f"{HOST}:{port}",
        *extra,
    )
    log = tmp / f"acceptor-{path.stem}-{association}.log"
    proc = Process(net, argv, log, ROOT)
    try:
        net.wait_listening(port, proc, timeout=90)
        yield Acceptor(proc)
    finally:
        proc.stop(timeout=30)


def make_objects(tmp: Path) -> Path:
    """The samples' DICOM objects (``samples/make_objects.py``: the same UIDs every time)."""
    out = tmp / "objects"
    if not (out / "ct1.dcm").exists():
        subprocess.run(
            [sys.executable, str(SAMPLES / "make_objects.py"), str(out)],
            check=True,
            capture_output=True,
            timeout=120,
        )
    return out


def script(name: str, *args: str) -> list[str]:
    """A Python peer from ``samples/`` (``peer_scp.py``, ``pynetdicom_scp.py``) or ours."""
    here = SAMPLES / name if (SAMPLES / name).exists() else SCRIPTS / name
    return [sys.executable, str(here), *args]


@contextlib.contextmanager
def python_peer(net: Net, tmp: Path, port: int, name: str, *args: str) -> Iterator[Process]:
    """A Python peer from ``samples/`` (stopped with SIGTERM)."""
    env = {"PYTHONPATH": str(ROOT)}
    with running(
        net, script(name, *args), tmp / f"{name}-{port}.log", port, cwd=ROOT, env=env
    ) as proc:
        yield proc


# --- records ------------------------------------------------------------------------------


def alone(capture: Path, association: int, out: Path) -> Path:
    """The packets of one association of ``capture`` (its connection, from its first frame to
    its last) in a pcap of its own: what a replay of that association can be compared with,
    without the other associations a workflow links to it."""
    a = next(r for r in analyze([capture]) if r["type"] == "association" and r["id"] == association)
    ends = {
        (ipaddress.ip_address(a[side]["ip"]).packed, a[side]["port"])
        for side in ("client", "server")
    }
    first, last = a["frames"]["first"], a["frames"]["last"]
    decoder = PacketDecoder()
    writer = None
    with open(capture, "rb") as f, open(out, "wb") as o:
        for ts, frame, linktype, data, orig_len in read_packets(f):
            if writer is None:
                writer = dpkt.pcap.Writer(o, linktype=linktype, nano=True)
            if not first <= frame <= last:
                continue
            seg = decoder.decode(ts, frame, linktype, data, orig_len)
            if seg is not None and (seg.src, seg.sport) in ends and (seg.dst, seg.dport) in ends:
                writer.writepkt(data, ts=ts / 1e9)
    return out


_TIMES_AND_PLACES = {"id", "client", "server", "start", "end", "duration_ms", "frames"}
_EXCHANGE_TIMES = {"association", "start", "end", "frames", "latency_ms", "duration_ms"}


def _timeless(value: Any) -> Any:
    """``value`` without times (keys ending in ``_ms``), at any depth."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if not k.endswith("_ms")}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def normalized(records: list[dict[str, Any]], association: int) -> dict[str, Any]:
    """Association ``association`` of ``dicomtap analyze`` records, without what differs
    from one run to the next (addresses, ports, times, frame numbers, ids)."""
    a = next(r for r in records if r["type"] == "association" and r["id"] == association)
    a = {k: v for k, v in a.items() if k not in _TIMES_AND_PLACES}
    for key in ("reject", "abort"):
        if a.get(key):
            a[key] = {k: v for k, v in a[key].items() if k != "frame"}
    exchanges = [
        {k: v for k, v in r.items() if k not in _EXCHANGE_TIMES}
        for r in records
        if r["type"] == "exchange" and r["association"] == association
    ]
    findings = sorted(
        (r["code"], r["severity"])
        for r in records
        if r["type"] == "finding" and r["association"] == association
    )
    kept: dict[str, Any] = _timeless(
        {"association": a, "exchanges": exchanges, "findings": findings}
    )
    return kept


def env_with_root() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]
