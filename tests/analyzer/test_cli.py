"""The ``dicomtap`` command line: formats, errors and exit codes, on bundled samples."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from click.testing import CliRunner

from analyzer.cli import main
from tests.pcapgen import Conversation, write_pcap

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_text_report() -> None:
    code, out, _ = run("analyze", str(SAMPLES / "reject_context.pcap"))
    assert code == 0
    assert "STORESCU → STORESCP" in out
    assert "abstract-syntax-not-supported" in out
    assert "MR Image Storage" in out
    assert "C-STORE" in out and "0x0000 Success" in out


def test_json_lines_schema() -> None:
    code, out, _ = run("analyze", "--format", "json", str(SAMPLES / "move_orthanc.pcap"))
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert records[0]["type"] == "header" and records[0]["schema_version"] == 6
    assert records[-1]["type"] == "summary"
    associations = [r for r in records if r["type"] == "association"]
    exchanges = [r for r in records if r["type"] == "exchange"]
    required = {
        "id",
        "client",
        "server",
        "calling_ae",
        "called_ae",
        "start",
        "end",
        "outcome",
        "reject",
        "abort",
        "contexts",
        "max_pdu",
        "implementation",
        "partial",
    }
    for a in associations:
        assert required <= set(a)
        assert set(a["client"]) == {"ip", "port"}
        for c in a["contexts"]:
            assert {
                "id",
                "abstract_syntax",
                "transfer_syntaxes",
                "result",
                "accepted_transfer_syntax",
            } <= set(c)
    for e in exchanges:
        assert {
            "association",
            "command",
            "message_id",
            "sop_class",
            "status",
            "status_meaning",
            "latency_ms",
            "responses",
        } <= set(e)
    move = next(e for e in exchanges if e["command"] == "C-MOVE")
    assert move["responses"] == 3 and move["suboperations"]["completed"] == 3
    assert move["sop_class"] == "1.2.840.10008.5.1.4.1.2.2.2"
    assert {a["outcome"] for a in associations} == {"released"}


def test_json_of_a_rejection() -> None:
    _, out, _ = run("analyze", "--format", "json", str(SAMPLES / "reject_called_ae.pcap"))
    (a,) = [r for r in map(json.loads, out.splitlines()) if r["type"] == "association"]
    assert a["outcome"] == "rejected"
    assert (a["reject"]["result"], a["reject"]["source"], a["reject"]["reason"]) == (1, 1, 7)
    assert a["called_ae_raw"] == "WRONGAE         "
    findings = [json.loads(x) for x in out.splitlines() if '"type":"finding"' in x]
    assert [f["code"] for f in findings] == ["association-rejected"]


def test_csv_one_row_per_exchange() -> None:
    code, out, _ = run("analyze", "--format", "csv", str(SAMPLES / "store.pcap"))
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 5
    assert {r["command"] for r in rows} == {"C-STORE"}
    assert {r["status"] for r in rows} == {"0x0000"}


def test_output_file(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    code, out, _ = run("analyze", "--format", "json", "-o", str(target), str(SAMPLES / "echo.pcap"))
    assert code == 0 and out == ""
    assert json.loads(target.read_text().splitlines()[1])["type"] == "association"


def test_not_a_capture_is_one_line_and_exit_2(tmp_path: Path) -> None:
    junk = tmp_path / "notes.pcap"
    junk.write_text("this is not a capture\n")
    code, out, err = run("analyze", str(junk))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and "not a pcap or pcapng" in err


def test_missing_file_exit_2(tmp_path: Path) -> None:
    code, _, err = run("analyze", str(tmp_path / "nope.pcap"))
    assert code == 2 and "no such file" in err and err.count("\n") == 1


def test_truncated_capture_is_analysed_up_to_the_cut(tmp_path: Path) -> None:
    data = (SAMPLES / "store.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) // 2 + 7])
    code, out, err = run("analyze", "--format", "json", str(cut))
    assert code == 0
    assert "truncated" in err
    records = [json.loads(x) for x in out.splitlines()]
    summary = records[-1]
    assert summary["truncated"]
    (a,) = [r for r in records if r["type"] == "association"]
    assert a["outcome"] == "open-at-end"
    assert a["exchanges"] >= 1


def test_no_dicom_is_said_plainly(tmp_path: Path) -> None:
    # HTTP on port 8080: TCP traffic, but no DICOM.
    talk = Conversation(("10.0.0.1", 50000), ("10.0.0.2", 8080)).handshake()
    talk.send(True, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").send(
        False, b"HTTP/1.1 200 OK\r\n\r\n"
    ).close()
    path = write_pcap(tmp_path / "http.pcap", talk.frames)
    code, out, err = run("analyze", str(path))
    assert code == 0
    assert "No DICOM found" in out and "No DICOM found" in err


def test_diagnose_exit_codes() -> None:
    code, out, _ = run("diagnose", str(SAMPLES / "echo.pcap"))
    assert code == 0 and out.startswith("Verdict: No failure")
    code, out, _ = run("diagnose", str(SAMPLES / "reject_called_ae.pcap"))
    assert code == 1
    assert (
        out.splitlines()[0]
        == "Verdict: 1 of 1 association failed: called AE title not recognised (1)."
    )


def test_diagnose_json_and_min_severity() -> None:
    code, out, _ = run("diagnose", "--format", "json", str(SAMPLES / "reject_context.pcap"))
    assert code == 1
    records = [json.loads(x) for x in out.splitlines()]
    findings = [r for r in records if r["type"] == "finding"]
    assert {f["severity"] for f in findings} == {"error", "info"}
    assert records[-1]["verdict"].startswith("1 of 1 association failed")
    _, out, _ = run(
        "diagnose",
        "--format",
        "json",
        "--min-severity",
        "error",
        str(SAMPLES / "reject_context.pcap"),
    )
    assert {json.loads(x)["severity"] for x in out.splitlines() if '"finding"' in x} == {"error"}


def test_help_has_examples() -> None:
    for command in ("analyze", "diagnose"):
        code, out, _ = run(command, "--help")
        assert code == 0 and "Examples:" in out and "Exit status" in out


def test_a_long_proposal_is_summarised_in_the_text_view() -> None:
    """getscu proposes 121 contexts: the default text view gives the counts and the two
    contexts the messages used (the C-GET's and the CT storage one), not 121 table rows."""
    _, out, _ = run("analyze", str(SAMPLES / "get_orthanc.pcap"))
    assert "Presentation contexts: 121 proposed, 121 accepted" in out
    assert "(shown: the 2 used by DIMSE messages; every one: --format json)" in out
    table = out.split("Presentation contexts:")[1].split("User information")[0]
    assert "Study Root Query/Retrieve Information Model - GET" in table
    assert "CT Image Storage" in table and "MR Image Storage" not in table
    _, js, _ = run("analyze", "--format", "json", str(SAMPLES / "get_orthanc.pcap"))
    records = [json.loads(line) for line in js.splitlines()]
    (a,) = [r for r in records if r["type"] == "association"]
    assert len(a["contexts"]) == 121  # JSON keeps every one


def test_a_short_proposal_is_printed_whole() -> None:
    _, out, _ = run("analyze", str(SAMPLES / "store.pcap"))
    assert "  Presentation contexts:\n" in out and "proposed," not in out
