"""Names come only from valid UIDs and files go only into the folder named: a capture whose
SOP Instance UIDs are paths, absolute or climbing, writes nothing anywhere else."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from pydicom import dcmread

from tests.peers import dicomtap_argv

from .crafted import store_capture

HOSTILE = [
    "../../escaped",
    "/tmp/dicomtap-absolute-escape",
    "1.2.3/../../x",
    "1.2.3\n",
    "..",
    "1.2.840.10008.3\x00/",
]


def export(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        dicomtap_argv("export", *args), capture_output=True, text=True, timeout=120
    )


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_hostile_uids_write_only_inside_the_folder(tmp_path: Path) -> None:
    cap = store_capture(tmp_path / "hostile.pcap", [*HOSTILE, "1.2.3.4"])
    work = tmp_path / "work"
    out = work / "a" / "out"
    out.parent.mkdir(parents=True)
    before = tree(tmp_path)
    result = export(str(cap), "-o", str(out), "--manifest", str(tmp_path / "m.jsonl"))
    assert result.returncode == 0, result.stderr
    created = tree(tmp_path) - before
    assert all(c.startswith("work/a/out") or c == "m.jsonl" for c in created), created
    assert not Path("/tmp/dicomtap-absolute-escape.dcm").exists()
    names = sorted(p.name for p in out.iterdir())
    assert "1.2.3.4.dcm" in names
    others = [n for n in names if n != "1.2.3.4.dcm"]
    assert len(others) == len(HOSTILE)
    assert all(n.startswith("association-1-message-") and "/" not in n for n in others)
    for name in names:
        assert dcmread(out / name).PatientName == "CRAFTED^PATIENT"
    records = [json.loads(x) for x in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert {r["file"] for r in records} == set(names)


def test_a_planted_symlink_is_not_followed(tmp_path: Path) -> None:
    cap = store_capture(tmp_path / "c.pcap", ["1.2.3.4"])
    out = tmp_path / "out"
    out.mkdir()
    target = tmp_path / "victim"
    target.write_text("keep me")
    os.symlink(target, out / "1.2.3.4.dcm")
    result = export(str(cap), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert target.read_text() == "keep me"
    assert (out / "1.2.3.4.2.dcm").is_file()  # the next free name, never through the link


def test_duplicates_get_distinct_names(tmp_path: Path) -> None:
    cap = store_capture(tmp_path / "d.pcap", ["1.2.3.4", "1.2.3.4", "1.2.3.4"])
    out = tmp_path / "out"
    assert export(str(cap), "-o", str(out)).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "1.2.3.4.2.dcm",
        "1.2.3.4.3.dcm",
        "1.2.3.4.dcm",
    ]
    # Exported again into the same folder: nothing is overwritten.
    assert export(str(cap), "-o", str(out)).returncode == 0
    assert len(list(out.iterdir())) == 6
