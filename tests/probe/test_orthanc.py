"""The probe against Orthanc: C-STORE of a file, C-FIND at two levels, a wrong AE title."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.objects import write_image
from tests.peers import Net, orthanc_config, running, tool

from .harness import probe

pytestmark = pytest.mark.peers

DICOM_PORT = 4242
HTTP_PORT = 8042


def test_orthanc_store_find_and_wrong_called_ae(net: Net, tmp_path: Path) -> None:
    images = [
        write_image(tmp_path / f"img{i}.dcm", index=i, patient_id="PXPROBE", study=i)
        for i in (1, 2)
    ]
    config = orthanc_config(
        tmp_path,
        DICOM_PORT,
        HTTP_PORT,
        aet="ORTHANC",
        DicomCheckCalledAet=True,
        DicomAlwaysAllowFind=True,
    )
    target = f"127.0.0.1:{DICOM_PORT}"
    base = [target, "--called", "ORTHANC", "--calling", "PROBE"]
    with running(net, [tool("Orthanc"), str(config)], tmp_path / "orthanc.log", port=DICOM_PORT):
        stored = [probe(net, *base, "--store", str(p), "--format", "json") for p in images]
        studies = probe(
            net, *base, "--find", "study", "--find-key", "PatientID=PXPROBE", "--format", "json"
        )
        patients = probe(net, *base, "--find", "patient", "--find-key", "PatientID=PX*")
        nobody = probe(
            net, *base, "--find", "study", "--find-key", "PatientID=NOBODY", "--format", "json"
        )
        wrong = probe(net, target, "--called", "NOTORTHANC", "--format", "json")
    for run in stored:
        assert run.returncode == 0, run.stdout
        store = run.json()["services"][1]
        assert store["service"] == "C-STORE" and store["status"] == 0
        assert store["latency_ms"] > 0
    assert studies.returncode == 0, studies.stdout
    find = studies.json()["services"][1]
    assert find["service"] == "C-FIND" and find["matches"] == 2 and find["status"] == 0
    assert "C-FIND Success (1 match)" in patients.first_line
    assert nobody.json()["services"][1]["matches"] == 0
    assert wrong.returncode == 2
    doc = wrong.json()
    assert doc["summary"].startswith(
        f"DICOM CRITICAL - {target} DICOMTAP->NOTORTHANC: association rejected: Called AE "
        "title not recognised"
    )
    (finding,) = [f for f in doc["findings"] if f["code"] == "association-rejected"]
    assert "'NOTORTHANC'" in finding["explanation"]
