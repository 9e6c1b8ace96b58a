"""The probe's parts that need no peer: names, scan batches, baselines, command-line errors
(exit status 3), secrets, OpenMetrics escaping, what --watch calls a change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.cli import main
from analyzer.sources.probe.baseline import Baseline, BaselineError, compare, load, save
from analyzer.sources.probe.catalog import (
    ContextSpec,
    ScanKind,
    UidError,
    parse_context,
    parse_role,
    scan_contexts,
)
from analyzer.sources.probe.openmetrics import exposition
from analyzer.sources.probe.options import Health, ProbeOptions, SecretError, read_secret
from analyzer.sources.probe.result import CheckRun, evaluate
from analyzer.sources.probe.scan import MAX_CONTEXTS, ScanMatrix, batches
from analyzer.sources.probe.watch import changes
from analyzer.sources.probe.wire import Cause, Trouble
from analyzer.store import Store

from .harness import CT, EXPLICIT, IMPLICIT, J2K_LOSSLESS, MR, metric_families


def test_contexts_by_uid_keyword_or_name() -> None:
    assert parse_context("CTImageStorage=ExplicitVRLittleEndian,JPEG2000Lossless") == (
        ContextSpec(CT, (EXPLICIT, J2K_LOSSLESS))
    )
    assert parse_context("CT Image Storage") == parse_context(CT) == ContextSpec(CT)
    assert parse_context(f"{MR}=1.2.840.10008.1.2").transfer_syntaxes == (IMPLICIT,)
    assert parse_context("1.2.3.4.5").abstract_syntax == "1.2.3.4.5"  # a private SOP class
    assert parse_role("CTImageStorage=scp").scp and not parse_role("CTImageStorage=scp").scu
    for bad in ("NoSuchStorage", "CTImageStorage=CTImageStorage", "ExplicitVRLittleEndian"):
        with pytest.raises(UidError):
            parse_context(bad)
    with pytest.raises(UidError):
        parse_role("CTImageStorage=owner")


def test_scan_batches_hold_at_most_128_contexts() -> None:
    contexts = scan_contexts(ScanKind.STORAGE)
    pairs = {(c.abstract_syntax, c.transfer_syntaxes) for c in contexts}
    assert len(pairs) == len(contexts) and all(len(c.transfer_syntaxes) == 1 for c in contexts)
    sizes = [len(b) for b in batches(contexts)]
    assert sum(sizes) == len(contexts) and max(sizes) == MAX_CONTEXTS
    with pytest.raises(ValueError):
        list(batches(contexts, 129))


def _matrix(accepted: set[tuple[str, str]], proposed: set[tuple[str, str]]) -> ScanMatrix:
    return ScanMatrix({p: 0 if p in accepted else 3 for p in proposed})


def test_baseline_round_trip_and_drift(tmp_path: Path) -> None:
    proposed = {(CT, IMPLICIT), (CT, EXPLICIT), (MR, IMPLICIT)}
    path = tmp_path / "base.json"
    save(
        path,
        _matrix({(CT, IMPLICIT), (MR, IMPLICIT)}, proposed),
        target="t",
        called_ae="A",
        created="2026-01-01T00:00:00Z",
    )
    base = load(path)
    assert base.accepted == frozenset({(CT, IMPLICIT), (MR, IMPLICIT)})
    # Now MR is lost, CT explicit gained, and a pair the baseline never proposed is ignored.
    now = _matrix(
        {(CT, IMPLICIT), (CT, EXPLICIT), (CT, J2K_LOSSLESS)}, proposed | {(CT, J2K_LOSSLESS)}
    )
    drift = compare(base, now)
    assert drift.lost == ((MR, IMPLICIT),) and drift.gained == ((CT, EXPLICIT),)
    assert drift.compared == 3


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\xff not json",
        b"[]",
        b'{"schema": "x"}',
        b'{"schema": "dicomtap-probe-baseline/1", "proposed": {"a": [1]}, "accepted": {}}',
    ],
)
def test_a_file_that_is_not_a_baseline(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "b.json"
    path.write_bytes(content)
    with pytest.raises(BaselineError, match="is not a baseline"):
        load(path)
    with pytest.raises(BaselineError, match="cannot read"):
        load(tmp_path / "missing.json")


def test_secrets_come_from_env_or_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "pw"
    secret.write_bytes(b"hunter2\n")
    assert read_secret(env=None, path=str(secret)) == b"hunter2"
    monkeypatch.setenv("PW", "x y")
    assert read_secret(env="PW", path=None) == b"x y"
    with pytest.raises(SecretError, match="NOT_SET is not set"):
        read_secret(env="NOT_SET", path=None)
    secret.write_bytes(b"x" * 100_000)
    with pytest.raises(SecretError, match="not a secret"):
        read_secret(env=None, path=str(secret))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["127.0.0.1:104"], "Missing option '--called'"),
        (["nohost", "--called", "X"], "expected HOST:PORT"),
        (["h:104", "--called", "X", "--context", "Nothing"], "unknown SOP class 'Nothing'"),
        (["h:104", "--called", "X" * 17], "is not an AE title"),
        (["h:104", "--called", "X", "--commit"], "--commit needs an object"),
        (["h:104", "--called", "X", "--baseline", "b.json"], "add --scan"),
        (["h:104", "--called", "X", "--watch", "5", "--format", "openmetrics"], "--watch"),
        (
            ["h:104", "--called", "X", "--user", "u", "--passcode-env", "NOPE_NOT_SET"],
            "NOPE_NOT_SET is not set",
        ),
        (["h:104", "--called", "X", "--role", "CTImageStorage=scp"], "propose that SOP class"),
        (
            ["h:104", "--called", "X", "--find", "study", "--find-key", "NoSuchKey=1"],
            "unknown data element keyword",
        ),
        (["h:104", "--called", "X", "--store-test", "--store", __file__], "choose one"),
        (["h:104", "--called", "X", "--find", "study", "--find-key", "Rows=abc"], "bad --find-key"),
    ],
)
def test_usage_errors_are_unknown(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["probe", *args])
    assert result.exit_code == 3, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_store_of_a_file_that_is_not_dicom_is_unknown(tmp_path: Path) -> None:
    bogus = tmp_path / "x.dcm"
    bogus.write_text("not dicom")
    result = CliRunner().invoke(
        main, ["probe", "127.0.0.1:1", "--called", "X", "--store", str(bogus)]
    )
    assert result.exit_code == 3
    assert result.output.startswith(f"DICOM UNKNOWN - cannot read {bogus} as a DICOM file")


def test_openmetrics_escapes_what_it_is_given() -> None:
    odd = 'a"b\\c\nd'
    opts = ProbeOptions(host="127.0.0.1", port=1, calling_ae="P", called_ae=odd)
    trouble = Trouble(Cause.REFUSED, "connection refused")
    check = CheckRun(1, (), frozenset(), None, None, trouble, b"", ())
    result = evaluate(opts, Store(), check, started_ts=0, duration_ns=1000)
    assert result.health == Health.CRITICAL
    families = metric_families(exposition(result))
    (status,) = families["dicomtap_probe_status"].samples
    assert status.labels["called_ae"] == odd and status.value == 2
    assert families["dicomtap_probe_up"].samples[0].value == 0


def test_watch_changes_leave_figures_out() -> None:
    before = {"status": "OK", "service C-ECHO": "0x0000 Success"}
    after = {
        "status": "WARNING",
        "service C-ECHO": "0x0000 Success",
        "problem latency:C-ECHO": "WARNING: C-ECHO took 1.2 s (warning over 1 s)",
    }
    assert changes(before, after) == [
        "~ status: OK -> WARNING",
        "+ WARNING: C-ECHO took 1.2 s (warning over 1 s)",
    ]
    slower = dict(after, **{"problem latency:C-ECHO": "WARNING: C-ECHO took 1.4 s (warning ...)"})
    assert changes(after, slower) == []  # the same problem, another figure
    assert changes(after, before) == [
        "~ status: WARNING -> OK",
        "- WARNING: C-ECHO took 1.2 s (warning over 1 s) (resolved)",
    ]


def test_baseline_is_written_atomically(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text("previous")
    save(path, _matrix({(CT, IMPLICIT)}, {(CT, IMPLICIT)}), target="t", called_ae="A", created="")
    assert json.loads(path.read_text())["accepted"] == {CT: [IMPLICIT]}
    assert [p.name for p in tmp_path.iterdir()] == ["b.json"]
    assert isinstance(load(path), Baseline)


def test_queries_are_checked_before_sending() -> None:
    from analyzer.sources.probe.options import FindLevel, FindSpec
    from analyzer.sources.probe.services import check_query

    for level in FindLevel:
        check_query(FindSpec(level, (("PatientID", "X*"), ("StudyDate", "20260101-"))))
    with pytest.raises(ValueError):
        check_query(FindSpec(FindLevel.STUDY, (("Rows", "many"),)))


def _check_store(*steps: tuple[bool, bytes, bool]) -> Store:
    """The store of a check association: (from_probe, PDU, injected by a middlebox)."""
    from analyzer.builder import ModelBuilder
    from analyzer.findings import Diagnosis
    from dissectors import CloseKind
    from dissectors.observer import AssociationObserver
    from tests.factories import CLIENT, SERVER, associate_ac, associate_rq, echo_rq, echo_rsp

    store = Store()
    builder = ModelBuilder(store, rules=Diagnosis())
    obs = AssociationObserver(1, CLIENT, SERVER, builder.handle, ts=0, frame=1, handshake=True)
    opening = [(True, associate_rq(), False), (False, associate_ac(), False)]
    opening += [(True, echo_rq(), False), (False, echo_rsp(), False)]
    ts = 0
    for from_probe, pdu, injected in [*opening, *steps]:
        ts += 1_000_000
        obs.data(from_probe, pdu, ts, None, injected=injected)
    obs.closed(False, CloseKind.FIN, ts + 1, None, injected=steps[-1][2])
    obs.finish()
    return store


@pytest.mark.parametrize(
    ("injected", "who"),
    [(False, "aborted by the SCP"), (True, "aborted by a third party between the probe")],
)
def test_the_probe_names_who_aborted_as_the_outcome_does(injected: bool, who: str) -> None:
    """An A-ABORT a proxy wrote towards the probe is not blamed on the SCP."""
    from tests.factories import abort

    store = _check_store((False, abort(0, 0), injected))
    check = CheckRun(1, (), frozenset(), None, None, None, b"", ())
    opts = ProbeOptions(host="127.0.0.1", port=104, calling_ae="PROBE", called_ae="SCP")
    result = evaluate(opts, store, check, started_ts=0, duration_ns=1)
    (problem,) = [p for p in result.problems if p.key == "aborted"]
    assert who in problem.text, problem.text
