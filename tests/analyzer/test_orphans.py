"""Orphan responses (their request is not in the capture) are not exchanges: not in the
association's count, the summary, the text report's last line, nor as exchanges in CSV."""

from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path

from tests.factories import associate_ac, associate_rq, echo_rsp
from tests.pcapgen import Conversation, write_pcap
from tests.peers import analyze, dicomtap_argv

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
PARTIAL_GET = SAMPLES / "fail_get_partial.pcap"  # 2 C-STOREs and the C-GET's final response


def _run(*args: str) -> str:
    return subprocess.run(
        dicomtap_argv(*args), capture_output=True, text=True, timeout=60, check=True
    ).stdout


def test_summary_counts_exchanges_without_orphans() -> None:
    records = analyze([PARTIAL_GET])
    (summary,) = [r for r in records if r["type"] == "summary"]
    assert summary["exchanges"] == 2
    assert "2 DIMSE exchange(s)" in _run("analyze", str(PARTIAL_GET)).splitlines()[-1]


def test_csv_names_the_orphan_response() -> None:
    rows = list(csv.DictReader(io.StringIO(_run("analyze", "--format", "csv", str(PARTIAL_GET)))))
    assert [(r["command"], r["orphan_response"]) for r in rows] == [
        ("C-STORE", "false"),
        ("C-STORE", "false"),
        ("C-GET-RSP only", "true"),
    ]


def test_pending_responses_alone_are_an_orphan_not_a_pending_exchange(tmp_path: Path) -> None:
    talk = Conversation(("10.0.0.1", 50200), ("10.0.0.2", 104)).handshake()
    talk.send(True, associate_rq()).send(False, associate_ac())
    talk.send(False, echo_rsp(9, status=0xFF00)).close()
    records = analyze([write_pcap(tmp_path / "pending.pcap", talk.frames)])
    assert not [r for r in records if r["type"] == "exchange"]
    (orphan,) = [r for r in records if r["type"] == "orphan_response"]
    assert orphan["message_id"] == 9
    (a,) = [r for r in records if r["type"] == "association"]
    assert a["exchanges"] == 0 and a["orphan_responses"] == 1
