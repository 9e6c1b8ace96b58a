"""Wire text in every human output is escaped; JSON keeps it; pydicom never speaks on stderr.

Captures: the crafted ones of tests/data/repros (AE titles holding escape sequences, a UID
holding an OSC sequence and BEL), and the hostile association of tests/hostile.py.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from pathlib import Path

import pytest

from analyzer.findings import Diagnosis
from analyzer.pipeline import analyze_files
from analyzer.reports.eventlines import EventLines
from analyzer.store import Store
from dissectors.dimse import decode_command_set
from tests import hostile
from tests.factories import CT_STORAGE, command
from tests.peers import dicomtap_argv

REPROS = Path(__file__).resolve().parents[1] / "data" / "repros"
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""A character a terminal obeys or a log reader splits on (newline aside)."""


def dicomtap(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed command in a fresh interpreter (stderr as a user sees it)."""
    return subprocess.run(
        dicomtap_argv(*args), capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    made = hostile.write_hostile_capture(tmp_path_factory.mktemp("hostile") / "hostile.pcap")
    return [str(REPROS / "ae_escape.pcap"), str(REPROS / "uid_warning_escape.pcap"), str(made)]


def _lines_are_safe(text: str) -> None:
    for line in text.splitlines():
        assert not RAW_CONTROL.search(line), repr(line)


@pytest.mark.parametrize(
    "args",
    [
        ("analyze",),
        ("diagnose",),
        ("analyze", "--format", "csv"),
        ("diagnose", "--format", "csv"),
    ],
    ids=["analyze", "diagnose", "analyze-csv", "diagnose-csv"],
)
def test_human_outputs_escape_wire_text(args: tuple[str, ...], captures: list[str]) -> None:
    done = dicomtap(*args, *captures)
    assert done.returncode == (1 if args[0] == "diagnose" else 0), done.stderr
    assert done.stderr == ""  # no pydicom warning, no note
    _lines_are_safe(done.stdout)
    out = done.stdout
    if args != ("analyze", "--format", "csv"):  # (one row per exchange: the repros have none)
        assert "CAL\\x1b[31mLED" in out  # ae_escape.pcap's called AE title
        assert "1.2.840.\\x1b]0;PWNED\\x07.1" in out  # uid_warning_escape.pcap's UID
    if args == ("analyze",):
        assert "IMPL\\x1b]0;X\\x07" in out  # an implementation version name
        assert '"disk full\\x0a[b]FORGED LINE\\x1b[2J"' in out  # an error comment
        assert "'1.2.3.\\x1b[2J4' is not a valid UI" in out  # a command set UID
    if args[0] == "analyze" or "csv" in args:
        assert "disk full\\x0a[b]FORGED LINE\\x1b[2J" in out


def test_text_report_columns_stay_aligned(captures: list[str]) -> None:
    out = dicomtap("analyze", captures[1]).stdout
    header, row = (
        line for line in out.splitlines() if "Abstract syntax" in line or "PWNED" in line
    )
    assert header.index("Proposed transfer syntaxes") == row.index("Implicit VR Little Endian")


def test_json_keeps_the_wire_text(captures: list[str]) -> None:
    done = dicomtap("analyze", "--format", "json", *captures)
    assert done.returncode == 0 and done.stderr == ""
    _lines_are_safe(done.stdout)  # the encoder escaped them
    records = [json.loads(line) for line in done.stdout.splitlines()]
    called = {r["called_ae"] for r in records if r["type"] == "association"}
    assert "CAL\x1b[31mLED" in called and hostile.CALLED in called
    syntaxes = {
        c["abstract_syntax"] for r in records if r["type"] == "association" for c in r["contexts"]
    }
    assert hostile.BAD_UID in syntaxes
    (exchange,) = [r for r in records if r["type"] == "exchange"]
    assert exchange["error_comment"] == hostile.ERROR_COMMENT.rstrip("\x00")


def test_json_escapes_what_the_encoder_leaves_raw() -> None:
    from analyzer.reports.jsonl import json_line

    record = {"calling_ae": "A\u202eB\x9b\x7fC", "name": "Müller"}
    line = json_line(record)
    assert not RAW_CONTROL.search(line.rstrip("\n"))
    assert json.loads(line) == record
    assert "Müller" in json_line({"name": "Müller"})  # plain text stays readable


def test_diagnose_csv_has_one_row_per_finding(captures: list[str]) -> None:
    done = dicomtap("diagnose", "--format", "csv", "--min-severity", "warning", *captures)
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    json_out = dicomtap("diagnose", "--format", "json", "--min-severity", "warning", *captures)
    findings = [r for r in map(json.loads, json_out.stdout.splitlines()) if r["type"] == "finding"]
    assert [(int(r["association"]), r["code"]) for r in rows] == [
        (f["association"], f["code"]) for f in findings
    ]
    assert all(r["severity"] in ("warning", "error") for r in rows)
    assert done.returncode == json_out.returncode == 1


def test_event_lines_escape_wire_text(tmp_path: Path) -> None:
    """The live log of ``dicomtap live`` and ``dicomtap proxy`` (analyzer/reports/eventlines)."""
    store = Store()
    events = EventLines(store)
    lines: list[str] = []
    store.subscribe(lambda change: lines.extend(text for _, text in events.lines(change)))
    paths = [REPROS / "ae_escape.pcap", hostile.write_hostile_capture(tmp_path / "h.pcap")]
    analyze_files(paths, store, rules=Diagnosis())
    assert len(lines) > 5
    for line in lines:
        assert not RAW_CONTROL.search(line), repr(line)
    text = "\n".join(lines)
    assert "started CALLING → CAL\\x1b[31mLED" in text
    assert '"disk full\\x0a[b]FORGED LINE\\x1b[2J"' in text


def test_an_invalid_uid_is_reported_not_warned(captures: list[str]) -> None:
    done = dicomtap("diagnose", "--format", "json", captures[1])
    assert done.stderr == ""
    findings = [r for r in map(json.loads, done.stdout.splitlines()) if r["type"] == "finding"]
    (invalid,) = [f for f in findings if f["code"] == "uid-invalid"]
    assert "abstract syntax of context 1" in invalid["explanation"]
    assert invalid["severity"] == "warning" and invalid["evidence"]["frames"] == [4]


def test_an_invalid_uid_in_a_command_set_is_a_dimse_violation() -> None:
    raw = command(
        command_field=0x0001,
        message_id=1,
        affected_sop_class_uid=CT_STORAGE,
        affected_sop_instance_uid="1.02.3",  # a leading zero: not a UID
        move_destination="AB\x1bC",
        priority=0,
        dataset_type=0,
    )
    cmd, defects = decode_command_set(raw)
    assert cmd is not None and cmd.affected_sop_instance_uid == "1.02.3"
    texts = sorted(d.text for d in defects if d.code == "invalid-value")
    assert len(texts) == len(defects) == 2
    assert texts[0].startswith("AffectedSOPInstanceUID (0000,1000) '1.02.3' is not a valid UI")
    assert texts[1].startswith("MoveDestination (0000,0600) 'AB\\x1bC' is not a valid AE")
    clean, none = decode_command_set(command(command_field=0x0030, message_id=1))
    assert clean is not None and none == []


def test_hostile_capture_violations_reach_the_records(captures: list[str]) -> None:
    done = dicomtap("analyze", "--format", "json", captures[2])
    violations = [r for r in map(json.loads, done.stdout.splitlines()) if r["type"] == "violation"]
    assert {v["by"] for v in violations} == {"requestor", "acceptor"}
    assert all(v["kind"] == "dimse" and "is not a valid UI" in v["text"] for v in violations)
