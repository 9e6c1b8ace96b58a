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
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from analyzer.findings import Diagnosis
from analyzer.pipeline import analyze_files
from analyzer.reports.jsonl import records
from analyzer.store import Store
from tests.peers import Net, Process, dcmtk

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = Path(__file__).resolve().parent / "scripts"
PROXY_PORT = 11112
UPSTREAM_PORT = 11113


def proxy_argv(*args: str) -> list[str]:
    return [sys.executable, "-c", "from analyzer.cli import main; main()", "proxy", *args]


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

    def wait_log(self, pattern: str, timeout: float = 20) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.log())
            if m:
                return m
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
    argv = proxy_argv("--listen", listen, *args)
    if outputs:
        argv += ["--jsonl", str(jsonl), "--pcap", str(pcap)]
    old = dict(os.environ)
    if env:
        os.environ.update(env)
    try:
        proc = Process(net, argv, tmp / f"proxy-{port}.log", cwd=ROOT)
    finally:
        os.environ.clear()
        os.environ.update(old)
    run = ProxyRun(proc, net, port, jsonl, pcap)
    try:
        net.wait_listening(port, proc)
        yield run
    finally:
        proc.stop(timeout=30)


def storescp(tmp: Path, port: int = UPSTREAM_PORT, *extra: str) -> list[str]:
    out = tmp / "received"
    out.mkdir(exist_ok=True)
    return [dcmtk("storescp"), "-od", str(out), *extra, str(port)]


def big_image(path: Path, size: int, index: int = 1) -> Path:
    """A CT image whose pixel data is ``size`` bytes (pseudo-random, fast to make)."""
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid(entropy_srcs=["dicomtap-proxy", str(size), str(index)])
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["dicomtap-proxy-study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["dicomtap-proxy-series"])
    ds.PatientName = "PROXY^TEST"
    ds.PatientID = "PX0001"
    ds.Modality = "CT"
    ds.Columns = 4096
    ds.Rows = max(1, size // 8192)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    seed = hashlib.sha256(str(index).encode()).digest()
    pixels = ds.Rows * ds.Columns * 2
    ds.PixelData = (seed * (pixels // len(seed) + 1))[:pixels]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)
    return path


def dataset_digest(path: Path) -> str:
    """sha256 of a DICOM file's data set bytes (after the file meta group), which
    ``storescp +B`` writes exactly as received."""
    ds = dcmread(path, stop_before_pixels=True)
    data = path.read_bytes()
    start = 132 + len(_meta_bytes(data))
    del ds
    return hashlib.sha256(data[start:]).hexdigest()


def _meta_bytes(data: bytes) -> bytes:
    # Group 0002 is Explicit VR Little Endian; its first element gives its length.
    assert data[128:132] == b"DICM" and data[132:136] == b"\x02\x00\x00\x00"
    length = int.from_bytes(data[140:144], "little")
    return data[132 : 144 + length]


def analyze(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """``dicomtap analyze --format json`` of capture files, as records."""
    store = Store()
    analyze_files(paths, store, rules=Diagnosis())  # as `dicomtap analyze` does
    return list(records(store, "test"))


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
        out.append(dict(a, id=number[a["id"]]))
        own = [r for r in recs if r["type"] != "association" and r.get("association") == a["id"]]
        own.sort(key=lambda r: (r["type"], r.get("index", 0), r.get("frame") or 0))
        out += [dict(r, association=number[a["id"]]) for r in own]
    return out


def run(net: Net, argv: Sequence[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return net.run(argv, timeout=timeout)
