"""A filter applied: to a finished store (reports), to a store being filled (live logs),
and through the command line, which must select what the TUI's filter box selects."""

from __future__ import annotations

import dataclasses
import io
import json
import re

import pytest
from click.testing import CliRunner

from analyzer.cli import main
from analyzer.filter import Facts, Filter, StreamFilter, select
from analyzer.findings import Diagnosis
from analyzer.model import CAPTURE_WIDE, Exchange
from analyzer.pipeline import analyze_files
from analyzer.sources.live import LiveOptions
from analyzer.sources.live.log import LiveJsonl, LiveLog
from analyzer.store import Store
from tui.core import StoreIndex
from tui.query import parse as tui_parse

from .conftest import ALL_SAMPLES, SAMPLES, matching, sample

# --- a finished store ---------------------------------------------------------------------


def test_select_keeps_everything_about_the_chosen_associations() -> None:
    store = sample("fail_move_dest_down_orthanc.pcap")
    chosen = select(store, Filter.parse("cmd=C-MOVE"))
    assert [a.id for a in chosen.associations()] == [1]
    assert chosen.source is store.source
    assert chosen.exchanges() == store.exchanges(1)
    assert chosen.findings() == store.findings(1)
    assert chosen.violations(1) == store.violations(1)
    other = select(store, Filter.parse("not cmd=C-MOVE"))
    assert [a.id for a in other.associations()] == [2] and other.exchanges() == []
    assert [f.code for f in other.findings()] == ["connection-refused"]
    nothing = select(store, Filter.parse("nothing-like-this"))
    assert len(nothing) == 0 and nothing.findings() == store.findings(CAPTURE_WIDE)


def test_select_keeps_the_order_of_records() -> None:
    store = sample("fail_get_no_role_orthanc.pcap")
    chosen = select(store, Filter.parse("calling=PYSCU"))
    assert chosen.exchanges() == store.exchanges() and chosen.findings() == store.findings()


# --- a store being filled: the live logs ----------------------------------------------------


def _live_log(name: str, expression: str | None) -> list[str]:
    """The text lines ``dicomtap live`` would print for the sample (times stripped)."""
    store, out = Store(), io.StringIO()
    accepts = StreamFilter(store, Filter.parse(expression)).accepts if expression else None
    log = LiveLog(store, out, accepts=accepts)
    analyze_files([SAMPLES / name], store, rules=Diagnosis())
    log._unsubscribe()
    return [line.split(" ", 1)[1] for line in out.getvalue().splitlines()]


def test_live_log_shows_an_association_from_the_moment_it_matches() -> None:
    everything = _live_log("get_orthanc.pcap", None)
    assert sum(line.startswith("#1 C-STORE ") for line in everything) == 3
    assert _live_log("get_orthanc.pcap", "calling=GETSCU") == everything
    assert _live_log("get_orthanc.pcap", "calling=NOBODY") == []
    slow = _live_log("get_orthanc.pcap", "latency>100ms")
    # the three fast C-STOREs came before the slow C-GET made the association match
    assert not any(line.startswith("#1 C-STORE ") for line in slow)
    assert any(line.startswith("#1 C-GET ") for line in slow)
    assert any(line.startswith("#1 started GETSCU → ORTHANC") for line in slow)
    assert slow[-1].startswith("#1 released after")


def test_live_log_filter_per_association() -> None:
    lines = _live_log("move_orthanc.pcap", "calling=ORTHANC")
    assert lines and all(line.startswith("#2 ") for line in lines)
    both = _live_log("fail_reject_calling_ae.pcap", "outcome=rejected or cmd=C-ECHO")
    assert {line.split()[0] for line in both} == {"#1", "#2"}


def test_live_json_lines_filtered() -> None:
    store, out = Store(), io.StringIO()
    flt = Filter.parse("called=STORESCP")
    sink = LiveJsonl(
        store, out, "test", LiveOptions("lo"), accepts=StreamFilter(store, flt).accepts
    )
    analyze_files([SAMPLES / "move_orthanc.pcap"], store, rules=Diagnosis())
    sink._unsubscribe()
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert records[0]["type"] == "header"
    assert {r["id"] for r in records if r["type"] == "association"} == {2}
    assert {r["association"] for r in records if r["type"] == "exchange"} == {2}


class _Counted:
    """A real exchange that counts how often a filter reads its command."""

    def __init__(self, exchange: Exchange) -> None:
        self._exchange = exchange
        self.reads = 0

    def __getattr__(self, name: str) -> object:
        if name == "service":
            self.reads += 1
        return getattr(self._exchange, name)


