"""Live interop: real peers on loopback, captured with tcpdump during the test, analysed, and
compared with what the peers themselves reported (statuses, counts, files written)."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path

import pydicom
import pytest

from analyzer.findings import Diagnosis
from analyzer.model import Outcome, Severity
from analyzer.pipeline import analyze_files
from analyzer.store import Store

from ..objects import write_image, write_study
from ..peers import Net, capture, dcmtk, orthanc_config, running, tool

pytestmark = pytest.mark.peers


def analyse(path: Path) -> Store:
    store = Store()
    analyze_files([path], store, rules=Diagnosis())
    return store


def test_dcmtk_store_and_echo(tmp_path: Path) -> None:
    files = write_study(tmp_path / "in", 4)
    files.append(write_image(tmp_path / "in" / "big.dcm", index=9, size=400))  # ~320 KB, many PDUs
    received = tmp_path / "received"
    received.mkdir()
    with Net() as net:
        port = net.port(11112)
        scp = [dcmtk("storescp"), "-aet", "ARCHIVE", "-od", str(received), str(port)]
        with (
            running(net, scp, tmp_path / "storescp.log", port),
            capture(net, tmp_path / "live.pcap", f"tcp port {port}") as pcap,
        ):
            echo = net.run([dcmtk("echoscu"), "-v", "-aec", "ARCHIVE", "127.0.0.1", str(port)])
            store = net.run(
                [
                    dcmtk("storescu"),
                    "-v",
                    "-aet",
                    "MODALITY",
                    "-aec",
                    "ARCHIVE",
                    "127.0.0.1",
                    str(port),
                    *map(str, files),
                ]
            )
    assert echo.returncode == 0, echo.stderr
    assert store.returncode == 0, store.stderr
    peer_successes = (store.stdout + store.stderr).count("Received Store Response (Success)")
    assert peer_successes == len(files)
    written = {pydicom.dcmread(p).SOPInstanceUID for p in received.iterdir()}
    assert len(written) == len(files)

    model = analyse(pcap)
    associations = sorted(model.associations(), key=lambda a: a.start_ts)
    assert [(a.calling_ae_title, a.called_ae_title, a.outcome) for a in associations] == [
        ("ECHOSCU", "ARCHIVE", Outcome.RELEASED),
        ("MODALITY", "ARCHIVE", Outcome.RELEASED),
    ]
    (echo_exchange,) = model.exchanges(associations[0].id)
    assert (echo_exchange.service, echo_exchange.status) == ("C-ECHO", 0)
    stores = model.exchanges(associations[1].id)
    assert len(stores) == peer_successes
    assert all(e.service == "C-STORE" and e.status == 0 for e in stores)
    assert {e.sop_instance for e in stores} == written
    big = max(stores, key=lambda e: e.request_dataset_bytes)
    assert big.request_dataset_bytes > 300_000
    assert [f for f in model.findings() if f.severity >= Severity.WARNING] == []


def _orthanc(net: Net, tmp_path: Path, port: int, dest_port: int) -> list[str]:
    http = net.port(8042)
    config = orthanc_config(
        tmp_path,
        port,
        http,
        DicomModalities={
            "findscu": ["FINDSCU", "127.0.0.1", 104],
            "movescu": ["MOVESCU", "127.0.0.1", 104],
            "dest": ["DEST", "127.0.0.1", dest_port],
            "loader": ["LOADER", "127.0.0.1", 104],
        },
        DicomAssociationCloseDelay=0,
    )
    return [tool("Orthanc"), str(config)]


def _responses(output: str, kind: str) -> list[str]:
    """The statuses in DCMTK's -v lines, in order: ``Find Response: 3 (Pending)``,
    ``Received Move Response 1 (Pending)``, ``Received Final Find Response (Success)``."""
    return re.findall(rf"{kind} Response:? (?:\d+ )?\(([^)]+)\)", output)


def test_orthanc_find_and_move(tmp_path: Path) -> None:
    studies = [
        write_study(tmp_path / f"study{i}", 2, patient_id=f"PID{i}", study=i) for i in (1, 2, 3)
    ]
    received = tmp_path / "dest"
    received.mkdir()
    with Net() as net:
        port, dest_port = net.port(4242), net.port(11113)
        orthanc = _orthanc(net, tmp_path, port, dest_port)
        dest = [dcmtk("storescp"), "-aet", "DEST", "-od", str(received), str(dest_port)]
        with (
            running(net, orthanc, tmp_path / "orthanc.log", port),
            running(net, dest, tmp_path / "dest.log", dest_port),
        ):
            load = net.run(
                [
                    dcmtk("storescu"),
                    "-aet",
                    "LOADER",
                    "-aec",
                    "ORTHANC",
                    "127.0.0.1",
                    str(port),
                    *map(str, [f for s in studies for f in s]),
                ],
                timeout=120,
            )
            assert load.returncode == 0, load.stderr
            with capture(
                net, tmp_path / "qr.pcap", f"tcp port {port} or tcp port {dest_port}"
            ) as pcap:
                find = net.run(
                    [
                        dcmtk("findscu"),
                        "-v",
                        "-S",
                        "-aet",
                        "FINDSCU",
                        "-aec",
                        "ORTHANC",
                        "-k",
                        "QueryRetrieveLevel=STUDY",
                        "-k",
                        "PatientID=PID*",
                        "-k",
                        "StudyInstanceUID",
                        "127.0.0.1",
                        str(port),
                    ]
                )
                study_uid = pydicom.dcmread(studies[1][0]).StudyInstanceUID
                move = net.run(
                    [
                        dcmtk("movescu"),
                        "-v",
                        "-S",
                        "-aet",
                        "MOVESCU",
                        "-aec",
                        "ORTHANC",
                        "-aem",
                        "DEST",
                        "-k",
                        "QueryRetrieveLevel=STUDY",
                        "-k",
                        f"StudyInstanceUID={study_uid}",
                        "127.0.0.1",
                        str(port),
                    ],
                    timeout=120,
                )
    assert find.returncode == 0, find.stderr
    assert move.returncode == 0, move.stderr
    find_rsp = _responses(find.stdout + find.stderr, "Find")
    move_rsp = _responses(move.stdout + move.stderr, "Move")
    assert find_rsp.count("Pending") == 3 and find_rsp[-1] == "Success"
    assert move_rsp[-1] == "Success"

    model = analyse(pcap)
    exchanges = {
        e.service: e
        for a in model.associations()
        for e in model.exchanges(a.id)
        if e.service != "C-STORE"
    }
    assert exchanges["C-FIND"].pending == find_rsp.count("Pending")
    assert exchanges["C-FIND"].status == 0
    move_ex = exchanges["C-MOVE"]
    assert move_ex.pending == move_rsp.count("Pending")
    assert (
        move_ex.suboperations is not None
        and move_ex.suboperations[1] == len(list(received.iterdir())) == 2
    )
    subs = [a for a in model.associations() if a.called_ae_title == "DEST"]
    assert len(subs) == 1
    stores = model.exchanges(subs[0].id)
    assert len(stores) == 2 and all(e.status == 0 for e in stores)
    assert {e.request.command.move_originator_ae for e in stores if e.request} == {"MOVESCU"}


PYNETDICOM_SCP = textwrap.dedent(
    """
    import sys
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import CTImageStorage, Verification
    codes = iter([0x0000, 0xB000, 0xA700])
    def on_store(event):
        return next(codes, 0x0000)
    ae = AE(ae_title="PYSCP")
    ae.add_supported_context(CTImageStorage)
    ae.add_supported_context(Verification)
    ae.start_server(("127.0.0.1", int(sys.argv[1])), evt_handlers=[(evt.EVT_C_STORE, on_store)])
    """
)

PYNETDICOM_SCU = textwrap.dedent(
    """
    import json, sys
    from pydicom import dcmread
    from pynetdicom import AE
    from pynetdicom.sop_class import CTImageStorage, Verification
    ae = AE(ae_title="PYSCU")
    ae.add_requested_context(CTImageStorage)
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", int(sys.argv[1]), ae_title="PYSCP")
    statuses = [assoc.send_c_echo().Status]
    for path in sys.argv[2:]:
        statuses.append(assoc.send_c_store(dcmread(path)).Status)
    assoc.release()
    print(json.dumps(statuses))
    """
)


def test_pynetdicom_pair(tmp_path: Path) -> None:
    files = write_study(tmp_path / "in", 3)
    (tmp_path / "scp.py").write_text(PYNETDICOM_SCP)
    (tmp_path / "scu.py").write_text(PYNETDICOM_SCU)
    with Net() as net:
        port = net.port(11114)
        with (
            running(
                net,
                [sys.executable, str(tmp_path / "scp.py"), str(port)],
                tmp_path / "scp.log",
                port,
            ),
            capture(net, tmp_path / "py.pcap", f"tcp port {port}") as pcap,
        ):
            scu = net.run([sys.executable, str(tmp_path / "scu.py"), str(port), *map(str, files)])
    assert scu.returncode == 0, scu.stderr
    reported = json.loads(scu.stdout.strip().splitlines()[-1])
    assert reported == [0x0000, 0x0000, 0xB000, 0xA700]
    model = analyse(pcap)
    (a,) = model.associations()
    assert (a.calling_ae_title, a.called_ae_title, a.outcome) == (
        "PYSCU",
        "PYSCP",
        Outcome.RELEASED,
    )
    assert [e.status for e in model.exchanges(a.id)] == reported
    codes = {f.code for f in model.findings(a.id)}
    assert {"dimse-warning-status", "dimse-failure-status"} <= codes
