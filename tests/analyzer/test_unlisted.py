"""Connections without DICOM past the bounds of :mod:`analyzer.unlisted` are counted in the
summary rather than each being an association record: a SYN flood or a port scan does not
make hundreds of megabytes of output, and nothing about it is lost."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner, Result

from analyzer import unlisted
from analyzer.cli import main
from analyzer.findings import Diagnosis
from analyzer.pipeline import analyze_files
from analyzer.reports import csvout, diagnosis, jsonl, text
from analyzer.scale import jobs as sharded
from analyzer.store import Store
from tests.pcapgen import ACK, RST, SYN, frame, write_pcap

T0 = 1_700_000_000.0


def flood(path: Path, n: int, *, refused: int = 0, servers: int = 1) -> Path:
    """``n`` SYNs, never answered, to ``servers`` servers on port 104 (one after the other),
    and ``refused`` connection attempts to 10.0.9.9:104 answered by a reset, among them."""
    frames: list[tuple[float, bytes]] = []
    for i in range(n):
        server = f"10.0.{1 + (i % servers) // 250}.{1 + (i % servers) % 250}"
        client = f"10.1.{(i >> 8) & 255}.{i & 255}"
        frames.append((T0 + i * 1e-5, frame(client, 1024 + i, server, 104, i, 0, SYN)))
    for j in range(refused):
        t = T0 + j * 1e-4 + 5e-6
        frames.append((t, frame("10.3.0.1", 30000 + j, "10.0.9.9", 104, j, 0, SYN)))
        frames.append(
            (t + 1e-6, frame("10.0.9.9", 104, "10.3.0.1", 30000 + j, 0, j + 1, RST | ACK))
        )
    frames.sort(key=lambda f: f[0])
    return write_pcap(path, frames)


def records(paths: list[Path], jobs: int = 1) -> list[dict[str, Any]]:
    store = analysed(paths, jobs)
    return list(jsonl.records(store, "test"))


def analysed(paths: list[Path], jobs: int = 1) -> Store:
    store = Store()
    names = [str(p) for p in paths]
    if jobs == 1:
        analyze_files(names, store, rules=Diagnosis())
    else:
        sharded.analyze_jobs(names, store, jobs=jobs, rules=Diagnosis())
    return store


def analyze(*args: str) -> Result:
    return CliRunner().invoke(main, ["analyze", "--no-progress", *args])


def test_a_syn_flood_lists_the_first_connections_and_counts_the_rest(tmp_path: Path) -> None:
    out = records([flood(tmp_path / "flood.pcap", 1500)])
    associations = [r for r in out if r["type"] == "association"]
    assert [a["id"] for a in associations] == list(range(1, 101))
    assert {a["outcome"] for a in associations} == {"never-associated"}
    assert [a["frames"]["first"] for a in associations] == list(range(1, 101))
    findings = [r for r in out if r["type"] == "finding"]
    assert len(findings) == 100
    summary = out[-1]
    assert summary["type"] == "summary" and summary["associations"] == 100
    (group,) = summary["unlisted_connections"]
    assert group == {
        "server": {"ip": "10.0.1.1", "port": 104},
        "connections": 1400,
        "first": "2023-11-14T22:13:20.001000Z",
        "last": "2023-11-14T22:13:20.014990Z",
        "frames": {"first": 101, "last": 1500},
        "findings": [
            {
                "code": "connection-unanswered",
                "severity": "error",
                "title": "Connection attempt unanswered",
                "count": 1400,
            }
        ],
    }
    # About 2.4 KB of records a listed connection: the flood's output no longer grows with it.
    assert len("".join(json.dumps(r) for r in out)) < 300_000


def test_other_servers_keep_their_own_listed_connections(tmp_path: Path) -> None:
    """A flood to one server does not take the listing of a refused modality elsewhere."""
    out = records([flood(tmp_path / "mixed.pcap", 1500, refused=30)])
    refused = [r for r in out if r["type"] == "association" and r["server"]["ip"] == "10.0.9.9"]
    assert len(refused) == 30
    codes = {
        r["code"]
        for r in out
        if r["type"] == "finding" and r["association"] in {a["id"] for a in refused}
    }
    assert codes == {"connection-refused"}
    (group,) = out[-1]["unlisted_connections"]
    assert group["server"]["ip"] == "10.0.1.1" and group["connections"] == 1400


def test_a_scan_of_many_servers_is_bounded_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,000 listed in all; past :data:`~analyzer.unlisted.GROUPS` servers the rest are
    counted per port (``ip`` null)."""
    monkeypatch.setattr(unlisted, "GROUPS", 50)
    out = records([flood(tmp_path / "scan.pcap", 1200, servers=1200)])
    assert sum(r["type"] == "association" for r in out) == 1000
    groups = out[-1]["unlisted_connections"]
    assert len(groups) == 51
    assert all(g["connections"] == 1 for g in groups[:50])
    assert groups[50]["server"] == {"ip": None, "port": 104}
    assert groups[50]["connections"] == 150
    assert sum(g["connections"] for g in groups) == 200