def test_a_growing_association_tests_each_exchange_once() -> None:
    """Live, an association is judged again at every change; its exchanges, which only
    grow, are each tested once (not once per change), until its contexts change."""
    store = sample("get_orthanc.pcap")
    a = store.association(1)
    assert a is not None
    flt = Filter.parse("cmd=C-GET and latency>100ms")
    exchanges = [_Counted(e) for e in store.exchanges(1)]
    facts = Facts(a)
    verdicts = []
    for e in exchanges:
        facts.add_exchange(e)  # type: ignore[arg-type]
        verdicts.append(flt.matches(facts))
        verdicts.append(flt.matches(facts))
    assert verdicts == [False] * 6 + [True] * 2  # three C-STOREs, then the slow C-GET
    assert [x.reads for x in exchanges] == [2, 2, 2, 2]  # read once when added, once tested
    facts.set_association(dataclasses.replace(a, outcome=None))
    assert flt.matches(facts) and [x.reads for x in exchanges] == [2, 2, 2, 2]
    facts.set_association(dataclasses.replace(a, contexts=a.contexts[:1]))
    assert flt.matches(facts) and [x.reads for x in exchanges] == [3, 3, 3, 3]  # again


# --- the command line: the same associations as the TUI ---------------------------------------

EXPRESSIONS = [
    "calling=STORESCU",
    "called=ORTHANC or outcome=rejected",
    "cmd=C-STORE and latency>1ms",
    "not status=success",
    "status!=success",
    "sop=*Image* and bytes<20k",
    "code=association-* or partial or gap",
    "duration>100ms and not ip=10.0.0.0/8",
    "ts=ImplicitVRLittleEndian",
    "PYSCU",
]


def _cli_ids(name: str, expression: str) -> list[int]:
    result = CliRunner().invoke(
        main, ["analyze", "--format", "json", "--filter", expression, str(SAMPLES / name)]
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    return sorted(r["id"] for r in records if r["type"] == "association")


def _tui_ids(name: str, expression: str) -> list[int]:
    store = Store(keep_pdus=True, compact_pdus=True)  # as 'dicomtap tui' fills it
    analyze_files([SAMPLES / name], store, rules=Diagnosis())
    index = StoreIndex(store)
    index.drain()
    query = tui_parse(expression)
    assert query.error is None
    return sorted(index.rows(query))


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_cli_and_tui_select_the_same_associations(name: str) -> None:
    selected: set[tuple[int, ...]] = set()
    for expression in EXPRESSIONS:
        cli = _cli_ids(name, expression)
        assert cli == _tui_ids(name, expression) == matching(name, expression), expression
        selected.add(tuple(cli))
    assert len(selected) > 1 or len(sample(name)) <= 1  # the filters do select something


def test_cli_filter_error_shows_a_caret_and_exits_2() -> None:
    result = CliRunner().invoke(
        main, ["diagnose", "--filter", "calling=CT and latency>fast", str(SAMPLES / "echo.pcap")]
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "dicomtap: error: --filter: latency: 'fast' is not a duration with a unit "
        "(500ms, 2s, 1.5min, 250us)",
        "  calling=CT and latency>fast",
        "                         ^^^^",
    ]
    assert result.stdout == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["live", "-i", "lo", "--filter", "cmd=C-STOR"],
        ["proxy", "--listen", ":0", "--upstream", "127.0.0.1:9", "--log-filter", "cmd=C-STOR"],
        ["tui", "--filter", "cmd=C-STOR", str(SAMPLES / "echo.pcap")],
    ],
)
def test_every_command_refuses_a_bad_filter_before_starting(argv: list[str]) -> None:
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2
    option = "--log-filter" if "--log-filter" in argv else "--filter"
    assert result.stderr.splitlines() == [
        f"dicomtap: error: {option}: cmd: unknown command 'C-STOR'; did you mean C-STORE?",
        "  cmd=C-STOR",
        "      ^^^^^^",
    ]


def test_diagnose_filter_decides_the_exit_status() -> None:
    sample_path = str(SAMPLES / "fail_reject_busy.pcap")
    runner = CliRunner()
    assert runner.invoke(main, ["diagnose", sample_path]).exit_code == 1
    kept = runner.invoke(main, ["diagnose", "--filter", "outcome=released", sample_path])
    assert kept.exit_code == 0, kept.output
    assert re.search(r"\b1 association\b", kept.stdout)
    failed = runner.invoke(main, ["diagnose", "--filter", "outcome=rejected", sample_path])
    assert failed.exit_code == 1 and "ECHOSCU" in failed.stdout


def test_analyze_filter_text_and_csv() -> None:
    path = str(SAMPLES / "move_orthanc.pcap")
    text = CliRunner().invoke(main, ["analyze", "--filter", "calling=ORTHANC", path])
    assert text.exit_code == 0
    assert "ORTHANC → STORESCP" in text.stdout and "MOVESCU" not in text.stdout
    rows = CliRunner().invoke(main, ["analyze", "--format", "csv", "--filter", "id=1", path])
    assert "C-MOVE" in rows.stdout and "C-STORE" not in rows.stdout
