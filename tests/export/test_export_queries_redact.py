"""``--include-queries`` writes query identifiers and the pending responses' data sets;
``--redact phi`` de-identifies every file export writes, its name and the manifest."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from pydicom import dcmread

from tests.anonymize.oracle import phi_values
from tests.peers import dicomtap_argv

ROOT = Path(__file__).resolve().parents[2]


def export(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        dicomtap_argv("export", *args), capture_output=True, text=True, timeout=300
    )


def test_find_identifiers_and_pending_responses(tmp_path: Path) -> None:
    cap = ROOT / "samples" / "find_orthanc.pcap"
    out = tmp_path / "out"
    result = export(
        "--include-queries", str(cap), "-o", str(out), "--manifest", str(tmp_path / "m")
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(x) for x in (tmp_path / "m").read_text().splitlines()]
    commands = sorted(r["command"] for r in records)
    assert commands.count("C-FIND-RQ") == 2 and commands.count("C-FIND-RSP") >= 2
    assert all(r["status"] == 0xFF00 for r in records if r["command"] == "C-FIND-RSP")
    names = {str(dcmread(out / r["file"]).get("PatientName", "")) for r in records}
    assert "DOE^JOHN" in names  # what the SCP answered
    # Without the option: a C-FIND carries no C-STORE, so nothing is written.
    assert export(str(cap), "-o", str(tmp_path / "none")).returncode == 0
    assert not list((tmp_path / "none").iterdir())


def test_redact_phi(tmp_path: Path) -> None:
    cap = ROOT / "samples" / "store.pcap"
    secrets = phi_values(cap)
    assert b"DOE^JOHN" in secrets and len(secrets) > 20
    plain, hidden = tmp_path / "plain", tmp_path / "hidden"
    assert export(str(cap), "-o", str(plain)).returncode == 0
    result = export(
        "--redact", "phi", str(cap), "-o", str(hidden), "--manifest", str(tmp_path / "m")
    )
    assert result.returncode == 0, result.stderr
    files = sorted(hidden.iterdir())
    assert len(files) == len(list(plain.iterdir())) == 5
    manifest = (tmp_path / "m").read_bytes()
    for f in files:
        data = f.read_bytes()
        for s in secrets:
            assert s not in data and s not in f.name.encode() and s not in manifest
        ds = dcmread(f)
        assert (
            f.name == f"{ds.SOPInstanceUID}.dcm" == f"{ds.file_meta.MediaStorageSOPInstanceUID}.dcm"
        )
        assert str(ds.PatientName).startswith("ANONYM") and ds.Modality in ("CT", "MR")
    # Same sizes: every value kept its length.
    assert sorted(f.stat().st_size for f in files) == sorted(
        f.stat().st_size for f in plain.iterdir()
    )
