"""Captures built for the tests: one association storing data sets whose SOP Instance UIDs
are whatever the test says, crafted ones included."""

from __future__ import annotations

import warnings
from pathlib import Path

from pydicom.dataset import Dataset

from tests.anonymize.streams import encode
from tests.factories import (
    CT_STORAGE,
    EXPLICIT,
    associate_ac,
    associate_rq,
    command,
    message,
    release_rp,
    release_rq,
)
from tests.pcapgen import Conversation, write_pcap


def dataset(uid: str, name: str = "CRAFTED^PATIENT") -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns of the crafted UIDs: that is the point
        return _dataset(uid, name)


def _dataset(uid: str, name: str) -> bytes:
    ds = Dataset()
    ds.SOPClassUID = CT_STORAGE
    ds.SOPInstanceUID = uid
    ds.PatientName = name
    ds.PatientID = "CRAFTED-ID"
    ds.Modality = "CT"
    return encode(ds, implicit=False)


def store_capture(path: Path, uids: list[str], *, fragment: int = 0) -> Path:
    """storescu-like traffic: one association, a C-STORE per UID (each answered 0x0000)."""
    conv = Conversation(("10.0.0.1", 40000), ("10.0.0.2", 104)).handshake()
    conv.send(True, associate_rq(((1, CT_STORAGE, (EXPLICIT,)),), calling="CRAFTER"))
    conv.send(False, associate_ac(((1, 0, EXPLICIT),)))
    for n, uid in enumerate(uids, 1):
        cmd = command(
            command_field=0x0001,
            message_id=n,
            affected_sop_class_uid=CT_STORAGE,
            affected_sop_instance_uid=uid,
            priority=0,
            dataset_type=0x0000,
        )
        conv.send(True, message(1, cmd, dataset(uid), fragment))
        rsp = command(
            command_field=0x8001,
            message_id_being_responded_to=n,
            affected_sop_class_uid=CT_STORAGE,
            affected_sop_instance_uid=uid,
            dataset_type=0x0101,
            status=0,
        )
        conv.send(False, message(1, rsp))
    conv.send(True, release_rq())
    conv.send(False, release_rp())
    conv.close()
    return write_pcap(path, conv.frames)
