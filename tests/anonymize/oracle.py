"""What an anonymized capture must no longer hold, found independently of the anonymizer:
the original's data sets exported (``dicomtap export``, checked against storescp elsewhere)
and read by pydicom, every value of a Basic Profile attribute collected."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dpkt
from pydicom import dcmread
from pydicom.dataset import Dataset

from analyzer.export.exporter import Selection
from analyzer.export.run import export_files
from analyzer.redact.profile import action
from tests.peers import tool

_NOT_PHI = frozenset({b"", b"O", b"M", b"F"})


def _values(ds: Dataset, inside: bool = False) -> Iterator[bytes]:
    """The raw bytes of every hidden value (read before pydicom converts them)."""
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        hidden = inside or action(int(tag)) is not None
        vr = getattr(raw, "VR", None)
        value = getattr(raw, "value", None)
        if vr == "SQ" or (vr is None and not isinstance(value, bytes)):
            for item in ds[tag].value or ():
                if isinstance(item, Dataset):
                    yield from _values(item, hidden)
        elif hidden and vr not in ("AE", "OB", "OW", "UN") and isinstance(value, bytes):
            yield value.strip(b"\0 ")


def phi_values(capture: Path) -> set[bytes]:
    """Every PHI value (4 bytes or more) of the capture's data sets."""
    out: set[bytes] = set()
    with tempfile.TemporaryDirectory() as tmp:
        selection = Selection(include_queries=True, partial=True)
        export_files([capture], tmp, selection)
        for f in Path(tmp).iterdir():
            ds = dcmread(f, stop_before_pixels=True, force=True)
            for v in _values(ds):
                for part in v.split(b"\\"):
                    if len(part) >= 4 and part not in _NOT_PHI:
                        out.add(part)
    return out


def frames(path: Path) -> list[tuple[float, int, int]]:
    """(time, captured length, original length) of every frame, read with dpkt."""
    out = []
    with path.open("rb") as f:
        head = f.read(4)
        f.seek(0)
        if head == b"\x0a\x0d\x0d\x0a":
            for ts, data in dpkt.pcapng.Reader(f):
                out.append((round(float(ts), 6), len(data), 0))
        else:
            for ts, data in dpkt.pcap.Reader(f):
                out.append((round(float(ts), 6), len(data), 0))
    return out


def tshark_pdus(path: Path, ports: set[int]) -> list[str]:
    """The DICOM PDUs tshark decodes: frame, PDU type, PDV flags and context per line."""
    argv = [tool("tshark"), "-r", str(path), "-o", "tcp.analyze_sequence_numbers:TRUE"]
    for port in sorted(ports):
        argv += ["-d", f"tcp.port=={port},dicom"]
    argv += [
        "-Y",
        "dicom",
        "-T",
        "fields",
        "-e",
        "frame.number",
        "-e",
        "dicom.pdu.type",
        "-e",
        "dicom.pdv.len",
        "-e",
        "dicom.pdv.flags",
        "-e",
        "dicom.pdv.ctx",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    return done.stdout.splitlines()
