"""A capture taken with a small snap length (``tcpdump -s 256``) of real DCMTK peers: the
associations, AE titles, commands and statuses come out where their bytes were captured,
what was cut is a capture gap, and nothing is a violation."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer.findings import Diagnosis
from analyzer.model import Outcome
from analyzer.pipeline import analyze_files
from analyzer.store import Store

from ..objects import write_study
from ..peers import Net, capture, dcmtk, running

pytestmark = pytest.mark.peers


def test_storescu_to_storescp_captured_with_snap_length_256(net: Net, tmp_path: Path) -> None:
    files = write_study(tmp_path / "in", 3, size=256)
    received = tmp_path / "received"
    received.mkdir()
    port = net.port(11112)
    scp = [dcmtk("storescp"), "-aet", "ARCHIVE", "-od", str(received), str(port)]
    with (
        running(net, scp, tmp_path / "storescp.log", port),
        capture(net, tmp_path / "snap.pcap", f"tcp port {port}", snaplen=256) as pcap,
    ):
        echo = net.run(
            [dcmtk("echoscu"), "-aet", "MODALITY", "-aec", "ARCHIVE", "127.0.0.1", str(port)]
        )
        store = net.run(
            [
                dcmtk("storescu"),
                *("-v", "-aet", "MODALITY", "-aec", "ARCHIVE", "127.0.0.1", str(port)),
                *map(str, files),
            ]
        )
    assert echo.returncode == 0, echo.stderr
    assert store.returncode == 0, store.stderr
    successes = (store.stdout + store.stderr).count("Received Store Response (Success)")
    assert successes == len(files)

    model = Store()
    analyze_files([pcap], model, rules=Diagnosis())
    associations = sorted(model.associations(), key=lambda a: a.start_ts)
    assert [(a.calling_ae_title, a.called_ae_title, a.outcome) for a in associations] == [
        ("MODALITY", "ARCHIVE", Outcome.RELEASED),
        ("MODALITY", "ARCHIVE", Outcome.RELEASED),
    ]
    echo_assoc, store_assoc = associations
    assert [(e.service, e.status) for e in model.exchanges(echo_assoc.id)] == [("C-ECHO", 0)]
    assert [(e.service, e.status) for e in model.exchanges(store_assoc.id)] == [
        ("C-STORE", 0)
    ] * successes
    for a in associations:
        assert model.violations(a.id) == []
        assert a.application_context == "1.2.840.10008.3.1.1.1"
        # storescu proposes many contexts: its A-ASSOCIATE-RQ is longer than 190 bytes of
        # TCP payload, so the capture cut it, and says so.
        assert a.rq_missing > 0
        assert model.gaps(a.id)
        assert {f.code for f in model.findings(a.id)} <= {"capture-gap"}
