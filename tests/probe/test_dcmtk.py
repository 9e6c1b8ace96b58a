"""The probe against DCMTK's storescp: all storage, and limited by a configuration file
(the scan's matrix must be that configuration), baselines and their drift, OpenMetrics, and
the probe's pcapng read back by ``dicomtap analyze`` and tshark."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.peers import Net, analyze, dicomtap_argv, tool

from .harness import (
    CT,
    EXPLICIT,
    IMPLICIT,
    LIMITED_STORAGE,
    SCP_PORT,
    VERIFICATION,
    limited_config,
    metric_families,
    probe,
    storescp,
)

pytestmark = pytest.mark.peers

TARGET = f"127.0.0.1:{SCP_PORT}"


def test_healthy_storescp_ok_with_matrix_and_acceptor_info(net: Net, tmp_path: Path) -> None:
    with storescp(net, tmp_path):
        run = probe(
            net,
            TARGET,
            "--called",
            "STORESCP",
            "--context",
            "CTImageStorage=ExplicitVRLittleEndian,JPEG2000Lossless",
            "--contexts",
            "verification",
            "--format",
            "json",
        )
    assert run.returncode == 0, run.stdout
    doc = run.json()
    assert doc["status"] == "OK" and doc["exit_status"] == 0
    assert doc["summary"].startswith(
        f"DICOM OK - {TARGET} DICOMTAP->STORESCP: association accepted"
    )
    contexts = doc["association"]["contexts"]
    ct = next(c for c in contexts if c["abstract_syntax"] == CT)
    assert ct["transfer_syntaxes"] == [EXPLICIT, "1.2.840.10008.1.2.4.90"]
    assert ct["result"] == 0 and ct["result_meaning"] == "acceptance"
    assert ct["accepted_transfer_syntax"] in ct["transfer_syntaxes"]
    acceptor = doc["association"]["implementation"]["acceptor"]
    assert acceptor["version_name"].startswith("OFFIS_DCMTK")
    assert doc["association"]["max_pdu"]["acceptor"] > 0
    (echo,) = doc["services"]
    assert echo["service"] == "C-ECHO" and echo["status"] == 0 and echo["latency_ms"] > 0
    assert doc["timing_ms"]["connect"] > 0 and doc["timing_ms"]["association"] > 0
    assert doc["association"]["outcome"] == "released"


def test_text_output_starts_with_the_plugin_line(net: Net, tmp_path: Path) -> None:
    with storescp(net, tmp_path):
        run = probe(net, TARGET, "--called", "STORESCP", "--warn", "5", "--crit", "10")
    assert run.returncode == 0
    head, perf = run.first_line.split(" | ")
    assert head.startswith(f"DICOM OK - {TARGET} DICOMTAP->STORESCP: association accepted (1/1")
    assert "C-ECHO Success" in head
    labels = dict(item.split("=", 1) for item in perf.split())
    assert labels["c_echo"].endswith("s;5;10;0")
    assert "Presentation contexts:" in run.stdout and "OFFIS_DCMTK" in run.stdout


def test_scan_of_limited_storescp_equals_its_configuration(net: Net, tmp_path: Path) -> None:
    with storescp(net, tmp_path, *limited_config(tmp_path)):
        run = probe(net, TARGET, "--called", "STORESCP", "--scan", "all", "--format", "json")
    assert run.returncode == 0, run.stdout
    scan = run.json()["scan"]
    assert scan["unanswered_associations"] == 0
    # Every SOP class pynetdicom knows, storage with 8 syntaxes, others with 4: batches of 128.
    assert scan["associations"] == -(-scan["contexts"] // 128) and scan["contexts"] > 1500
    assert scan["accepted"] == {**LIMITED_STORAGE, VERIFICATION: [IMPLICIT]}


def test_storage_scan_of_full_storescp(net: Net, tmp_path: Path) -> None:
    with storescp(net, tmp_path):
        run = probe(net, TARGET, "--called", "STORESCP", "--scan", "storage", "--format", "json")
    assert run.returncode == 0
    scan = run.json()["scan"]
    assert scan["contexts"] == 170 * 8 and scan["associations"] == 11
    accepted = scan["accepted"]
    assert len(accepted) > 100  # storescp knows most storage SOP classes
    assert accepted[CT][:2] == [IMPLICIT, EXPLICIT]


def test_baseline_drift_lost_is_critical_gained_is_reported(net: Net, tmp_path: Path) -> None:
    full, limited = tmp_path / "full.json", tmp_path / "limited.json"
    syntaxes = ["--scan-syntax", "ImplicitVRLittleEndian", "--scan-syntax", "1.2.840.10008.1.2.1"]
    with storescp(net, tmp_path):
        saved = probe(
            net,
            TARGET,
            "--called",
            "X",
            "--scan",
            "storage",
            *syntaxes,
            "--save-baseline",
            str(full),
        )
    assert saved.returncode == 0
    baseline = json.loads(full.read_text())
    assert baseline["schema"] == "dicomtap-probe-baseline/1"
    assert baseline["accepted"][CT] == [IMPLICIT, EXPLICIT]
    with storescp(net, tmp_path, *limited_config(tmp_path)):
        lost = probe(
            net,
            TARGET,
            "--called",
            "X",
            "--scan",
            "storage",
            *syntaxes,
            "--baseline",
            str(full),
            "--save-baseline",
            str(limited),
            "--format",
            "json",
        )
    assert lost.returncode == 2, lost.stdout
    doc = lost.json()
    assert doc["status"] == "CRITICAL"
    assert "accepted in the baseline no longer accepted" in doc["summary"]
    lost_pairs = {tuple(p) for p in doc["baseline"]["lost"]}
    assert (CT, IMPLICIT) not in lost_pairs and (CT, EXPLICIT) not in lost_pairs
    assert ("1.2.840.10008.5.1.4.1.1.1", IMPLICIT) in lost_pairs  # CR, gone
    assert doc["baseline"]["gained"] == []
    # Against the limited baseline, the full SCP only gains: OK, and the gains are listed.
    with storescp(net, tmp_path):
        gained = probe(
            net, TARGET, "--called", "X", "--scan", "storage", *syntaxes, "--baseline", str(limited)
        )
    assert gained.returncode == 0, gained.stdout
    assert "accepted since the baseline" in gained.first_line
    assert "  + Computed Radiography Image Storage  Implicit VR Little Endian" in gained.stdout


def test_openmetrics_exposition_parses(net: Net, tmp_path: Path) -> None:
    with storescp(net, tmp_path, *limited_config(tmp_path)):
        run = probe(
            net,
            TARGET,
            "--called",
            'ODD"AE',
            "--context",
            "MRImageStorage",
            "--context",
            "CTImageStorage",
            "--context",
            "1.2.840.10008.5.1.4.1.1.481.1",  # RT Image: not configured
            "--format",
            "openmetrics",
        )
    assert run.returncode == 1, run.stdout  # a requested context was rejected
    families = metric_families(run.stdout)
    status = families["dicomtap_probe_status"].samples[0]
    assert status.value == 1 and status.labels == {"target": TARGET, "called_ae": 'ODD"AE'}
    assert families["dicomtap_probe_up"].samples[0].value == 1
    steps = {s.labels["step"]: s.value for s in families["dicomtap_probe_duration_seconds"].samples}
    assert set(steps) == {"connect", "association", "total"} and 0 < steps["connect"] < 5
    accepted = {
        s.labels["name"]: s.value for s in families["dicomtap_probe_context_accepted"].samples
    }
    assert accepted == {
        "MR Image Storage": 1,
        "CT Image Storage": 1,
        "RT Image Storage": 0,
        "Verification SOP Class": 1,
    }
    (peer,) = families["dicomtap_probe_peer"].samples
    assert peer.name == "dicomtap_probe_peer_info"
    assert peer.labels["implementation_version_name"].startswith("OFFIS_DCMTK")
    (echo,) = families["dicomtap_probe_service_status"].samples
    assert echo.labels["service"] == "C-ECHO" and echo.value == 0


def test_pcap_is_what_analyze_and_tshark_read(net: Net, tmp_path: Path) -> None:
    pcap = tmp_path / "probe.pcapng"
    with storescp(net, tmp_path):
        run = probe(
            net,
            TARGET,
            "--called",
            "STORESCP",
            "--store-test",
            "--pcap",
            str(pcap),
            "--format",
            "json",
        )
    assert run.returncode == 0, run.stdout
    doc = run.json()
    records = analyze([pcap])
    (association,) = [r for r in records if r["type"] == "association"]
    # The probe's own records are those of `analyze` on its pcapng: the same observer.
    assert association == doc["association"]
    exchanges = [r for r in records if r["type"] == "exchange"]
    assert exchanges == doc["exchanges"]
    assert [e["command"] for e in exchanges] == ["C-ECHO", "C-STORE"]
    tshark = subprocess.run(
        [tool("tshark"), "-r", str(pcap), "-d", f"tcp.port=={SCP_PORT},dicom", "-Y", "dicom"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "A-ASSOCIATE request DICOMTAP --> STORESCP" in tshark.stdout, tshark.stdout
    assert "C-STORE-RSP" in tshark.stdout and "A-RELEASE response" in tshark.stdout
    assert pcap.stat().st_mode & 0o077 == 0  # captures are the owner's only


def test_watch_prints_only_changes(net: Net, tmp_path: Path) -> None:
    argv = net.wrap(dicomtap_argv("probe", TARGET, "--called", "X", "--watch", "1", "--count", "4"))
    with storescp(net, tmp_path) as scp:
        watcher = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert watcher.stdout is not None
        first = watcher.stdout.readline()
        assert first.startswith(f"DICOM OK - {TARGET}"), first
        scp.stop()  # the SCP goes away while the probe watches
        out, _ = watcher.communicate(timeout=60)
    assert watcher.returncode == 2
    changes = [line for line in out.splitlines() if "DICOM CRITICAL" in line]
    assert len(changes) == 1, out  # printed once, when it changed, not at every probe
    assert "connection refused" in changes[0]
    assert "  ~ status: OK -> CRITICAL" in out
    assert "  + CRITICAL: connection refused by" in out
