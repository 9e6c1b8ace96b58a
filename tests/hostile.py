"""A capture whose every wire string is hostile: terminal escapes, BEL, NUL, newlines and
Rich/Textual markup in AE titles, UIDs, the implementation version name, DIMSE command set
fields, an error comment and data set values.

It goes further than the crafted captures of tests/data/repros (which hold an
A-ASSOCIATE-RQ only): a whole association with an exchange, so that every human output
(text report, diagnosis, CSV, event lines, every screen of the terminal UI) meets wire text.
"""

from __future__ import annotations

import struct
from pathlib import Path

from dissectors.pdu import (
    DICOM_APPLICATION_CONTEXT,
    AssociateAc,
    AssociateRq,
    ImplementationClassUid,
    ImplementationVersionName,
    MaximumLength,
    PresentationContextAc,
    PresentationContextRq,
    UserInformation,
    ae_title_field,
)
from tests.factories import CT_STORAGE, IMPLICIT, command, message, release_rp, release_rq
from tests.pcapgen import Conversation, write_pcap

CALLING = "[b]MOD\x1b[31mX"
"""Rich markup and an SGR sequence (16 characters at most: an AE title)."""
CALLED = "[@click=quit]\x07Z"
"""A Textual action link and BEL."""
BAD_UID = "1.2.840.\x1b]0;PWNED\x07.1"
"""An OSC sequence that retitles the terminal, in an abstract syntax."""
VERSION = "IMPL\x1b]0;X\x07"
INSTANCE = "1.2.3.\x1b[2J4"
ERROR_COMMENT = "disk full\n[b]FORGED LINE\x1b[2J\x00"
PATIENT = "[red]Doe\x1b]0;PWN\x07^Jo"
PATIENT_ID = "[@click=quit]X\x1b[5m"

#: Every hostile string above, for tests that look for them (escaped or raw).
STRINGS = (CALLING, CALLED, BAD_UID, VERSION, INSTANCE, ERROR_COMMENT, PATIENT, PATIENT_ID)


def _element(group: int, element: int, value: str) -> bytes:
    """An Implicit VR Little Endian element (even length, space padded)."""
    data = value.encode("latin-1")
    if len(data) % 2:
        data += b" "
    return struct.pack("<HHI", group, element, len(data)) + data


def dataset() -> bytes:
    return b"".join(
        (
            _element(0x0008, 0x0016, CT_STORAGE),
            _element(0x0008, 0x0018, INSTANCE),
            _element(0x0010, 0x0010, PATIENT),
            _element(0x0010, 0x0020, PATIENT_ID),
        )
    )


def write_hostile_capture(path: Path) -> Path:
    """A C-STORE association full of hostile text (rejected context, failure status)."""
    user = UserInformation(
        (
            MaximumLength(16384),
            ImplementationClassUid("1.2.3.4"),
            ImplementationVersionName(VERSION),
        )
    )
    rq = AssociateRq(
        called_ae=ae_title_field(CALLED),
        calling_ae=ae_title_field(CALLING),
        application_context=DICOM_APPLICATION_CONTEXT,
        presentation_contexts=(
            PresentationContextRq(1, CT_STORAGE, (IMPLICIT,)),
            PresentationContextRq(3, BAD_UID, (IMPLICIT,)),
        ),
        user_information=user,
    ).encode()
    ac = AssociateAc(
        called_ae=ae_title_field(CALLED),
        calling_ae=ae_title_field(CALLING),
        application_context=DICOM_APPLICATION_CONTEXT,
        presentation_contexts=(
            PresentationContextAc(1, 0, IMPLICIT),
            PresentationContextAc(3, 3, IMPLICIT),
        ),
        user_information=user,
    ).encode()
    store_rq = message(
        1,
        command(
            command_field=0x0001,
            message_id=7,
            affected_sop_class_uid=CT_STORAGE,
            affected_sop_instance_uid=INSTANCE,
            priority=0,
            dataset_type=0x0000,
        ),
        dataset(),
    )
    store_rsp = message(
        1,
        command(
            command_field=0x8001,
            message_id_being_responded_to=7,
            affected_sop_class_uid=CT_STORAGE,
            affected_sop_instance_uid=INSTANCE,
            status=0xA700,
            error_comment=ERROR_COMMENT,
        ),
    )
    talk = Conversation(("10.0.0.1", 50000), ("10.0.0.2", 104)).handshake()
    for from_client, pdu in (
        (True, rq),
        (False, ac),
        (True, store_rq),
        (False, store_rsp),
        (True, release_rq()),
        (False, release_rp()),
    ):
        talk.send(from_client, pdu)
    talk.close()
    return write_pcap(path, talk.frames)
