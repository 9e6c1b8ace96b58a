"""``dicomtap anonymize`` on captures of real C-STOREs (storescu → storescp +B across a veth
pair at MTU 1500, segments reordered), Explicit VR, Implicit VR and deflated, small and
multi-megabyte objects: the copy verifies itself, tshark decodes the same PDUs, and no PHI
value of the original is left in it."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from pydicom import dcmread

from analyzer.anonymize.run import anonymize_files
from tests.export.mtu import reorder, store, veth_pair
from tests.objects import big_image, write_image

from .oracle import frames, phi_values, tshark_pdus

pytestmark = pytest.mark.peers

SYNTAXES = {"explicit": (["-xe"], []), "implicit": (["-xi"], []), "deflated": (["-xd"], ["+xd"])}


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_real_capture(syntax: str, tmp_path: Path) -> None:
    scu, scp = SYNTAXES[syntax]
    files = [
        write_image(
            tmp_path / f"s{i}.dcm", index=i, patient=f"SECRET^PATIENT{i}", patient_id=f"PHI-{i}"
        )
        for i in (1, 2)
    ]
    big = big_image(tmp_path / "big.dcm", 3 << 20)
    ds = dcmread(big)
    ds.PatientName = "SECRET^BIGPATIENT"
    ds.PixelData = random.Random(3).randbytes(len(ds.PixelData))
    ds.save_as(big, enforce_file_format=True)
    files.append(big)
    with veth_pair(reorder=False) as pair:
        _, done = store(pair, tmp_path, files, tmp_path / "wire.pcap", *scu, scp=scp)
    assert done.returncode == 0, done.stderr
    cap = tmp_path / "cap.pcap"
    assert reorder(tmp_path / "wire.pcap", cap) > 50
    out = tmp_path / "out.pcapng"
    result = anonymize_files([cap], str(out))
    assert result.verified, (result.differences, result.leftovers)
    data = out.read_bytes()
    secrets = phi_values(cap)
    if syntax != "deflated":  # a deflated data set's values are not readable in the capture
        assert {b"SECRET^PATIENT1", b"SECRET^BIGPATIENT", b"PHI-1"} <= secrets
        assert all(s in cap.read_bytes() for s in (b"SECRET^PATIENT1", b"PHI-1"))
    for s in secrets:
        assert s not in data
    assert frames(out) == frames(cap)
    # tshark's DICOM dissector loses its way in reordered segments, and where it does
    # depends on the bytes of the pixel data (which are zeroed here): compare it on the
    # capture in wire order, and on the reordered one with the pixels kept (a deflated data
    # set is zeroed whole, pixels or not).
    wire = tmp_path / "wire-out.pcapng"
    assert anonymize_files([tmp_path / "wire.pcap"], str(wire)).verified
    assert tshark_pdus(wire, {11112}) == tshark_pdus(tmp_path / "wire.pcap", {11112})
    kept = tmp_path / "kept.pcapng"
    assert anonymize_files([cap], str(kept), keep_pixels=True).verified
    if syntax != "deflated":
        assert tshark_pdus(kept, {11112}) == tshark_pdus(cap, {11112})
    if syntax == "deflated":
        assert result.tally.deflated_datasets == 3
    else:
        assert result.tally.pixel_bytes >= 3 << 20
