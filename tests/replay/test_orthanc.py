"""The replay against Orthanc configured as when the samples were captured (same modalities,
same objects): C-FIND, C-GET (its C-STORE sub-operations answered on the association),
C-MOVE (to a storescp), rejections and failures, all as captured; the same C-FIND to an
Orthanc that holds nothing yet is a difference."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.peers import Net, Process, dcmtk, running, tool

from .harness import HOST, SAMPLES, Run, make_objects, replay

pytestmark = pytest.mark.peers

ORTHANC = 4242
STRICT = 4243
MOVE_DESTINATION = 11113
CLOSED = 11119  # nothing listens: the destination that is down


def config(tmp: Path, port: int, **extra: object) -> Path:
    """The samples' Orthanc configuration (samples/make_samples.sh, start_orthanc)."""
    storage = tmp / f"orthanc-{port}"
    storage.mkdir()
    doc = {
        "Name": "dicomtap-replay",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "Plugins": [],
        "HttpServerEnabled": False,
        "DicomServerEnabled": True,
        "DicomAet": "ORTHANC",
        "DicomPort": port,
        "DicomCheckCalledAet": True,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomCheckModalityHost": False,
        "DicomModalities": {
            "STORESCP": ["STORESCP", HOST, MOVE_DESTINATION],
            "FINDSCU": ["FINDSCU", HOST, 11190],
            "MOVESCU": ["MOVESCU", HOST, 11191],
            "GETSCU": ["GETSCU", HOST, 11192],
            "PYSCU": ["PYSCU", HOST, 11193],
            "DOWNDEST": ["DOWNDEST", HOST, CLOSED],
        },
        "SynchronousCMove": True,
        "DicomAssociationCloseDelay": 0,
        "DicomScuTimeout": 10,
        "DicomScpTimeout": 30,
        "ConcurrentJobs": 1,
        "SaveJobs": False,
        "StorageCompression": False,
        **extra,
    }
    path = tmp / f"orthanc-{port}.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


@contextlib.contextmanager
def orthanc(net: Net, tmp: Path, port: int, **extra: object) -> Iterator[Process]:
    argv = [tool("Orthanc"), str(config(tmp, port, **extra))]
    with running(net, argv, tmp / f"orthanc-{port}.log", port, stop_timeout=30) as proc:
        yield proc


def to(net: Net, capture: str, association: int, port: int = ORTHANC) -> Run:
    return replay(net, str(SAMPLES / capture), "-a", str(association), "--to", f"{HOST}:{port}")


def test_orthanc_configured_alike_answers_as_captured(net: Net, tmp_path: Path) -> None:
    objects = make_objects(tmp_path)
    received = tmp_path / "moved"
    received.mkdir()
    storescp = [dcmtk("storescp"), "-aet", "STORESCP", "-od", str(received), str(MOVE_DESTINATION)]
    runs: dict[tuple[str, int], Run] = {}
    with (
        orthanc(net, tmp_path, ORTHANC),
        running(net, storescp, tmp_path / "storescp.log", MOVE_DESTINATION),
    ):
        empty = to(net, "find_orthanc.pcap", 1)
        load = net.run(
            [
                dcmtk("storescu"),
                "-R",
                "-aet",
                "LOADER",
                "-aec",
                "ORTHANC",
                HOST,
                str(ORTHANC),
                *(
                    str(objects / f)
                    for f in ("ct1.dcm", "ct2.dcm", "ct3.dcm", "mr1.dcm", "big1.dcm")
                ),
            ],
            timeout=120,
        )
        assert load.returncode == 0, load.stdout + load.stderr
        for capture, association in (
            ("find_orthanc.pcap", 1),
            ("find_orthanc.pcap", 2),
            ("get_orthanc.pcap", 1),
            ("move_orthanc.pcap", 1),
            ("reject_called_ae.pcap", 1),
            ("fail_move_unknown_dest_orthanc.pcap", 1),
            ("fail_move_dest_down_orthanc.pcap", 1),
            ("fail_get_no_role_orthanc.pcap", 1),
        ):
            runs[capture, association] = to(net, capture, association)
    failed = {k: r.stdout + r.stderr for k, r in runs.items() if r.returncode != 0}
    assert not failed, failed
    get = runs["get_orthanc.pcap", 1]
    assert get.mark("exchange 4 (SCU C-GET)") == "="  # after its 3 C-STORE sub-operations
    assert "0x0122" in runs["fail_get_no_role_orthanc.pcap", 1].row("exchange 2 (SCP C-STORE)")[1]
    assert len(list(received.iterdir())) == 3  # the C-MOVE's sub-operations reached storescp
    # Before the objects were loaded, the same C-FIND found nothing: a difference.
    assert empty.returncode == 1, empty.stdout
    row = empty.row("exchange 1 (SCU C-FIND)")
    assert row[0] == "≠" and "3 pending" in row[1] and row[1].count("pending") == 1


def test_strict_orthanc_rejects_the_unknown_calling_ae_as_captured(
    net: Net, tmp_path: Path
) -> None:
    strict = {
        "DicomAlwaysAllowEcho": False,
        "DicomAlwaysAllowStore": False,
        "DicomAlwaysAllowFind": False,
        "DicomAlwaysAllowFindWorklist": False,
        "DicomAlwaysAllowGet": False,
        "DicomAlwaysAllowMove": False,
        "DicomModalities": {"KNOWNSCU": ["KNOWNSCU", HOST, 11194]},
    }
    with orthanc(net, tmp_path, STRICT, **strict):
        rejected = to(net, "fail_reject_calling_ae.pcap", 1, STRICT)
        accepted = to(net, "fail_reject_calling_ae.pcap", 2, STRICT)
        # The accepted one, from the rejected calling AE title: a difference.
        renamed = replay(
            net,
            str(SAMPLES / "fail_reject_calling_ae.pcap"),
            "-a",
            "2",
            "--to",
            f"{HOST}:{STRICT}",
            "--calling-ae",
            "UNKNOWNSCU",
        )
    assert rejected.returncode == 0, rejected.stdout
    assert "rejected: calling-AE-title-not-recognized" in rejected.row("association")[1]
    assert accepted.returncode == 0, accepted.stdout
    assert renamed.returncode == 1, renamed.stdout
    assert "A-ASSOCIATE-RQ calling AE KNOWNSCU → UNKNOWNSCU" in renamed.stdout
    assert renamed.mark("association") == "≠" and "rejected" in renamed.row("association")[1]
