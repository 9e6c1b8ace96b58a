"""``analyze --jobs N``: the connections shared out among processes, exactly one process's
output (same records, same order, same association ids, in every format)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.cli import main
from analyzer.findings import Diagnosis
from analyzer.pipeline import analyze_files
from analyzer.reports import csvout, jsonl, text
from analyzer.scale import jobs as sharded
from analyzer.store import Store
from tests.scale.captures import GENERATOR, SAMPLES, Record, overlapping


def outputs(paths: list[str], jobs: int, **options: object) -> tuple[list[Record], str, str]:
    """JSON Lines records, text report and CSV of ``paths`` analysed with ``jobs`` jobs."""
    store = Store()
    if jobs == 1:
        analyze_files(paths, store, rules=Diagnosis(), **options)  # type: ignore[arg-type]
    else:
        sharded.analyze_jobs(paths, store, jobs=jobs, rules=Diagnosis(), **options)  # type: ignore[arg-type]
    report, table = io.StringIO(), io.StringIO()
    text.write(store, report)
    csvout.write(store, table)
    return list(jsonl.records(store, GENERATOR)), report.getvalue(), table.getvalue()


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_every_sample_with_two_jobs(sample: Path) -> None:
    assert outputs([str(sample)], 2) == outputs([str(sample)], 1)


def test_every_sample_read_as_one_capture_with_three_jobs() -> None:
    """All samples as the files of one capture: many connections, links between them (C-MOVE
    sub-associations, storage commitment reports on reverse associations)."""
    paths = [str(s) for s in SAMPLES]
    one = outputs(paths, 1)
    assert [r for r in one[0] if r["type"] == "link"]  # links span connections here
    assert outputs(paths, 3) == one


def test_a_larger_capture_of_overlapping_connections(tmp_path: Path) -> None:
    """Thousands of connections at once, copies of the samples on client ports of their own
    and overlapping in time; sub-associations and reverse associations go to whichever job
    their ports give."""
    big = overlapping(SAMPLES, tmp_path / "big.pcap", copies=12)
    one = outputs([str(big)], 1, ports=(104,))
    associations = [r for r in one[0] if r["type"] == "association"]
    assert len(associations) > 400
    assert outputs([str(big)], 2, ports=(104,)) == one


def test_the_command_with_two_jobs(tmp_path: Path) -> None:
    """``dicomtap analyze --jobs 2`` and ``--jobs 1`` print the same report, and the same
    JSON Lines under ``--filter`` and ``--redact phi``."""
    paths = [str(s) for s in SAMPLES if s.stem.startswith(("move", "commitment", "fail_move"))]
    runner = CliRunner()
    for options in (["--format", "text"], ["--format", "json", "--filter", "cmd=C-STORE"]):
        got = [runner.invoke(main, ["analyze", "--jobs", j, *options, *paths]) for j in "12"]
        assert got[0].exit_code == got[1].exit_code == 0, got[1].output
        assert got[0].stdout == got[1].stdout and got[0].stdout


def test_an_unreadable_file_is_one_line_with_jobs(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture at all\n" * 10)
    results = [
        CliRunner().invoke(main, ["analyze", "--jobs", j, str(SAMPLES[0]), str(junk)]) for j in "12"
    ]
    assert results[0].exit_code == results[1].exit_code == 2
    assert results[1].stderr == results[0].stderr
    assert len(results[1].stderr.splitlines()) == 1


def test_jobs_usage_errors() -> None:
    runner = CliRunner()
    got = runner.invoke(main, ["analyze", "--jobs", "2", "-"], input=b"")
    assert got.exit_code == 2 and "standard input" in got.stderr
    got = runner.invoke(main, ["analyze", "--jobs", "2", "--dask", "--format", "json", "x"])
    assert got.exit_code == 2 and "--dask" in got.stderr
    got = runner.invoke(main, ["analyze", "--jobs", "0", str(SAMPLES[0])])
    assert got.exit_code == 2
