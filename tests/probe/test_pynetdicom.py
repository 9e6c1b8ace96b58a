"""The probe against pynetdicom SCPs that accept only some contexts, reject, abort, never
answer, fail the C-ECHO, commit storage (or not), and check a user identity."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.peers import Net

from .harness import CT, MR, SCP_PORT, probe, pynetdicom_scp

pytestmark = pytest.mark.peers

TARGET = f"127.0.0.1:{SCP_PORT}"


def test_some_contexts_rejected_is_a_warning_and_find_counts(net: Net, tmp_path: Path) -> None:
    with pynetdicom_scp(net, tmp_path, "some"):
        run = probe(
            net,
            TARGET,
            "--called",
            "PYSCP",
            "--context",
            "CTImageStorage=JPEG2000Lossless,ExplicitVRLittleEndian",
            "--context",
            "MRImageStorage",
            "--find",
            "study",
            "--find-key",
            "PatientID=X*",
            "--format",
            "json",
        )
        limited = probe(
            net,
            TARGET,
            "--called",
            "PYSCP",
            "--find",
            "study",
            "--find-limit",
            "2",
            "--format",
            "json",
        )
    assert run.returncode == 1, run.stdout
    doc = run.json()
    assert doc["status"] == "WARNING"
    assert doc["summary"].endswith(
        "MR Image Storage not accepted (abstract-syntax-not-supported (provider rejection))"
    )
    results = {c["abstract_syntax"]: c for c in doc["association"]["contexts"]}
    assert results[CT]["result"] == 0
    assert results[CT]["accepted_transfer_syntax"] == "1.2.840.10008.1.2.1"
    assert results[MR]["result"] == 3
    services = {s["service"]: s for s in doc["services"]}
    assert services["C-FIND"]["matches"] == 3 and services["C-FIND"]["status"] == 0
    assert services["C-FIND"]["latency_ms"] is not None
    # --find-limit: cancelled after two matches, which is not a failure.
    assert limited.returncode == 0, limited.stdout
    (_, find) = limited.json()["services"]
    assert find["matches"] == 2 and find["cancelled"] is True


def test_wrong_called_ae_is_critical_in_diagnose_words(net: Net, tmp_path: Path) -> None:
    with pynetdicom_scp(net, tmp_path, "reject"):
        run = probe(net, TARGET, "--called", "WRONG")
    assert run.returncode == 2, run.stdout
    assert run.first_line.startswith(
        f"DICOM CRITICAL - {TARGET} DICOMTAP->WRONG: association rejected: Called AE title not "
        "recognised (permanent; result 1, source 1, reason 7)"
    )
    # The explanation and hint of `dicomtap diagnose`, with the evidence.
    words = " ".join(run.stdout.split())
    assert "does not answer to the called AE title 'WRONG'" in words
    assert "Hint: On the requesting device (127.0.0.1), set the called AE title" in words


def test_abort_is_critical(net: Net, tmp_path: Path) -> None:
    with pynetdicom_scp(net, tmp_path, "abort"):
        run = probe(net, TARGET, "--called", "PYSCP", "--format", "json")
    assert run.returncode == 2
    doc = run.json()
    assert doc["summary"].endswith(
        "association aborted by the SCP (A-ABORT source 0: DICOM UL service-user) (and 1 more)"
    )
    assert doc["association"]["abort"]["by"] == "acceptor"
    assert doc["services"][0]["error"] == "no C-ECHO response"


def test_silent_scp_is_critical_within_the_timeout(net: Net, tmp_path: Path) -> None:
    with pynetdicom_scp(net, tmp_path, "silent"):
        run = probe(net, TARGET, "--called", "PYSCP", "--timeout", "2")
    assert run.returncode == 2
    assert run.first_line.startswith(
        f"DICOM CRITICAL - {TARGET} DICOMTAP->PYSCP: no answer to the A-ASSOCIATE-RQ within 2 s"
    )
    assert run.seconds < 2 + 10  # the timeout, plus starting Python under load


def test_echo_failure_status_is_critical(net: Net, tmp_path: Path) -> None:
    with pynetdicom_scp(net, tmp_path, "echofail"):
        run = probe(net, TARGET, "--called", "PYSCP")
    assert run.returncode == 2
    assert "C-ECHO failed: 0x0211 Unrecognised Operation" in run.first_line
    assert "c_echo=" in run.first_line  # its latency is measured all the same


def test_latency_thresholds(net: Net, tmp_path: Path) -> None:
    with pynetdicom_scp(net, tmp_path, "slowecho"):
        warning = probe(net, TARGET, "--called", "PYSCP", "--warn", "0.5", "--crit", "10")
        critical = probe(net, TARGET, "--called", "PYSCP", "--warn", "0.2", "--crit", "1")
    assert warning.returncode == 1, warning.stdout
    # 1.5 s and a little more (the figure is the observed one, as printed by `analyze`).
    assert re.search(r": C-ECHO took 1\.[5-9] s \(warning over 0\.5 s\)", warning.first_line)
    assert re.search(r" c_echo=1\.[5-9]\d*s;0\.5;10;0 ", warning.first_line)
    assert critical.returncode == 2, critical.stdout
    assert re.search(r": C-ECHO took 1\.[5-9] s \(critical over 1 s\)", critical.first_line)


@pytest.mark.parametrize("mode", ["commit", "commitfail"])
def test_storage_commitment_round_trip(net: Net, tmp_path: Path, mode: str) -> None:
    with pynetdicom_scp(net, tmp_path, mode):
        run = probe(
            net, TARGET, "--called", "PYSCP", "--store-test", "--commit", "--format", "json"
        )
    doc = run.json()
    services = {s["service"]: s for s in doc["services"]}
    assert services["C-STORE"]["status"] == 0
    commands = [(e["command"], e["from"]) for e in doc["exchanges"]]
    assert ("N-ACTION", "requestor") in commands and ("N-EVENT-REPORT", "acceptor") in commands
    assert doc["association"]["outcome"] == "released"
    commit = services["commit"]
    assert commit["latency_ms"] >= 200  # the SCP reports 0.2 s after its N-ACTION-RSP
    if mode == "commit":
        assert run.returncode == 0, run.stdout
        assert commit["committed"] is True and commit["error"] is None
    else:
        assert run.returncode == 2
        assert commit["committed"] is False
        assert commit["error"] == (
            "the SCP did not commit the object (failure reason 0x0110: Processing Failure)"
        )


def test_identity_roles_async_window_sent_and_passcode_never_shown(
    net: Net, tmp_path: Path
) -> None:
    log = tmp_path / "scp-identity.txt"
    secret = "s3cret-Passc0de"
    with pynetdicom_scp(net, tmp_path, "identity", SCP_PORT, "IDSCP", str(log)):
        args = [
            TARGET,
            "--called",
            "IDSCP",
            "--user",
            "alice",
            "--passcode-env",
            "PROBE_PW",
            "--identity-response",
            "--context",
            "CTImageStorage",
            "--role",
            "CTImageStorage=scu,scp",
            "--async-window",
            "3,2",
        ]
        text = probe(net, *args, env={"PROBE_PW": secret})
        got = log.read_text().splitlines()
        as_json = probe(net, *args, "--format", "json", env={"PROBE_PW": secret})
        # A scan sends the identity on each of its associations (the check's, then two
        # batches for 170 storage SOP classes), without the check's role selections.
        before = len(log.read_text())
        scan = probe(
            net,
            *args,
            "--scan",
            "storage",
            "--scan-syntax",
            "ExplicitVRLittleEndian",
            env={"PROBE_PW": secret},
        )
        scanned = log.read_text()[before:].splitlines()
    assert text.returncode == 0, text.stdout
    identity = f"identity 2 {b'alice'.hex()} {secret.encode().hex()}"
    assert identity in got
    assert f"role {CT} True True" in got and "async 3 2" in got
    assert scan.returncode == 0, scan.stdout
    assert scanned.count(identity) == 3 and scanned.count("async 3 2") == 3
    assert scanned.count(f"role {CT} True True") == 1
    assert secret not in scan.stdout
    for out in (text, as_json):
        assert secret not in out.stdout + out.stderr
    requestor = as_json.json()["association"]["user_information"]["requestor"]
    assert requestor["user_identity"]["username"] == "alice"
    assert "username and passcode 'alice' + passcode" in text.stdout
    ct = next(c for c in as_json.json()["association"]["contexts"] if c["abstract_syntax"] == CT)
    assert ct["roles"] == {
        "proposed": {"scu": True, "scp": True},
        "accepted": {"scu": True, "scp": True},
    }


def test_find_worklist_counts_scheduled_steps(net: Net, tmp_path: Path) -> None:
    with pynetdicom_scp(net, tmp_path, "worklist"):
        run = probe(
            net,
            TARGET,
            "--called",
            "PYSCP",
            "--contexts",
            "worklist",
            "--find",
            "worklist",
            "--format",
            "json",
        )
    assert run.returncode == 0, run.stdout
    doc = run.json()
    assert doc["status"] == "OK"
    find = next(s for s in doc["services"] if s["service"] == "C-FIND")
    assert find["matches"] == 2 and find["status"] == 0
    worklist = "1.2.840.10008.5.1.4.31"
    assert any(
        c["abstract_syntax"] == worklist and c["result"] == 0
        for c in doc["association"]["contexts"]
    )
