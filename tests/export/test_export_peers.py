"""``dicomtap export`` against real peers: storescu → storescp +B across a veth pair at MTU
1500 with reordering, Explicit VR, Implicit VR and deflated data sets, small and
multi-megabyte objects. What dicomtap exports is, byte for byte, what storescp stored."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest
from pydicom import dcmread

from tests.objects import big_image, write_image
from tests.peers import dcmtk, dicomtap_argv, tshark_frames

from .mtu import dataset_bytes, digest, reorder, store, veth_pair

pytestmark = pytest.mark.peers

SYNTAXES = {
    "explicit": (["-xe"], [], "1.2.840.10008.1.2.1"),
    "implicit": (["-xi"], [], "1.2.840.10008.1.2"),
    "deflated": (["-xd"], ["+xd"], "1.2.840.10008.1.2.1.99"),
}


def noisy(path: Path) -> Path:
    """The image with pseudo-random pixels, so that a deflated data set stays big."""
    ds = dcmread(path)
    ds.PixelData = random.Random(len(ds.PixelData)).randbytes(len(ds.PixelData))
    ds.save_as(path, enforce_file_format=True)
    return path


def export(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        dicomtap_argv("export", *args), capture_output=True, text=True, timeout=600
    )


def stored(received: Path) -> dict[str, bytes]:
    """SOP Instance UID → data set bytes, of what storescp wrote."""
    out = {}
    for f in received.iterdir():
        uid = dcmread(f, stop_before_pixels=True).file_meta.MediaStorageSOPInstanceUID
        out[str(uid)] = dataset_bytes(f)
    return out


def out_of_order(cap: Path) -> int:
    return len(tshark_frames(cap, "tcp.analysis.out_of_order"))


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_exported_bytes_are_what_storescp_stored(syntax: str, tmp_path: Path) -> None:
    scu, scp, transfer_syntax = SYNTAXES[syntax]
    files = [
        write_image(tmp_path / f"small{i}.dcm", index=i, patient=f"EXPORT^{i}") for i in (1, 2)
    ]
    files.append(noisy(big_image(tmp_path / "big.dcm", 6 << 20)))
    cap = tmp_path / "cap.pcap"
    with veth_pair() as pair:
        received, done = store(pair, tmp_path, files, tmp_path / "wire.pcap", *scu, scp=scp)
    assert done.returncode == 0, done.stdout + done.stderr
    assert reorder(tmp_path / "wire.pcap", cap) > 100
    assert out_of_order(cap) > 100  # tshark sees the segments out of order
    expected = stored(received)
    assert len(expected) == 3
    out = tmp_path / "out"
    result = export(str(cap), "-o", str(out), "--manifest", str(tmp_path / "m.jsonl"))
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(f"{uid}.dcm" for uid in expected)
    for uid, data in expected.items():
        path = out / f"{uid}.dcm"
        assert digest(dataset_bytes(path)) == digest(data)
        ds = dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == transfer_syntax
        assert ds.file_meta.MediaStorageSOPInstanceUID == uid
        assert ds.file_meta.SourceApplicationEntityTitle == "STORESCU"
        assert ds.SOPInstanceUID == uid
        check = subprocess.run([dcmtk("dcmdump"), "-q", str(path)], capture_output=True, text=True)
        assert check.returncode == 0 and not check.stderr, check.stderr
    manifest = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert len(manifest) == 3
    assert all(
        m["complete"] and m["status"] == 0 and m["transfer_syntax"] == transfer_syntax
        for m in manifest
    )
    assert {m["bytes"] for m in manifest} == {len(d) for d in expected.values()}
