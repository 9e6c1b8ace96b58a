"""Parquet output: the JSON Lines records as tables, read back exactly, queried by DuckDB."""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from analyzer.cli import main
from analyzer.reports import parquet
from analyzer.reports.parquet import SCHEMAS, ParquetWriter
from tests.scale.captures import SAMPLES, Record, in_process, plain


def _iso(value: Any) -> Any:
    """A timestamp read back as the JSON Lines write it; anything else as it is."""
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%dT%H:%M:%S.%f}Z"
    if isinstance(value, dict):
        return {k: _iso(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_iso(v) for v in value]
    return value


def read_back(directory: Path) -> list[Record]:
    """Every table's rows as records (times as ISO text), in the order of the JSON Lines:
    the header, each association followed by its records (each table keeps the order its
    rows were written in), the errors, the summary."""
    rows: dict[str, list[Record]] = {}
    for kind in SCHEMAS:
        table = pq.read_table(directory / f"{kind}.parquet")
        rows[kind] = [_iso(r) for r in table.to_pylist()]
    out = rows["header"][:]
    by_association: dict[int, list[Record]] = {}
    for kind in ("exchange", "orphan_response", "violation", "gap", "finding", "link"):
        for r in rows[kind]:
            by_association.setdefault(r["association"], []).append(r)
    order = {"exchange": 0, "orphan_response": 0, "violation": 1, "gap": 2, "finding": 3}
    for a in rows["association"]:
        out.append(a)
        mine = by_association.get(a["id"], [])
        out += sorted(mine, key=lambda r: order.get(r["type"], 4))
    return out + rows["error"] + rows["summary"]


def as_rows(records: list[Record]) -> list[Record]:
    """The records as a table row holds them: every column of the schema, null where the
    record has no such field (link fields of JSON Lines schema 2, for instance)."""
    out = []
    for r in records:
        names = SCHEMAS[r["type"]].names
        out.append({name: r.get(name) for name in names})
    return out


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_every_record_read_back(sample: Path, tmp_path: Path) -> None:
    """Every field of every record of every sample, through Parquet and back: the same
    values, nested objects and lists included (times to the microsecond)."""
    records = plain([sample])
    writer = parquet.write(records, tmp_path)
    assert writer.skipped == {} and writer.unknown_fields == set()
    assert read_back(tmp_path) == as_rows(records)


def test_batches_do_not_change_the_tables(tmp_path: Path) -> None:
    records = in_process([str(s) for s in SAMPLES])
    parquet.write(records, tmp_path / "one")
    with ParquetWriter(tmp_path / "many", batch_rows=3) as writer:
        for r in records:
            writer.write(r)
    for kind in SCHEMAS:
        one = pq.read_table(tmp_path / "one" / f"{kind}.parquet")
        many = pq.read_table(tmp_path / "many" / f"{kind}.parquet")
        assert one.equals(many), kind
    assert pq.ParquetFile(tmp_path / "many" / "exchange.parquet").metadata.num_row_groups > 1


def _percentile(values: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (DuckDB's quantile_cont)."""
    ordered = sorted(values)
    h = (len(ordered) - 1) * p
    low = math.floor(h)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


def test_duckdb_answers_c_store_latency_per_calling_ae(tmp_path: Path) -> None:
    """The README's question, C-STORE latency percentiles per calling AE title, asked of
    the Parquet tables by DuckDB, and computed here from the JSON Lines of the same run."""
    out = tmp_path / "records.jsonl"
    samples = [str(s) for s in SAMPLES]
    runner = CliRunner()
    assert (
        runner.invoke(main, ["analyze", "--format", "json", "-o", str(out), *samples]).exit_code
        == 0
    )
    tables = tmp_path / "tables"
    result = runner.invoke(main, ["analyze", "--format", "parquet", "-o", str(tables), *samples])
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    calling = {r["id"]: r["calling_ae"] for r in records if r["type"] == "association"}
    latencies: dict[str | None, list[float]] = {}
    for r in records:
        if r["type"] == "exchange" and r["command"] == "C-STORE" and r["latency_ms"] is not None:
            latencies.setdefault(calling[r["association"]], []).append(r["latency_ms"])
    expected = sorted(
        (
            (ae, len(v), _percentile(v, 0.5), _percentile(v, 0.9), _percentile(v, 0.99))
            for ae, v in latencies.items()
        ),
        key=lambda row: (row[0] is None, row[0] or ""),  # DuckDB sorts NULL last
    )
    assert len(expected) >= 3
    query = f"""
        SELECT a.calling_ae, count(*),
               quantile_cont(e.latency_ms, 0.5), quantile_cont(e.latency_ms, 0.9),
               quantile_cont(e.latency_ms, 0.99)
        FROM '{tables}/exchange.parquet' e
        JOIN '{tables}/association.parquet' a ON a.id = e.association
        WHERE e.command = 'C-STORE' AND e.latency_ms IS NOT NULL
        GROUP BY a.calling_ae ORDER BY a.calling_ae
    """
    got = duckdb.connect().execute(query).fetchall()
    assert len(got) == len(expected)
    for row, want in zip(got, expected, strict=True):
        assert row[:2] == want[:2]
        assert row[2:] == pytest.approx(want[2:], abs=1e-9)


def test_a_time_past_the_year_9999_is_null(tmp_path: Path) -> None:
    """A capture's times are whatever its file says: a time a timestamp column cannot hold
    is null in its table (the JSON Lines keep it); the rest of the batch is written."""
    records = plain([SAMPLES[0]])
    first = next(r for r in records if r["type"] == "association")
    first["start"] = "+586438-03-27T03:49:22.812251Z"
    parquet.write(records, tmp_path)
    table = pq.read_table(tmp_path / "association.parquet").to_pylist()
    assert table[0]["start"] is None
    assert table[0]["end"] is not None


def test_a_failed_run_leaves_no_table(tmp_path: Path) -> None:
    records = plain([SAMPLES[0]])

    def failing() -> Any:
        yield from records[:3]
        raise RuntimeError("the run stopped")

    with pytest.raises(RuntimeError):
        parquet.write(failing(), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_records_without_a_column_are_told(tmp_path: Path) -> None:
    records = plain([SAMPLES[0]])
    records.insert(1, {"type": "novel", "x": 1})
    records[2]["novel_field"] = 1
    writer = parquet.write(records, tmp_path)
    assert writer.skipped == {"novel": 1}
    assert writer.unknown_fields == {f"{records[2]['type']}.novel_field"}


def test_parquet_needs_a_folder() -> None:
    result = CliRunner().invoke(main, ["analyze", "--format", "parquet", str(SAMPLES[0])])
    assert result.exit_code == 2
    assert result.stderr == (
        "dicomtap: error: --format parquet writes a folder of tables: name it with -o DIR\n"
    )


def test_parquet_into_a_file_that_is_not_a_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(
        main, ["analyze", "--format", "parquet", "-o", str(blocker), str(SAMPLES[0])]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith(f"dicomtap: error: cannot write {blocker}: ")
