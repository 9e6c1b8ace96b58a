"""Workflows across associations with real peers, captured during the test: the links and
the workflow findings against what the peers themselves reported (their logs, the files the
destination wrote, the reports the modality got)."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pydicom
import pytest

from analyzer.findings import Diagnosis
from analyzer.model import Association, Exchange, LinkHow, Outcome
from analyzer.pipeline import analyze_files
from analyzer.store import Store
from analyzer.workflows import (
    commitment_data,
    get_sub_operations,
    sub_associations,
    transaction_uid,
)

from ..live.harness import by_key, live
from ..objects import write_image, write_study
from ..peers import Net, Process, analyze, capture, dcmtk, orthanc_config, running, tool

pytestmark = pytest.mark.peers

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
HOST = "127.0.0.1"


def analyse(path: Path) -> Store:
    store = Store()
    analyze_files([path], store, rules=Diagnosis())
    return store


def _orthanc(net: Net, tmp_path: Path, port: int, **modalities: list[object]) -> list[str]:
    config = orthanc_config(
        tmp_path,
        port,
        net.port(8042),
        DicomModalities=modalities,
        DicomAssociationCloseDelay=0,
        SynchronousCMove=True,
        DicomScuTimeout=10,
    )
    return [tool("Orthanc"), str(config)]


def _move(net: Net, port: int, dest: str, study: str, log: Path) -> Process:
    argv = [dcmtk("movescu"), "-v", "-S", "-aet", "MOVESCU", "-aec", "ORTHANC", "-aem", dest]
    argv += ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}", HOST, str(port)]
    return Process(net, argv, log)


def _finish(proc: Process, timeout: float = 60) -> str:
    proc.popen.wait(timeout)
    return proc.output()


def _wait_for(log: Path, text: str, timeout: float = 60) -> None:
    """Until ``text`` is in ``log`` (a peer's log: what it did, whatever the machine's load)."""
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"no {text!r} in {log}"
        time.sleep(0.1)


def _moves(store: Store) -> dict[str, tuple[Association, Exchange]]:
    """C-MOVEs by (destination, study asked for)."""
    out = {}
    for a in store.associations():
        for e in store.exchanges(a.id):
            if e.service == "C-MOVE" and e.request is not None and e.request.dataset:
                study = e.request.dataset.decode().StudyInstanceUID
                out[f"{e.request.command.move_destination}/{study}"] = (a, e)
    return out


def test_orthanc_moves_and_get(net: Net, tmp_path: Path) -> None:
    study_a = write_study(tmp_path / "a", 3, patient_id="PA", study=1)
    study_b = write_study(tmp_path / "b", 2, patient_id="PB", study=2)
    other = write_image(tmp_path / "other.dcm", index=1, patient_id="PC", study=3)
    uid_a, uid_b = (pydicom.dcmread(s[0]).StudyInstanceUID for s in (study_a, study_b))
    recv, got = tmp_path / "recv", tmp_path / "got"
    recv.mkdir()
    got.mkdir()
    port, dest, rej, closed = net.port(4242), net.port(11113), net.port(11114), net.port(11119)
    orthanc = _orthanc(
        net,
        tmp_path,
        port,
        movescu=["MOVESCU", HOST, 104],
        getscu=["GETSCU", HOST, 104],
        loader=["LOADER", HOST, 104],
        dest=["DEST", HOST, dest],
        rejdest=["REJDEST", HOST, rej],
        downdest=["DOWNDEST", HOST, closed],
    )
    # the destination sleeps 1 s in each C-STORE so that the two C-MOVEs overlap
    storescp = [dcmtk("storescp"), "-aet", "DEST", "--fork", "--sleep-during", "1", "+uf"]
    storescp += ["-od", str(recv), str(dest)]
    strict = [sys.executable, str(SAMPLES / "peer_scp.py"), HOST, str(rej), "PYSCP"]
    with (
        running(net, orthanc, tmp_path / "orthanc.log", port),
        running(net, storescp, tmp_path / "storescp.log", dest),
        running(net, [*strict, "strict-called"], tmp_path / "strict.log", rej),
    ):
        load = net.run(
            [dcmtk("storescu"), "-aet", "LOADER", "-aec", "ORTHANC", HOST, str(port)]
            + [str(f) for f in (*study_a, *study_b)],
            timeout=120,
        )
        assert load.returncode == 0, load.stderr
        with capture(net, tmp_path / "moves.pcap") as pcap:
            first = _move(net, port, "DEST", uid_a, tmp_path / "move_a.log")
            time.sleep(0.3)
            second = _move(net, port, "DEST", uid_b, tmp_path / "move_b.log")
            unrelated = net.run(
                [dcmtk("storescu"), "-aet", "OTHERMOD", "-aec", "DEST", HOST, str(dest), str(other)]
            )
            logs = [_finish(first), _finish(second)]
            for name in ("UNKNOWNDEST", "DOWNDEST", "REJDEST"):
                _finish(_move(net, port, name, uid_a, tmp_path / f"move_{name}.log"))
            keys = ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={uid_a}"]
            getscu = [dcmtk("getscu"), "-v", "-S", "-aet", "GETSCU", "-aec", "ORTHANC"]
            get = net.run([*getscu, "-od", str(got), *keys, HOST, str(port)], timeout=120)
    assert unrelated.returncode == 0, unrelated.stderr
    assert all("Received Final Move Response (Success)" in log for log in logs), logs
    assert get.returncode == 0, get.stderr
    assert len(list(recv.iterdir())) == 3 + 2 + 1 and len(list(got.iterdir())) == 3

    store = analyse(pcap)
    moves = _moves(store)
    # each concurrent C-MOVE is tied, by the originator fields, to the association that
    # carried exactly the objects of the study it asked for
    for uid, files in ((uid_a, study_a), (uid_b, study_b)):
        _, move = moves[f"DEST/{uid}"]
        (link,) = sub_associations(store, move)
        assert link.how == LinkHow.ORIGINATOR_FIELDS
        sent = {e.sop_instance for e in store.exchanges(link.target_association)}
        assert sent == {pydicom.dcmread(f).SOPInstanceUID for f in files}
    (other_assoc,) = [a for a in store.associations() if a.calling_ae_title == "OTHERMOD"]
    assert not store.links(other_assoc.id)
    # the failures, each in its own words
    codes = {
        dest_name: {f.code for f in store.findings(moves[f"{dest_name}/{uid_a}"][0].id)}
        for dest_name in ("UNKNOWNDEST", "DOWNDEST", "REJDEST")
    }
    assert {"move-without-sub-association", "implementation-quirk"} <= codes["UNKNOWNDEST"]
    assert "move-destination-unreachable" in codes["DOWNDEST"]
    assert "move-sub-association-rejected" in codes["REJDEST"]
    (rejected,) = sub_associations(store, moves[f"REJDEST/{uid_a}"][1])
    sub = store.association(rejected.target_association)
    assert sub is not None and sub.outcome == Outcome.REJECTED
    assert not sub_associations(store, moves[f"UNKNOWNDEST/{uid_a}"][1])
    # the C-GET's sub-operations, counted against what getscu wrote
    (get_assoc,) = [a for a in store.associations() if a.calling_ae_title == "GETSCU"]
    (c_get,) = [e for e in store.exchanges(get_assoc.id) if e.service == "C-GET"]
    assert len(get_sub_operations(store, c_get)) == len(list(got.iterdir()))
    assert not [f for f in store.findings() if f.code == "suboperation-count-mismatch"]


_SENT = re.compile(r"N-ACTION \(Transaction UID (\S+)\)")
_REPORT = re.compile(
    r"event type (\d) on (the same|a reverse) association.*?(\d+) committed, (\d+)"
)


def test_storage_commitment(net: Net, tmp_path: Path) -> None:
    images = write_study(tmp_path / "in", 2, patient_id="PS", study=4)
    unknown = "1.2.840.10008.5.1.4.1.1.2/1.2.826.0.1.3680043.8.498.4242"
    port, listen, pyport = net.port(4242), net.port(11120), net.port(11121)
    orthanc = _orthanc(
        net,
        tmp_path,
        port,
        modality=["MODALITY", HOST, listen],
        loader=["LOADER", HOST, 104],
    )
    commit = [sys.executable, str(SAMPLES / "peer_commit.py")]
    runs: dict[str, str] = {}
    with (
        running(net, orthanc, tmp_path / "orthanc.log", port),
        running(net, [*commit, "scp", HOST, str(pyport), "same"], tmp_path / "same.log", pyport),
    ):
        load = net.run(
            [dcmtk("storescu"), "-aet", "LOADER", "-aec", "ORTHANC", HOST, str(port)]
            + [str(f) for f in images],
            timeout=120,
        )
        assert load.returncode == 0, load.stderr
        with capture(net, tmp_path / "commit.pcap") as pcap:

            def scu(name: str, target: int, called: str, *args: str) -> None:
                out = net.run(
                    [*commit, "scu", HOST, str(target), called, str(listen), *args], timeout=120
                )
                runs[name] = out.stdout

            scu("reverse", port, "ORTHANC", *map(str, images))
            scu("failed", port, "ORTHANC", str(images[0]), unknown)
            scu("rejected", port, "ORTHANC", "--reject-calling", "--wait", "30", str(images[0]))
            scu("refused", port, "ORTHANC", "--no-listen", "--wait", "0", str(images[0]))
            _wait_for(tmp_path / "orthanc.log", "Connection refused")
            scu("same", pyport, "PYARCHIVE", "--same", "--no-listen", str(images[0]))
    store = analyse(pcap)
    actions = {
        transaction_uid(e): (a, e)
        for a in store.associations()
        for e in store.exchanges(a.id)
        if e.service == "N-ACTION"
    }
    records = {r.get("id"): r for r in analyze([pcap]) if r["type"] == "association"}
    for name, out in runs.items():
        sent = _SENT.search(out)
        assert sent, out
        a, _ = actions[sent.group(1)]
        reports = [x for x in store.links(a.id) if x.target_exchange is not None]
        attempts = [x for x in store.links(a.id) if x.target_exchange is None]
        codes = {f.code for f in store.findings(a.id)}
        told = _REPORT.search(out)  # what the modality itself received
        if name in ("reverse", "failed", "same"):
            assert told is not None, out
            (link,) = reports
            same = link.target_association == a.id
            assert same == (told.group(2) == "the same") == (name == "same")
            report = next(
                e
                for e in store.exchanges(link.target_association)
                if e.index == link.target_exchange
            )
            data = commitment_data(report)
            assert data is not None and data.transaction_uid == sent.group(1)
            assert (data.references, len(data.failed)) == (int(told.group(3)), int(told.group(4)))
            assert ("commitment-failed-references" in codes) == (name == "failed")
            if not same:
                assert records[link.target_association]["initiated_by"]["kind"] == "commitment"
        else:
            assert told is None and not reports, out
            (attempt,) = attempts
            reverse = store.association(attempt.target_association)
            assert reverse is not None
            assert reverse.outcome == (
                Outcome.REJECTED if name == "rejected" else Outcome.NEVER_ASSOCIATED
            )
            assert "commitment-reverse-association-failed" in codes
        assert "role-not-negotiated" not in codes


def test_live_capture_streams_the_links(net: Net, tmp_path: Path) -> None:
    study = write_study(tmp_path / "a", 2, patient_id="PL", study=5)
    uid = pydicom.dcmread(study[0]).StudyInstanceUID
    recv = tmp_path / "recv"
    recv.mkdir()
    port, dest = net.port(4242), net.port(11113)
    orthanc = _orthanc(
        net,
        tmp_path,
        port,
        movescu=["MOVESCU", HOST, 104],
        loader=["LOADER", HOST, 104],
        dest=["DEST", HOST, dest],
    )
    cap = tmp_path / "live.pcapng"
    with (
        running(net, orthanc, tmp_path / "orthanc.log", port),
        running(
            net,
            [dcmtk("storescp"), "-aet", "DEST", "-od", str(recv), str(dest)],
            tmp_path / "storescp.log",
            dest,
        ),
    ):
        load = net.run(
            [dcmtk("storescu"), "-aet", "LOADER", "-aec", "ORTHANC", HOST, str(port)]
            + [str(f) for f in study],
            timeout=120,
        )
        assert load.returncode == 0, load.stderr
        with live(net, "-i", "lo", "--format", "json", "-w", str(cap)) as proc:
            log = _finish(_move(net, port, "DEST", uid, tmp_path / "move.log"))
            proc.wait_count(r'"type":"link"', 1)
            proc.interrupt()
    assert "Received Final Move Response (Success)" in log
    streamed = [r for r in proc.json_records() if r["type"] == "link"]
    from_file = [r for r in analyze([cap]) if r["type"] == "link"]
    assert streamed == from_file and len(streamed) == 1
    assert streamed[0]["how"] == "originator-fields"
    # the association records, once ended, say the same in the stream and in the file
    live_assocs = {k: v for k, v in by_key(proc.json_records()).items() if k[0] == "association"}
    file_assocs = {k: v for k, v in by_key(analyze([cap])).items() if k[0] == "association"}
    assert live_assocs.keys() == file_assocs.keys()