def test_the_reports_say_what_is_not_listed(tmp_path: Path) -> None:
    store = analysed([flood(tmp_path / "flood.pcap", 300)])
    report, table, diagnosed = io.StringIO(), io.StringIO(), io.StringIO()
    text.write(store, report)
    csvout.write_findings(store, table)
    diagnosis.write(store, diagnosed)
    expected = (
        "Not listed: 200 more connection(s) without DICOM to 10.0.1.1:104, "
        "2023-11-14T22:13:20.001000Z to 2023-11-14T22:13:20.002990Z, frames 101 to 300: "
        "200 × connection attempt unanswered [connection-unanswered]."
    )
    assert expected in report.getvalue().splitlines()
    assert report.getvalue().endswith(
        "100 association(s) (100 never-associated), 0 DIMSE exchange(s), "
        "200 connection(s) without DICOM not listed, 300 packet(s) read.\n"
    )
    assert expected in diagnosed.getvalue().splitlines()
    assert diagnosis.verdict(store).endswith(
        " 200 more connection(s) without DICOM not listed (200 failed)."
    )
    last = table.getvalue().splitlines()[-1]
    assert last.startswith(",,10.0.1.1:104,,,never-associated,error,connection-unanswered,")
    assert last.endswith(",200 connection(s)")


def test_diagnose_fails_on_errors_that_are_only_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every listed connection is fine, the counted ones are not: the exit status says so."""
    monkeypatch.setattr(unlisted, "LISTED", 0)
    capture = flood(tmp_path / "flood.pcap", 20)
    result = CliRunner().invoke(main, ["diagnose", "--no-progress", str(capture)])
    assert result.exit_code == 1
    assert "20 more connection(s) without DICOM not listed (20 failed)." in result.stdout


def test_the_same_with_jobs(tmp_path: Path) -> None:
    capture = flood(tmp_path / "mixed.pcap", 1500, refused=30)
    assert records([capture], jobs=2) == records([capture])


def test_parquet_holds_the_counts(tmp_path: Path) -> None:
    capture = flood(tmp_path / "flood.pcap", 1500)
    result = analyze("--format", "parquet", "-o", str(tmp_path / "pq"), str(capture))
    assert result.exit_code == 0, result.output
    table = tmp_path / "pq" / "summary.parquet"
    relation = duckdb.sql(
        f"SELECT u.server.ip, u.connections, f.code, f.count FROM ("
        f"SELECT unnest(unlisted_connections) AS u FROM '{table}'), "
        f"LATERAL (SELECT unnest(u.findings) AS f)"
    )
    assert relation is not None
    assert relation.fetchall() == [("10.0.1.1", 1400, "connection-unanswered", 1400)]


def test_a_filter_selects_listed_records_only(tmp_path: Path) -> None:
    capture = flood(tmp_path / "flood.pcap", 300)
    result = analyze("--format", "json", "--filter", "ip=10.1.0.5", str(capture))
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in out if r["type"] == "association"] == [6]
    assert out[-1]["unlisted_connections"] == []
