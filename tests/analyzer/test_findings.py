"""The diagnosis rules on real captures: each fires where its symptom is, and stays silent on
a capture that comes close (samples/README.md says how each capture was made)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.cli import main
from analyzer.findings import CODES, Diagnosis
from analyzer.model import Finding, Severity
from analyzer.pipeline import analyze_files
from analyzer.store import Store

from ..factories import associate_rq, echo_association
from ..pcapgen import SYN, Conversation, frame, write_pcap

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def findings(*names: str | Path, ports: tuple[int, ...] = ()) -> list[Finding]:
    store = Store()
    analyze_files(
        [SAMPLES / n if isinstance(n, str) else n for n in names],
        store,
        ports=ports,
        rules=Diagnosis(),
    )
    return store.findings()


def codes(*names: str | Path, ports: tuple[int, ...] = ()) -> dict[str, Severity]:
    """Each code found, with its worst severity."""
    out: dict[str, Severity] = {}
    for f in findings(*names, ports=ports):
        out[f.code] = max(out.get(f.code, f.severity), f.severity)
    return out


# code -> (capture where it fires with this severity, capture where it stays silent)
RULES: dict[str, tuple[str, Severity, str]] = {
    "association-rejected": ("reject_called_ae.pcap", Severity.ERROR, "echo.pcap"),
    "no-context-accepted": ("fail_no_context.pcap", Severity.ERROR, "reject_context.pcap"),
    "context-rejected": ("reject_context.pcap", Severity.ERROR, "store.pcap"),
    "unaccepted-context-used": ("fail_unaccepted_context.pcap", Severity.ERROR, "store.pcap"),
    "role-not-negotiated": ("fail_get_no_role_orthanc.pcap", Severity.ERROR, "get_orthanc.pcap"),
    "async-window-exceeded": ("fail_async_window.pcap", Severity.WARNING, "pynetdicom.pcap"),
    "association-aborted": ("fail_abort_provider.pcap", Severity.ERROR, "echo.pcap"),
    "transport-dropped": ("fail_transport_dropped.pcap", Severity.ERROR, "store.pcap"),
    "idle-before-abort": ("fail_idle_timeout.pcap", Severity.WARNING, "abort.pcap"),
    "release-collision": ("fail_release_collision.pcap", Severity.INFO, "echo.pcap"),
    "unanswered-request": ("fail_unanswered.pcap", Severity.ERROR, "find_orthanc.pcap"),
    "dimse-failure-status": ("fail_dimse_status.pcap", Severity.ERROR, "store.pcap"),
    "dimse-warning-status": ("fail_dimse_status.pcap", Severity.WARNING, "store.pcap"),
    "move-destination-unknown": (
        "fail_move_unknown_dest_dcmqrscp.pcap",
        Severity.ERROR,
        "move_orthanc.pcap",
    ),
    "move-without-sub-association": (
        "fail_move_unknown_dest_orthanc.pcap",
        Severity.ERROR,
        "fail_move_dest_down_orthanc.pcap",  # the same SCP and status, but it tried
    ),
    "move-destination-unreachable": (
        "fail_move_dest_down_dcmqrscp.pcap",
        Severity.ERROR,
        "fail_move_unknown_dest_orthanc.pcap",
    ),
    "move-sub-association-rejected": (
        "fail_move_sub_rejected_orthanc.pcap",
        Severity.ERROR,
        "move_concurrent_orthanc.pcap",
    ),
    "move-sub-association-wrong-ae": (
        "fail_move_wrong_ae_pynetdicom.pcap",
        Severity.WARNING,
        "move_concurrent_orthanc.pcap",
    ),
    "suboperation-count-mismatch": (
        "fail_move_capture_filtered.pcap",
        Severity.INFO,
        "move_orthanc.pcap",
    ),
    "commitment-failed-references": (
        "fail_commitment_failed_refs.pcap",
        Severity.ERROR,
        "commitment_reverse_orthanc.pcap",
    ),
    "commitment-reverse-association-failed": (
        "fail_commitment_reverse_rejected.pcap",
        Severity.ERROR,
        "commitment_reverse_orthanc.pcap",
    ),
    "commitment-report-missing": (
        "fail_commitment_no_report.pcap",
        Severity.WARNING,
        "commitment_same_pynetdicom.pcap",
    ),
    "implementation-quirk": (
        "fail_move_unknown_dest_orthanc.pcap",
        Severity.INFO,
        "fail_move_unknown_dest_dcmqrscp.pcap",  # the same request; dcmqrscp answers 0xA801
    ),
    "pdu-exceeds-max-length": ("fail_pdu_too_long.pcap", Severity.ERROR, "store_pdu4096.pcapng"),
    "protocol-violation": ("fail_abort_provider.pcap", Severity.ERROR, "pynetdicom.pcap"),
    "malformed-pdu": ("fail_get_no_role_orthanc.pcap", Severity.INFO, "get_orthanc.pcap"),
    "capture-gap": ("fail_capture_gap.pcap", Severity.WARNING, "store_mtu1500.pcap"),
    "partial-association": ("fail_partial_association.pcap", Severity.INFO, "store.pcap"),
    "never-associated": ("fail_never_associated.pcap", Severity.WARNING, "echo.pcap"),
    "connection-refused": ("fail_move_dest_down_orthanc.pcap", Severity.ERROR, "move_orthanc.pcap"),
    "tls-on-dicom-port": ("fail_tls_client_to_plain.pcap", Severity.ERROR, "echo.pcap"),
    "user-identity-unconfirmed": (
        "fail_cleartext_credentials.pcap",
        Severity.INFO,
        "pynetdicom.pcap",
    ),
    "cleartext-credentials": (
        "fail_cleartext_credentials.pcap",
        Severity.WARNING,
        "pynetdicom.pcap",
    ),
    "tcp-retransmissions": ("fail_tcp_loss.pcap", Severity.WARNING, "store.pcap"),
    # store.pcap: one zero window of 55 µs, a receiver catching up
    "tcp-zero-window": ("fail_tcp_zero_window.pcap", Severity.WARNING, "store.pcap"),
}


@pytest.mark.parametrize("code", sorted(RULES))
def test_rule_fires_on_its_capture(code: str) -> None:
    capture, severity, _ = RULES[code]
    found = codes(capture)
    assert code in found, found
    assert found[code] == severity


@pytest.mark.parametrize("code", sorted(RULES))
def test_rule_stays_silent_on_a_near_miss(code: str) -> None:
    _, _, silent = RULES[code]
    assert code not in codes(silent)


def test_every_code_is_tested_somewhere() -> None:
    tested_elsewhere = {
        # test_connection_unanswered: no peer on loopback leaves a SYN unanswered
        "connection-unanswered",
        # test_invalid_ae_title: real peers refuse to send such a title
        "ae-title-invalid",
        # tests/analyzer/test_hostile_text.py: a crafted UID (tests/data/repros)
        "uid-invalid",
        # tests/dissectors/test_tcp.py::test_a_defect_on_one_connection_does_not_hide_the_others
        "analysis-error",
        # tests/live: dumpcap's drop counts and an analysis that falls behind
        "capture-drops",
        "capture-lag",
        # tests/analyzer/test_tcp_health.py: crafted, a middlebox cannot be put between
        # two peers on the test machine
        "tcp-unanswered",
        "tcp-reset-after-idle",
    }
    assert set(CODES) == set(RULES) | tested_elsewhere


def test_healthy_samples_have_no_error_or_warning() -> None:
    healthy = [
        p.name
        for p in SAMPLES.iterdir()
        if p.suffix in (".pcap", ".pcapng") and not p.name.startswith(("fail_", "reject_", "abort"))
    ]
    assert len(healthy) >= 8
    for name in healthy:
        bad = [f for f in findings(name) if f.severity >= Severity.WARNING]
        assert bad == [], name


# capture -> the verdict's cause, and the exit status of `dicomtap diagnose`
VERDICTS: dict[str, tuple[str, int]] = {
    "reject_called_ae.pcap": ("called AE title not recognised", 1),
    "fail_reject_calling_ae.pcap": ("calling AE title not recognised", 1),
    "fail_reject_busy.pcap": ("association limit reached on the acceptor", 1),
    "reject_context.pcap": ("MR Image Storage not accepted", 1),
    "fail_no_context.pcap": ("no presentation context accepted", 1),
    "abort.pcap": ("association aborted by the acceptor", 1),
    "fail_abort_provider.pcap": ("unrecognised PDU from the requestor", 1),
    "fail_transport_dropped.pcap": ("connection dropped without release or abort", 1),
    "fail_unanswered.pcap": ("C-ECHO request never answered", 1),
    "fail_idle_timeout.pcap": ("association aborted by the acceptor", 1),
    "fail_dimse_status.pcap": ("C-STORE failed: Refused: Out of Resources", 1),
    "fail_move_unknown_dest_dcmqrscp.pcap": ("C-MOVE destination 'UNKNOWNDEST' unknown", 1),
    "fail_move_unknown_dest_orthanc.pcap": ("C-MOVE to 'UNKNOWNDEST' sent nothing", 1),
    "fail_move_dest_down_dcmqrscp.pcap": ("C-MOVE to 'DOWNDEST': destination unreachable", 1),
    "fail_move_dest_down_orthanc.pcap": ("C-MOVE to 'DOWNDEST': destination unreachable", 1),
    "fail_move_sub_rejected_orthanc.pcap": (
        "C-MOVE to 'REJDEST': the destination rejected the sub-association",
        1,
    ),
    "fail_move_sub_rejected_pynetdicom.pcap": (
        "C-MOVE to 'REJDEST': the destination rejected the sub-association",
        1,
    ),
    "fail_move_wrong_ae_pynetdicom.pcap": ("No failure in 2 associations (1 with warnings)", 0),
    "fail_move_capture_filtered.pcap": ("No failure", 0),
    "fail_get_partial.pcap": ("No failure", 0),
    "fail_commitment_failed_refs.pcap": ("storage commitment refused for 1 object", 1),
    "fail_commitment_reverse_rejected.pcap": (
        "storage commitment report could not be delivered",
        1,
    ),
    "fail_commitment_reverse_refused.pcap": (
        "storage commitment report could not be delivered",
        1,
    ),
    "fail_commitment_no_report.pcap": ("No failure in 1 association (1 with warnings)", 0),
    "fail_get_no_role_dcmqrscp.pcap": ("C-GET without the Storage SCP role", 1),
    "fail_get_no_role_orthanc.pcap": (
        "C-GET whose Storage SCP role for CT Image Storage was not negotiated",
        1,
    ),
    "fail_pdu_too_long.pcap": ("PDU larger than the receiver accepts", 1),
    "fail_unaccepted_context.pcap": (
        "message sent on a presentation context that was not accepted",
        1,
    ),
    "fail_tls_client_to_plain.pcap": ("TLS on one side only", 1),
    "fail_plain_client_to_tls.pcap": ("TLS on one side only", 1),
    "fail_async_window.pcap": ("No failure", 0),
    "fail_cleartext_credentials.pcap": ("No failure", 0),
    "fail_release_collision.pcap": ("No failure", 0),
    "fail_capture_gap.pcap": ("No failure", 0),
    "fail_partial_association.pcap": ("No failure", 0),
    "fail_never_associated.pcap": ("No failure", 0),
    "store.pcap": ("No failure", 0),
    "fail_tcp_loss.pcap": ("No failure", 0),  # TCP recovered: slower, not failed
    "fail_tcp_zero_window.pcap": ("No failure", 0),
}


@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_diagnose_names_the_cause_first(name: str) -> None:
    cause, status = VERDICTS[name]
    result = CliRunner().invoke(main, ["diagnose", "--no-progress", str(SAMPLES / name)])
    first = result.stdout.splitlines()[0]
    assert first.startswith("Verdict: ") and cause in first, first
    assert result.exit_code == status


def test_verdicts_never_headline_a_state_machine_cell() -> None:
    """A PS3.8 table cell (Evt19@Sta6) is evidence: it may be in a finding's text, never in
    the verdict line."""
    for name in VERDICTS:
        result = CliRunner().invoke(main, ["diagnose", "--no-progress", str(SAMPLES / name)])
        first = result.stdout.splitlines()[0]
        assert not re.search(r"Evt\d+|Sta\d+", first), first


def test_every_failure_sample_has_a_verdict() -> None:
    fail = {p.name for p in SAMPLES.glob("fail_*.pcap*")}
    covered = set(VERDICTS) | {"fail_snaplen.pcap"}
    assert fail <= covered, fail - covered


def test_a_port_named_dicom_reports_what_never_associated() -> None:
    # The SYN to port 11119 answered by RST is not DICOM traffic until the port is named.
    assert "connection-refused" not in codes("fail_never_associated.pcap")
    assert "connection-refused" in codes("fail_never_associated.pcap", ports=(11119,))


def test_connection_unanswered(tmp_path: Path) -> None:
    # A SYN that nothing answers (a firewall dropping it); loopback peers always answer.
    syn = frame("10.0.0.1", 50000, "10.0.0.2", 104, 1000, 0, SYN)
    path = write_pcap(
        tmp_path / "syn.pcap",
        [(1_700_000_000.0, syn), (1_700_000_001.0, syn), (1_700_000_003.0, syn)],
    )
    found = findings(path)
    assert [f.code for f in found] == ["connection-unanswered"]


def test_invalid_ae_title(tmp_path: Path) -> None:
    talk = Conversation(("10.0.0.1", 50000), ("10.0.0.2", 104)).handshake()
    talk.send(True, associate_rq(calling="")).close()
    found = findings(write_pcap(tmp_path / "ae.pcap", talk.frames))
    (invalid,) = [f for f in found if f.code == "ae-title-invalid"]
    assert "calling" in invalid.title and "empty" in invalid.explanation


def test_explanations_quote_values_and_never_the_passcode() -> None:
    rejected = next(
        f for f in findings("reject_called_ae.pcap") if f.code == "association-rejected"
    )
    assert "'WRONGAE'" in rejected.explanation and "reason 7" in rejected.explanation
    assert "case" in rejected.hint
    creds = next(
        f for f in findings("fail_cleartext_credentials.pcap") if f.code == "cleartext-credentials"
    )
    assert "alice" in creds.explanation and "s3cret" not in creds.explanation + creds.hint
    statuses = [f for f in findings("fail_dimse_status.pcap") if f.code == "dimse-failure-status"]
    assert (
        statuses
        and "0xA700" in statuses[0].explanation
        and "Error Comment" in statuses[0].explanation
    )


def test_every_finding_has_evidence() -> None:
    for name in VERDICTS:
        for f in findings(name):
            assert f.title and f.explanation and f.hint
            assert f.evidence.frames or f.evidence.ts is not None, (name, f.code)


def _silent_connection(client: tuple[str, int], server: tuple[str, int], t0: float) -> Conversation:
    """A connection that is accepted, carries nothing and is closed."""
    return Conversation(client, server, t0).handshake().close()


def test_never_associated_on_any_port_between_hosts_that_speak_dicom(tmp_path: Path) -> None:
    """A modality that associates with its PACS on port 4100 and also opens a connection to
    port 5100 of the same host that never associates: the second is reported without any
    --port, by the pair's other traffic; the same connection from an unrelated host is not."""
    dicom = Conversation(("10.0.0.1", 50000), ("10.0.0.2", 4100)).handshake()
    for from_client, pdu in echo_association():
        dicom.send(from_client, pdu)
    dicom.close()
    tried = _silent_connection(("10.0.0.1", 50001), ("10.0.0.2", 5100), 1_700_000_010.0)
    other = _silent_connection(("10.0.0.3", 50002), ("10.0.0.2", 5100), 1_700_000_020.0)
    path = write_pcap(tmp_path / "ports.pcap", dicom.frames + tried.frames + other.frames)
    store = Store()
    analyze_files([path], store, rules=Diagnosis())
    never = [a for a in store.associations() if a.outcome == "never-associated"]
    assert [(a.client.ip, a.server.port) for a in never] == [("10.0.0.1", 5100)]
    assert any(f.code == "never-associated" for f in store.findings(never[0].id))
