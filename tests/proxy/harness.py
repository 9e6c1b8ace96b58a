"""Running ``dicomtap proxy`` and helper peers inside a test's network namespace.

The proxy runs as a real subprocess (``python -c 'from analyzer.cli import main; main()'``),
stopped by its PID with SIGTERM so that it shuts down as in production and flushes its files.
Small helper peers (a raw TCP sink, scripted DICOM clients) are the Python scripts in
``tests/proxy/scripts``, run inside the same namespace.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.peers import Net, Process, dcmtk, dicomtap_argv, running

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent / "scripts"
PROXY_PORT = 11112
UPSTREAM_PORT = 11113


def script(name: str, *args: str) -> list[str]:
    return [sys.executable, str(SCRIPTS / name), *args]


@dataclass
class ProxyRun:
    """A running proxy: its process, log and the files it was asked to write."""

    proc: Process
    net: Net
    port: int
    jsonl: Path
    pcap: Path

    def log(self) -> str:
        return self.proc.log.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float = 20, count: int = 1) -> re.Match[str]:
        """The first match of ``pattern`` once the log has ``count`` of them (the log is
        written when the relay is quiet, so lines about events at the same moment may come
        a little apart)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = list(re.finditer(pattern, self.log()))
            if len(found) >= count:
                return found[0]
            if self.proc.popen.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in the proxy log:\n{self.log()}")

    def stop(self) -> int:
        """SIGTERM, as an operator would; returns the exit status."""
        return self.proc.stop(timeout=30)

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.jsonl.read_text().splitlines()]

    def jsonl_files(self) -> list[Path]:
        """The JSON Lines file and its rotations, oldest first."""
        rotated = sorted(
            self.jsonl.parent.glob(self.jsonl.stem + ".*.jsonl"),
            key=lambda p: int(p.name.split(".")[-2]),
        )
        return [self.jsonl, *rotated]


@contextlib.contextmanager
def proxy(
    net: Net,
    tmp: Path,
    *args: str,
    port: int = PROXY_PORT,
    outputs: bool = True,
    env: dict[str, str] | None = None,
    host: str | None = None,
) -> Iterator[ProxyRun]:
    """``dicomtap proxy --listen 127.0.0.1:port ARGS`` with --jsonl and --pcap in ``tmp``."""
    jsonl, pcap = tmp / "proxy.jsonl", tmp / "proxy.pcapng"
    listen = f"[{host}]:{port}" if host and ":" in host else f"{host or net.host}:{port}"
    argv = dicomtap_argv("proxy", "--listen", listen, *args)
    if outputs:
        argv += ["--jsonl", str(jsonl), "--pcap", str(pcap)]
    log = tmp / f"proxy-{port}.log"
    with running(net, argv, log, port, cwd=ROOT, env=env, stop_timeout=30) as proc:
        yield ProxyRun(proc, net, port, jsonl, pcap)


def storescp(tmp: Path, port: int = UPSTREAM_PORT, *extra: str) -> list[str]:
    out = tmp / "received"
    out.mkdir(exist_ok=True)
    return [dcmtk("storescp"), "-od", str(out), *extra, str(port)]


def dataset_digest(path: Path) -> str:
    """sha256 of a DICOM file's data set bytes (after the file meta group), which
    ``storescp +B`` writes exactly as received."""
    data = path.read_bytes()
    # Group 0002 is Explicit VR Little Endian; its first element gives its length.
    assert data[128:132] == b"DICM" and data[132:136] == b"\x02\x00\x00\x00"
    start = 144 + int.from_bytes(data[140:144], "little")
    return hashlib.sha256(data[start:]).hexdigest()


def leg_records(recs: list[dict[str, Any]], server_port: int | None = None) -> list[dict[str, Any]]:
    """Association records (of one server port, if given) with their own records after them,
    ids renumbered 1, 2, ... in association order: the proxy's log and the pcapng, which
    holds both legs, number associations differently but must list them in the same order."""
    assocs = [
        r
        for r in recs
        if r["type"] == "association"
        and (server_port is None or r["server"]["port"] == server_port)
    ]
    assocs.sort(key=lambda r: r["id"])
    number = {r["id"]: n for n, r in enumerate(assocs, 1)}
    out: list[dict[str, Any]] = []
    for a in assocs:
        out.append(_renumbered(dict(a, id=number[a["id"]]), number))
        own = [r for r in recs if r["type"] != "association" and r.get("association") == a["id"]]
        own.sort(key=lambda r: (r["type"], r.get("index", 0), r.get("frame") or 0))
        out += [_renumbered(dict(r, association=number[a["id"]]), number) for r in own]
    return out


def _renumbered(record: dict[str, Any], number: dict[int, int]) -> dict[str, Any]:
    """The association ids inside workflow link fields, renumbered like the records'."""

    def one(ref: Any) -> Any:
        if isinstance(ref, dict) and ref.get("association") in number:
            return dict(ref, association=number[ref["association"]])
        return ref

    for key in ("to", "initiated_by", "commitment_request"):
        if record.get(key) is not None:
            record[key] = one(record[key])
    if record.get("commitment_reports"):
        record["commitment_reports"] = [one(r) for r in record["commitment_reports"]]
    if record.get("sub_associations"):
        record["sub_associations"] = [number.get(i, i) for i in record["sub_associations"]]
    return record
