"""``--filter`` selects the data sets of the associations that match, the same language as
``analyze --filter``: the files written are those of the associations analyze keeps."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.peers import dicomtap_argv

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = [str(ROOT / "samples" / n) for n in ("store.pcap", "move_orthanc.pcap")]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(dicomtap_argv(*args), capture_output=True, text=True, timeout=300)


def manifest(tmp_path: Path, name: str, *options: str) -> list[dict[str, object]]:
    result = run(
        "export",
        *CAPTURES,
        "-o",
        str(tmp_path / name),
        "--manifest",
        str(tmp_path / f"{name}.jsonl"),
        *options,
    )
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / f"{name}.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines]


def kept_associations(expr: str) -> set[int]:
    result = run("analyze", "--format", "json", "--filter", expr, *CAPTURES)
    assert result.returncode == 0, result.stderr
    records = [json.loads(x) for x in result.stdout.splitlines()]
    return {int(r["id"]) for r in records if r["type"] == "association"}


def test_filter_writes_only_matching_associations(tmp_path: Path) -> None:
    everything = manifest(tmp_path, "all")
    chosen = manifest(tmp_path, "orthanc", "--filter", "calling=ORTHANC")
    kept = kept_associations("calling=ORTHANC")
    assert kept and {r["association"] for r in everything} - kept  # the filter has work
    assert {r["association"] for r in chosen} == kept
    expected = [r for r in everything if r["association"] in kept]
    assert [r["sop_instance"] for r in chosen] == [r["sop_instance"] for r in expected]
    for r in chosen:
        assert (tmp_path / "orthanc" / str(r["file"])).is_file()
    assert len(list((tmp_path / "orthanc").iterdir())) == len(chosen)


def test_bad_filter_is_a_usage_error(tmp_path: Path) -> None:
    result = run("export", *CAPTURES, "-o", str(tmp_path / "x"), "--filter", "calling=")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "--filter" in result.stderr
    assert not (tmp_path / "x").exists()
