"""Byte-level association scenarios shared by the observer tests."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from dissectors import Outcome
from dissectors.pdu import UnknownItem
from tests.factories import (
    CT_STORAGE,
    DEFLATED,
    EXPLICIT,
    IMPLICIT,
    STUDY_FIND,
    abort,
    associate_ac,
    associate_rj,
    associate_rq,
    command,
    echo_association,
    echo_rq,
    echo_rsp,
    message,
    p_data,
    release_rp,
    release_rq,
)


def explicit_dataset(n_pixels: int = 0) -> bytes:
    """A small Explicit VR LE data set: PatientName, Modality, SOPInstanceUID, Pixel Data."""
    out = b"\x08\x00\x16\x00UI\x1a\x001.2.840.10008.5.1.4.1.1.2\x00"
    out += b"\x08\x00\x60\x00CS\x02\x00CT"
    out += b"\x10\x00\x10\x00PN\x08\x00Doe^John"
    if n_pixels:
        out += (
            b"\xe0\x7f\x10\x00OW\x00\x00"
            + n_pixels.to_bytes(4, "little")
            + bytes(range(256)) * (n_pixels // 256)
        )
        out += bytes(n_pixels % 256)
    return out


def implicit_identifier() -> bytes:
    """Implicit VR LE: QueryRetrieveLevel=STUDY, PatientName=*."""
    return b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY " + b"\x10\x00\x10\x00\x02\x00\x00\x00* "


def store_rq(mid: int, ctx: int = 1, dataset: bytes = b"", fragment: int = 0) -> bytes:
    return message(
        ctx,
        command(
            command_field=0x0001,
            message_id=mid,
            affected_sop_class_uid=CT_STORAGE,
            affected_sop_instance_uid=f"1.2.3.{mid}",
            priority=0,
            dataset_type=0x0000,
        ),
        dataset,
        fragment,
    )


def store_rsp(mid: int, ctx: int = 1, status: int = 0) -> bytes:
    return message(
        ctx,
        command(
            command_field=0x8001,
            message_id_being_responded_to=mid,
            affected_sop_class_uid=CT_STORAGE,
            affected_sop_instance_uid=f"1.2.3.{mid}",
            status=status,
        ),
    )


def find_rsp(mid: int, status: int, ctx: int = 1, with_identifier: bool = True) -> bytes:
    return message(
        ctx,
        command(
            command_field=0x8020,
            message_id_being_responded_to=mid,
            affected_sop_class_uid=STUDY_FIND,
            status=status,
            dataset_type=0x0000 if with_identifier else 0x0101,
        ),
        implicit_identifier() if with_identifier else None,
    )


@dataclass(frozen=True)
class Scenario:
    name: str
    script: list[tuple[bool, bytes]]
    outcome: Outcome
    exchanges: int
    violations: int = 0
    handshake: bool = True


def _store_script() -> list[tuple[bool, bytes]]:
    big = explicit_dataset(40_000)
    return [
        (True, associate_rq(((1, CT_STORAGE, (EXPLICIT, IMPLICIT)), (3, CT_STORAGE, (IMPLICIT,))))),
        (False, associate_ac(((1, 0, EXPLICIT), (3, 0, IMPLICIT)))),
        (True, store_rq(1, 1, big, fragment=4000)),
        (False, store_rsp(1, 1)),
        (True, store_rq(2, 1, explicit_dataset())),
        (False, store_rsp(2, 1, status=0xB000)),
        (True, release_rq()),
        (False, release_rp()),
    ]


def _find_script() -> list[tuple[bool, bytes]]:
    rq_cmd = command(
        command_field=0x0020,
        message_id=7,
        affected_sop_class_uid=STUDY_FIND,
        priority=0,
        dataset_type=0,
    )
    return [
        (True, associate_rq(((1, STUDY_FIND, (IMPLICIT,)),))),
        (False, associate_ac(((1, 0, IMPLICIT),))),
        (True, message(1, rq_cmd, implicit_identifier())),
        (False, find_rsp(7, 0xFF00)),
        (False, find_rsp(7, 0xFF00)),
        (False, find_rsp(7, 0xFF01)),
        (False, find_rsp(7, 0x0000, with_identifier=False)),
        (True, release_rq()),
        (False, release_rp()),
    ]


def _deflate_script() -> list[tuple[bool, bytes]]:
    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = comp.compress(explicit_dataset(2048)) + comp.flush()
    if len(deflated) % 2:
        deflated += b"\x00"
    return [
        (True, associate_rq(((1, CT_STORAGE, (DEFLATED,)),))),
        (False, associate_ac(((1, 0, DEFLATED),))),
        (True, store_rq(1, 1, deflated)),
        (False, store_rsp(1, 1)),
        (True, release_rq()),
        (False, release_rp()),
    ]


SCENARIOS = [
    Scenario("echo", echo_association(), Outcome.RELEASED, 1),
    Scenario(
        "rejected", [(True, associate_rq()), (False, associate_rj(1, 1, 7))], Outcome.REJECTED, 0
    ),
    Scenario("aborted-at-rq", [(True, associate_rq()), (False, abort(2, 0))], Outcome.ABORTED, 0),
    Scenario("store", _store_script(), Outcome.RELEASED, 2),
    Scenario("find-pending", _find_script(), Outcome.RELEASED, 1),
    Scenario("deflate", _deflate_script(), Outcome.RELEASED, 1),
    Scenario(
        "release-collision",
        [
            (True, associate_rq()),
            (False, associate_ac()),
            (True, release_rq()),
            (False, release_rq()),
            (True, release_rp()),
            (False, release_rp()),
        ],
        Outcome.RELEASE_COLLISION,
        0,
    ),
    Scenario(
        "data-crosses-release",
        [
            (True, associate_rq()),
            (False, associate_ac()),
            (True, echo_rq(1)),
            (True, release_rq()),
            (False, echo_rsp(1)),
            (False, release_rp()),
        ],
        Outcome.RELEASED,
        1,
    ),
    Scenario(
        "abort-crosses-data",
        [
            (True, associate_rq()),
            (False, associate_ac()),
            (False, abort(0, 0)),
            (True, echo_rq(1)),
            (True, echo_rq(2)),
        ],
        Outcome.ABORTED,
        2,  # both requests end unanswered
    ),
    Scenario(
        "p-data-before-ac",
        [(True, associate_rq()), (True, echo_rq(1)), (False, associate_ac()), (False, echo_rsp(1))],
        Outcome.TRANSPORT_DROPPED,
        1,
        violations=1,
    ),
    Scenario(
        "second-rq",
        [
            (True, associate_rq()),
            (False, associate_ac()),
            (True, associate_rq()),
            (False, abort(2, 2)),
        ],
        Outcome.ABORTED,
        0,
        violations=1,
    ),
    Scenario(
        "unknown-sub-item",
        [
            (True, associate_rq(extra=(UnknownItem(0x7A, b"vendor"),))),
            (False, associate_ac()),
            (True, release_rq()),
            (False, release_rp()),
        ],
        Outcome.RELEASED,
        0,
        violations=1,
    ),
    Scenario(
        "unknown-pdu-type",
        [
            (True, associate_rq()),
            (False, associate_ac()),
            (True, b"\x09\x00\x00\x00\x00\x02\xab\xcd"),
            (True, echo_rq(3)),
            (False, echo_rsp(3)),
            (True, release_rq()),
            (False, release_rp()),
        ],
        Outcome.RELEASED,
        1,
        violations=2,  # framing (unknown type) and state machine (Evt19)
    ),
    Scenario(
        "bad-pdv-length",
        [
            (True, associate_rq()),
            (False, associate_ac()),
            (True, b"\x04\x00\x00\x00\x00\x0a\x00\x00\x01\x00\x01\x03abcd"),
            (True, echo_rq(4)),
            (False, echo_rsp(4)),
            (True, release_rq()),
            (False, release_rp()),
        ],
        Outcome.RELEASED,
        1,
        violations=1,
    ),
    Scenario(
        "mid-stream",
        [
            (True, echo_rq(9)),
            (False, echo_rsp(9)),
            (True, store_rq(10, 1, explicit_dataset(1000))),
            (False, store_rsp(10)),
            (True, release_rq()),
            (False, release_rp()),
        ],
        Outcome.RELEASED,
        2,
        handshake=False,
    ),
    Scenario(
        "mid-stream-after-junk",
        [
            (True, b"\x00" * 37 + p_data(1, b"tail of a data set", is_command=False)),
            (True, echo_rq(9)),
            (False, b"\x17" * 5),
            (False, echo_rsp(9)),
        ],
        Outcome.TRANSPORT_DROPPED,
        1,
        handshake=False,
    ),
]
