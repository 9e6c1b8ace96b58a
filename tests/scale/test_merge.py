"""The merge of capture points analysed apart: exactly what one process writes for them."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from analyzer.filter import Filter, select
from analyzer.findings import Diagnosis
from analyzer.pipeline import analyze_files
from analyzer.reports.jsonl import records
from analyzer.scale.merge import ASSOCIATION_REFERENCES, Merge, MergeError, renumber
from analyzer.scale.task import GroupResult, Settings, analyze_group
from analyzer.store import Store
from tests.pcapgen import Conversation, write_pcap
from tests.scale.captures import (
    GENERATOR,
    SAMPLES,
    Record,
    in_process,
    plain,
    shuffled,
    split,
)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_one_capture_point_is_what_analyze_writes(sample: Path) -> None:
    assert in_process([str(sample)]) == plain([sample])


def test_ports_reach_the_analysis(tmp_path: Path) -> None:
    """--port: a connection to port 4100 that never carried DICOM is an association only
    when 4100 is named as a DICOM port, as in ``dicomtap analyze --port 4100``."""
    conversation = Conversation(("10.1.1.1", 50000), ("10.1.1.2", 4100)).handshake().close()
    path = write_pcap(tmp_path / "probe.pcap", conversation.frames)
    named = in_process([str(path)], ports=(4100,), keep=16)
    assert named == plain([path], ports=(4100,), keep=16)
    assert [r["outcome"] for r in named if r["type"] == "association"] == ["never-associated"]
    assert [r["type"] for r in in_process([str(path)])] == ["header", "summary"]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_a_ring_named_in_any_order_is_the_capture_it_was_cut_from(
    sample: Path, tmp_path: Path
) -> None:
    """The sample cut into three or four files, named in shuffled order: stitched back in
    time order, every record is the whole capture's (frame numbers continue across the
    files); only the file names differ, and the notes that name them."""
    whole = plain([sample])
    parts = split(sample, tmp_path, max(1, whole[-1]["packets"] // 3))
    assert len(parts) >= 3
    got = in_process(shuffled(parts, seed=len(parts)))
    assert got[0]["sources"] == [str(p) for p in parts]
    assert got[1:-1] == whole[1:-1]
    keep = ("warnings", "truncated")
    assert {k: v for k, v in got[-1].items() if k not in keep} == {
        k: v for k, v in whole[-1].items() if k not in keep
    }
    assert bool(got[-1]["warnings"]) == bool(whole[-1]["warnings"])


def _association_fields(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Paths of the fields whose name says they hold association ids (an independent
    reading of the records, by name, to check the merge's table against)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if re.search(r"association", key):
                if isinstance(value, int) and not isinstance(value, bool):
                    yield (*path, key)
                elif isinstance(value, list):
                    yield (*path, key, "*")
                    for item in value:
                        yield from _association_fields(item, (*path, key, "*"))
                else:
                    yield from _association_fields(value, (*path, key))
            else:
                yield from _association_fields(value, (*path, key))
    elif isinstance(node, list):
        for item in node:
            yield from _association_fields(item, (*path, "*"))


def _moved(record: Record, offset: int) -> Record:
    """``record`` with its association ids moved, found by field name, not by the table."""
    out = copy.deepcopy(record)
    paths = list(_association_fields(out))
    if out["type"] == "association":
        paths.append(("id",))
    for path in paths:
        _shift(out, path, offset)
    return out


def _shift(node: Any, path: tuple[str, ...], offset: int) -> None:
    key, rest = path[0], path[1:]
    if key == "*":
        for i, item in enumerate(node):
            if rest:
                _shift(item, rest, offset)
            elif isinstance(item, int) and item:
                node[i] = item + offset
    elif rest:
        if node.get(key) is not None:
            _shift(node[key], rest, offset)
    elif isinstance(node.get(key), int) and node[key]:
        node[key] += offset


def test_every_field_named_for_an_association_is_in_the_table() -> None:
    """A field added to a record that holds association ids, and named for them, must be
    renumbered too: the table of the merge has to list it."""
    for sample in SAMPLES:
        for record in plain([sample]):
            if record["type"] in ("header", "summary"):
                continue
            declared = set(ASSOCIATION_REFERENCES[record["type"]])
            for path in _association_fields(record):
                assert path in declared, (record["type"], path, sample.name)


def test_capture_points_one_after_the_other(tmp_path: Path) -> None:
    """Three capture points: one header naming every file, each one's records in turn with
    ids moved past the highest id of those before it, one summary adding theirs up."""
    chosen = [s for s in SAMPLES if s.stem in ("move_orthanc", "abort", "fail_capture_gap")]
    got = in_process([str(p) for p in chosen])
    alone = {p.name: plain([p]) for p in chosen}
    order = [Path(f).name for f in got[0]["sources"]]
    assert sorted(order) == sorted(alone)
    expected: list[Record] = []
    offset = 0
    for name in order:
        body = alone[name][1:-1]
        expected += [_moved(r, offset) for r in body]
        offset += max(r["id"] for r in body if r["type"] == "association")
    assert got[1:-1] == expected
    summaries = [alone[name][-1] for name in order]
    summary = got[-1]
    for key in ("associations", "exchanges", "packets", "tcp_segments"):
        assert summary[key] == sum(s[key] for s in summaries)
    assert summary["first_packet"] == min(s["first_packet"] for s in summaries)
    assert summary["last_packet"] == max(s["last_packet"] for s in summaries)
    ids = [r["id"] for r in got if r["type"] == "association"]
    assert len(ids) == len(set(ids)) == summary["associations"]
    for record in got[1:-1]:
        assert record.get("association", ids[0]) in ids


def test_a_filter_keeps_in_each_capture_point_what_it_keeps_in_one_process() -> None:
    """``--dask --filter``: each capture point keeps the associations ``analyze --filter``
    keeps of it, and the ids of those it dropped still count (ids are the unfiltered
    output's, as in one process)."""
    chosen = [s for s in SAMPLES if s.stem in ("move_orthanc", "abort", "store", "echo")]
    flt = Filter.parse("cmd=C-STORE")
    got = in_process([str(p) for p in chosen], filter=flt)
    expected: list[Record] = []
    offset = 0
    for name in [Path(f).name for f in got[0]["sources"]]:
        store = Store()
        analyze_files([str(next(p for p in chosen if p.name == name))], store, rules=Diagnosis())
        body = list(records(select(store, flt), GENERATOR))[1:-1]
        expected += [_moved(r, offset) for r in body]
        offset += max(a.id for a in store.associations())
    assert got[1:-1] == expected
    kept = [r for r in got if r["type"] == "association"]
    assert kept and len(kept) < len(
        [r for r in in_process([str(p) for p in chosen]) if r["type"] == "association"]
    )
    assert got[-1]["associations"] == len(kept)


def test_renumber_every_declared_field() -> None:
    """Each field of the table, with a link record's and a storage commitment exchange's
    shapes; id 0 (the capture as a whole) and nulls stay as they are."""
    exchange = {
        "type": "exchange",
        "association": 2,
        "sub_associations": [3, 4],
        "commitment_reports": [{"association": 5, "exchange": 1}],
        "commitment_request": {"association": 6, "exchange": 2},
        "commitment": {"delivery": "none", "reverse_attempts": [7]},
    }
    renumber(exchange, lambda i: i * 100)
    assert exchange == {
        "type": "exchange",
        "association": 200,
        "sub_associations": [300, 400],
        "commitment_reports": [{"association": 500, "exchange": 1}],
        "commitment_request": {"association": 600, "exchange": 2},
        "commitment": {"delivery": "none", "reverse_attempts": [700]},
    }
    link = {"type": "link", "association": 1, "exchange": 3, "to": {"association": 9}}
    renumber(link, lambda i: i + 10)
    assert link == {"type": "link", "association": 11, "exchange": 3, "to": {"association": 19}}
    association = {"type": "association", "id": 4, "initiated_by": None}
    renumber(association, lambda i: i + 10)
    assert association == {"type": "association", "id": 14, "initiated_by": None}
    capture_wide = {"type": "finding", "association": 0}
    renumber(capture_wide, lambda i: i + 10)
    assert capture_wide["association"] == 0


def test_a_record_type_the_table_does_not_know_is_an_error() -> None:
    with pytest.raises(MergeError, match="'novel'"):
        renumber({"type": "novel", "association": 1}, lambda i: i)


def test_a_summary_field_without_a_rule_is_an_error() -> None:
    merge = Merge(GENERATOR, [])
    result = GroupResult(("x.pcap",), summary={"type": "summary", "novel": 1})
    with pytest.raises(MergeError, match="'novel'"):
        list(merge.add(result))


def test_files_that_cannot_be_read_are_error_records(tmp_path: Path) -> None:
    """A text file and a missing file: each an error record after the header, saying why in
    the reader's own words; the capture that can be read is analysed as ever."""
    good = next(s for s in SAMPLES if s.name == "echo.pcap")
    text = tmp_path / "notes.pcap"
    text.write_text("not a capture\n")
    missing = tmp_path / "gone.pcap"
    got = in_process([str(text), str(good), str(missing)])
    errors = [r for r in got if r["type"] == "error"]
    assert [e["sources"] for e in errors] == [[str(text)], [str(missing)]]
    assert errors[0]["message"].startswith(f"{text} is not a pcap or pcapng capture")
    assert errors[1]["message"] == f"{missing}: no such file"
    assert got[1:3] == errors
    assert [r for r in got if r["type"] != "error"] == plain([good])


def test_an_analysis_that_fails_costs_only_its_capture_point(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A defect that raises inside one capture point's analysis: that capture point is an
    error record that says so; the others are analysed."""
    real = analyze_files
    broken = next(s for s in SAMPLES if s.name == "abort.pcap")
    good = next(s for s in SAMPLES if s.name == "echo.pcap")

    def flaky(paths: Any, store: Any, **kw: Any) -> None:
        if str(broken) in paths:
            raise RuntimeError("boom")
        real(paths, store, **kw)

    monkeypatch.setattr("analyzer.scale.task.analyze_files", flaky)
    result = analyze_group([str(broken)], Settings())
    assert result.error is not None
    assert "RuntimeError: boom" in result.error and "defect" in result.error
    got = in_process([str(broken), str(good)])
    assert sorted(got[0]["sources"]) == sorted([str(broken), str(good)])
    assert [r["type"] for r in got].count("error") == 1
    assert [r for r in got[1:] if r["type"] != "error"] == plain([good])[1:]
