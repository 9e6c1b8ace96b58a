"""Builders for wire bytes used across the tests (they use the project's own encoders,
which tests/dissectors/test_pdu_codec.py checks against pynetdicom's)."""

from __future__ import annotations

from collections.abc import Sequence

from dissectors import CloseKind, DissectorEvent, Endpoint
from dissectors.dimse import CommandSet
from dissectors.observer import AssociationObserver
from dissectors.pdu import (
    DICOM_APPLICATION_CONTEXT,
    Abort,
    AssociateAc,
    AssociateRj,
    AssociateRq,
    ImplementationClassUid,
    ImplementationVersionName,
    MaximumLength,
    PDataTf,
    Pdv,
    PresentationContextAc,
    PresentationContextRq,
    ReleaseRp,
    ReleaseRq,
    SubItem,
    UserInformation,
    ae_title_field,
)

VERIFICATION = "1.2.840.10008.1.1"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
DEFLATED = "1.2.840.10008.1.2.1.99"

CLIENT = Endpoint("10.0.0.1", 40000)
SERVER = Endpoint("10.0.0.2", 104)


def user_info(max_length: int = 16384, *extra: SubItem) -> UserInformation:
    return UserInformation(
        (
            MaximumLength(max_length),
            ImplementationClassUid("1.2.3.4"),
            *extra,
            ImplementationVersionName("TEST_1"),
        )
    )


def associate_rq(
    contexts: Sequence[tuple[int, str, Sequence[str]]] = ((1, VERIFICATION, (IMPLICIT,)),),
    called: str = "SCP",
    calling: str = "SCU",
    extra: Sequence[SubItem] = (),
    max_length: int = 16384,
) -> bytes:
    return AssociateRq(
        called_ae=ae_title_field(called),
        calling_ae=ae_title_field(calling),
        application_context=DICOM_APPLICATION_CONTEXT,
        presentation_contexts=tuple(PresentationContextRq(i, a, tuple(t)) for i, a, t in contexts),
        user_information=user_info(max_length, *extra),
    ).encode()


def associate_ac(
    contexts: Sequence[tuple[int, int, str | None]] = ((1, 0, IMPLICIT),),
    called: str = "SCP",
    calling: str = "SCU",
    extra: Sequence[SubItem] = (),
    max_length: int = 16384,
) -> bytes:
    return AssociateAc(
        called_ae=ae_title_field(called),
        calling_ae=ae_title_field(calling),
        application_context=DICOM_APPLICATION_CONTEXT,
        presentation_contexts=tuple(PresentationContextAc(i, r, t) for i, r, t in contexts),
        user_information=user_info(max_length, *extra),
    ).encode()


def associate_rj(result: int = 1, source: int = 1, reason: int = 7) -> bytes:
    return AssociateRj(result, source, reason).encode()


def release_rq() -> bytes:
    return ReleaseRq().encode()


def release_rp() -> bytes:
    return ReleaseRp().encode()


def abort(source: int = 0, reason: int = 0) -> bytes:
    return Abort(source, reason).encode()


def command(**fields: object) -> bytes:
    return CommandSet(**fields).encode()  # type: ignore[arg-type]


def p_data(context_id: int, data: bytes, *, is_command: bool, last: bool = True) -> bytes:
    control = (1 if is_command else 0) | (2 if last else 0)
    return PDataTf((Pdv(context_id, control, data),)).encode()


def message(context_id: int, cmd: bytes, dataset: bytes | None = None, fragment: int = 0) -> bytes:
    """A whole DIMSE message: command PDU, then data set PDUs of at most ``fragment`` bytes."""
    out = p_data(context_id, cmd, is_command=True)
    if dataset is not None:
        size = fragment or max(len(dataset), 1)
        chunks = [dataset[i : i + size] for i in range(0, len(dataset), size)] or [b""]
        for n, chunk in enumerate(chunks):
            out += p_data(context_id, chunk, is_command=False, last=n == len(chunks) - 1)
    return out


def echo_rq(message_id: int = 1, context_id: int = 1) -> bytes:
    return message(
        context_id,
        command(command_field=0x0030, message_id=message_id, affected_sop_class_uid=VERIFICATION),
    )


def echo_rsp(message_id: int = 1, context_id: int = 1, status: int = 0) -> bytes:
    return message(
        context_id,
        command(
            command_field=0x8030,
            message_id_being_responded_to=message_id,
            affected_sop_class_uid=VERIFICATION,
            status=status,
        ),
    )


class Recorder:
    """Collects events from an observer."""

    def __init__(self) -> None:
        self.events: list[DissectorEvent] = []

    def __call__(self, event: DissectorEvent) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [e for e in self.events if isinstance(e, kind)]


def observe(
    script: Sequence[tuple[bool, bytes]],
    *,
    handshake: bool = True,
    chunk: int = 0,
    close: bool = True,
) -> Recorder:
    """Feed ``(from_client, bytes)`` steps to a fresh observer; ``chunk`` > 0 splits each
    step into pieces of that size. Each step advances the clock by 1 ms."""
    rec = Recorder()
    obs = AssociationObserver(1, CLIENT, SERVER, rec, ts=0, frame=1, handshake=handshake)
    ts = 0
    frame = 1
    for from_client, data in script:
        ts += 1_000_000
        frame += 1
        if chunk:
            for i in range(0, len(data), chunk):
                obs.data(from_client, data[i : i + chunk], ts, frame)
        else:
            obs.data(from_client, data, ts, frame)
    if close:
        obs.closed(True, CloseKind.FIN, ts + 1_000_000, frame + 1)
        obs.closed(False, CloseKind.FIN, ts + 2_000_000, frame + 2)
    obs.finish(ts + 3_000_000, frame + 3)
    return rec


def echo_association() -> list[tuple[bool, bytes]]:
    """A complete, conforming C-ECHO association."""
    return [
        (True, associate_rq()),
        (False, associate_ac()),
        (True, echo_rq()),
        (False, echo_rsp()),
        (True, release_rq()),
        (False, release_rp()),
    ]
