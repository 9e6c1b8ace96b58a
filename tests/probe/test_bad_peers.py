"""Bad input from the network: each gives one CRITICAL line with its cause, within the
timeout, never a traceback (the harness fails a run that prints one)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.peers import Net, orthanc_config, running, tool

from .harness import SCP_PORT, probe, raw_peer

pytestmark = pytest.mark.peers

TARGET = f"127.0.0.1:{SCP_PORT}"
#: Starting Python (and pydicom) is slow on a loaded machine; the probe's own bound is the
#: timeout.
STARTUP = 10


def _critical(run_first_line: str, cause: str) -> None:
    assert run_first_line.startswith(f"DICOM CRITICAL - {TARGET} DICOMTAP->X: {cause}"), (
        run_first_line
    )


def test_nothing_listening(net: Net) -> None:
    run = probe(net, TARGET, "--called", "X", "--format", "json")
    assert run.returncode == 2
    doc = run.json()
    assert doc["summary"] == (
        f"DICOM CRITICAL - {TARGET} DICOMTAP->X: connection refused by {TARGET}: nothing "
        "listens there"
    )
    assert doc["transport"]["cause"] == "refused"
    # The attempt went through the findings rules like a capture of it.
    assert [f["code"] for f in doc["findings"]] == ["connection-refused"]


def test_unanswered_connection(net: Net, tmp_path: Path) -> None:
    with raw_peer(net, tmp_path, "full"):
        run = probe(net, TARGET, "--called", "X", "--timeout", "2")
    assert run.returncode == 2
    _critical(run.first_line, f"no answer from {TARGET} within 2 s")
    assert run.seconds < 2 + STARTUP


def test_unresolvable_host(net: Net) -> None:
    run = probe(net, "no-such-host.invalid:104", "--called", "X", "--timeout", "2")
    assert run.returncode == 2
    assert "cannot resolve no-such-host.invalid" in run.first_line


@pytest.mark.parametrize(
    ("mode", "cause"),
    [
        ("garbage", "the peer answered with text that is not DICOM: 'Welcome to the billing"),
        ("http", "the peer answered in HTTP (HTTP/1.1 400 Bad Request): a web port, not DICOM"),
        ("tlsalert", "the peer answered with TLS: this port expects DICOM over TLS"),
        (
            "huge",
            "the peer sent a PDU header declaring 4294967295 bytes, more than the probe reads",
        ),
        ("silent", "no answer to the A-ASSOCIATE-RQ within 2 s"),
    ],
)
def test_misbehaving_peer(net: Net, tmp_path: Path, mode: str, cause: str) -> None:
    pcap = tmp_path / "probe.pcapng"
    with raw_peer(net, tmp_path, mode):
        run = probe(net, TARGET, "--called", "X", "--timeout", "2", "--pcap", str(pcap))
    assert run.returncode == 2
    _critical(run.first_line, cause)
    assert run.seconds < 2 + STARTUP
    assert pcap.stat().st_size > 0


def test_four_gigabyte_pdu_is_refused_with_an_abort(net: Net, tmp_path: Path) -> None:
    with raw_peer(net, tmp_path, "huge"):
        run = probe(net, TARGET, "--called", "X", "--timeout", "2", "--format", "json")
    doc = run.json()
    # The probe read the header, not the 4 GB, and said why it stopped: A-ABORT source 2
    # (service provider), reason 6 (invalid PDU parameter value).
    assert doc["association"]["pdus"]["requestor"]["count"] == 2  # the RQ and the A-ABORT
    assert doc["association"]["abort"]["source"] == 2
    assert doc["association"]["abort"]["reason"] == 6


def test_http_port_of_orthanc(net: Net, tmp_path: Path) -> None:
    http = 8042
    config = orthanc_config(tmp_path, 4242, http)
    with running(net, [tool("Orthanc"), str(config)], tmp_path / "orthanc.log", port=http):
        run = probe(net, f"127.0.0.1:{http}", "--called", "X", "--timeout", "3")
    assert run.returncode == 2
    assert run.first_line.startswith(
        f"DICOM CRITICAL - 127.0.0.1:{http} DICOMTAP->X: the peer answered in HTTP (HTTP/1."
    ), run.first_line
