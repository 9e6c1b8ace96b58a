"""Other real peers through the proxy: Orthanc as the upstream for C-FIND, C-MOVE and C-GET
(DCMTK's findscu, movescu, getscu), and pynetdicom on both sides."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread

from tests.objects import write_study
from tests.peers import Net, analyze, dcmtk, orthanc_config, running, tool

from .harness import PROXY_PORT, UPSTREAM_PORT, leg_records, proxy, script

pytestmark = pytest.mark.peers

MOVE_PORT = 11130


def test_orthanc_find_move_get(net: Net, tmp_path: Path) -> None:
    files = write_study(tmp_path / "study", 3, patient_id="PXFIND", study=7)
    config = orthanc_config(
        tmp_path,
        UPSTREAM_PORT,
        8042,
        aet="ORTHANC",
        DicomModalities={
            "MOVESCP": ["MOVESCP", "127.0.0.1", MOVE_PORT],
            "QR": ["QR", "127.0.0.1", 4999],
        },
        DicomAlwaysAllowFind=True,
        DicomAlwaysAllowGet=True,
        DicomAlwaysAllowMove=True,
    )
    (tmp_path / "moved").mkdir()
    (tmp_path / "got").mkdir()
    base = ["-aet", "QR", "-aec", "ORTHANC", "127.0.0.1", str(PROXY_PORT)]
    study_uid = dcmread(files[0]).StudyInstanceUID
    find_keys = [
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        "PatientID=PXFIND",
        "-k",
        "StudyInstanceUID",
    ]
    keys = ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study_uid}"]
    with (
        running(net, [tool("Orthanc"), str(config)], tmp_path / "orthanc.log", port=UPSTREAM_PORT),
        running(
            net,
            [dcmtk("storescp"), "-aet", "MOVESCP", "-od", str(tmp_path / "moved"), str(MOVE_PORT)],
            tmp_path / "movescp.log",
            port=MOVE_PORT,
        ),
        proxy(net, tmp_path, "--upstream", f"127.0.0.1:{UPSTREAM_PORT}") as px,
    ):
        stored = net.run([dcmtk("storescu"), *base, *map(str, files)])
        assert stored.returncode == 0, stored.stderr
        found = net.run([dcmtk("findscu"), "-v", "-S", *base, *find_keys])
        assert found.returncode == 0, found.stderr
        assert study_uid in found.stdout + found.stderr
        moved = net.run([dcmtk("movescu"), "-S", "-aem", "MOVESCP", *base, *keys])
        assert moved.returncode == 0, moved.stderr
        got = net.run([dcmtk("getscu"), "-S", "-od", str(tmp_path / "got"), *base, *keys])
        assert got.returncode == 0, got.stderr
        px.wait_log(r"#4 released after")
        assert px.stop() == 0
    assert len(list((tmp_path / "moved").iterdir())) == 3
    assert len(list((tmp_path / "got").iterdir())) == 3
    recs = px.records()
    exchanges = [r for r in recs if r["type"] == "exchange"]
    commands = [e["command"] for e in exchanges]
    assert commands[:3] == ["C-STORE"] * 3
    find = next(e for e in exchanges if e["command"] == "C-FIND")
    assert find["status"] == 0 and find["pending"] == 1
    move = next(e for e in exchanges if e["command"] == "C-MOVE")
    assert move["status"] == 0 and move["move_destination"] == "MOVESCP"
    assert move["suboperations"]["completed"] == 3
    get = next(e for e in exchanges if e["command"] == "C-GET")
    assert get["status"] == 0 and get["suboperations"]["completed"] == 3
    # C-GET's C-STOREs run on the same association, from the acceptor.
    assert sum(1 for e in exchanges if e["command"] == "C-STORE" and e["from"] == "acceptor") == 3
    assert {r["outcome"] for r in recs if r["type"] == "association"} == {"released"}
    assert leg_records(analyze([px.pcap]), PROXY_PORT) == leg_records(recs)


def test_pynetdicom_scu_and_scp(net: Net, tmp_path: Path) -> None:
    seen = tmp_path / "scp-seen.txt"
    files = write_study(tmp_path / "study", 2, patient_id="PNDICOM")
    with (
        running(
            net,
            script("pynetdicom_scp.py", str(UPSTREAM_PORT), str(seen)),
            tmp_path / "pyscp.log",
            port=UPSTREAM_PORT,
        ),
        proxy(net, tmp_path, "--upstream", f"127.0.0.1:{UPSTREAM_PORT}") as px,
    ):
        result = net.run(
            script("pynetdicom_scu.py", "127.0.0.1", str(PROXY_PORT), *map(str, files))
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.split() == ["echo", "0x0000", "store", "0x0000", "store", "0x0000"]
        px.wait_log(r"#1 released after .*: 3 exchanges")
        assert px.stop() == 0
    lines = seen.read_text().splitlines()
    assert lines[0] == "assoc PYSCU PYSCP"
    sent = sorted(dcmread(f).SOPInstanceUID for f in files)
    assert sorted(line.split()[1] for line in lines if line.startswith("store")) == sent
    recs = px.records()
    (a,) = [r for r in recs if r["type"] == "association"]
    assert (a["calling_ae"], a["called_ae"], a["outcome"]) == ("PYSCU", "PYSCP", "released")
    assert a["implementation"]["requestor"]["class_uid"].startswith("1.2.826.0.1.3680043.9.3811")
    assert [e["command"] for e in recs if e["type"] == "exchange"] == [
        "C-ECHO",
        "C-STORE",
        "C-STORE",
    ]
    assert leg_records(analyze([px.pcap]), PROXY_PORT) == leg_records(recs)


def test_run_wide_finding_made_once_at_shutdown(net: Net, tmp_path: Path) -> None:
    """A finding about the run as a whole (a C-MOVE whose destination never got a
    sub-association) is made once, when the proxy stops, however many connections without
    DICOM come and go before."""
    files = write_study(tmp_path / "study", 1, patient_id="PXDOWN", study=8)
    config = orthanc_config(
        tmp_path,
        UPSTREAM_PORT,
        8042,
        aet="ORTHANC",
        DicomModalities={"DOWNSCP": ["DOWNSCP", "127.0.0.1", MOVE_PORT]},  # nobody listens
        DicomAlwaysAllowMove=True,
    )
    base = ["-aet", "QR", "-aec", "ORTHANC", "127.0.0.1", str(PROXY_PORT)]
    keys = [
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={dcmread(files[0]).StudyInstanceUID}",
    ]
    probe = tmp_path / "probe.bin"
    probe.write_bytes(b"GET / HTTP/1.0\r\n\r\n")
    with (
        running(net, [tool("Orthanc"), str(config)], tmp_path / "orthanc.log", port=UPSTREAM_PORT),
        proxy(net, tmp_path, "--upstream", f"127.0.0.1:{UPSTREAM_PORT}") as px,
    ):
        stored = net.run([dcmtk("storescu"), *base, str(files[0])])
        assert stored.returncode == 0, stored.stderr
        net.run([dcmtk("movescu"), "-S", "-aem", "DOWNSCP", *base, *keys])
        for _ in range(2):  # Orthanc closes or resets: either way, no DICOM
            net.run(script("rawclient.py", "garbage", "127.0.0.1", str(PROXY_PORT), str(probe)))
        px.wait_log(r"#4 .*no A-ASSOCIATE-RQ was sent")
        assert px.stop() == 0
    recs = px.records()
    move = next(r for r in recs if r["type"] == "exchange" and r["command"] == "C-MOVE")
    assert move["status"] != 0
    codes = [r["code"] for r in recs if r["type"] == "finding"]
    assert codes.count("move-without-sub-association") == 1, codes
