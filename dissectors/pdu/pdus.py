"""The seven PDUs of PS3.8 §9.3: dataclasses, decoding of whole bodies, encoding.

The streaming side (a P-DATA-TF that may be gigabytes long, or split over many TCP
segments) is :mod:`dissectors.framing`; this module works on complete bodies, which is
what association, release and abort PDUs are, and what tests and the proxy's opt-in
rewrites build.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache

from .constants import ItemType, PduType
from .items import (
    ApplicationContextItem,
    Defect,
    PresentationContextAc,
    PresentationContextRq,
    UnknownItem,
    UserInformation,
    decode_context_ac,
    decode_context_rq,
    decode_user_information,
    iter_items,
    uid_text,
)

PDU_HEADER = struct.Struct(">BBI")
"""Type, reserved byte, length: the 6 bytes every PDU starts with."""

PDV_HEADER = struct.Struct(">IBB")
"""PDV item length, presentation context ID, message control header."""

_ASSOC_FIXED = struct.Struct(">HH16s16s32s")
ASSOCIATE_FIXED_LENGTH = _ASSOC_FIXED.size  # 68
#: Body bytes up to the end of the Calling AE Title: what a cut association PDU needs.
ASSOCIATE_TITLES_END = 36


def ae_title_text(raw: bytes) -> str:
    """An AE title for display: leading and trailing spaces are not significant (PS3.5)."""
    return raw.decode("ascii", "replace").strip(" \x00")


def ae_title_field(title: str) -> bytes:
    """Pad an AE title to the 16-byte field of the association PDUs."""
    return title.encode("ascii")[:16].ljust(16, b" ")


@dataclass(frozen=True, slots=True)
class AssociateRq:
    """A-ASSOCIATE-RQ PDU (type 0x01). AE titles are the raw 16-byte fields.

    ``missing``: bytes of the body the capture lost (a snap length, a gap), 0 when it was
    captured whole. A cut PDU holds the items captured whole before the cut and nothing
    after it: an absent item may have been sent (see :func:`decode_cut_control_pdu`).
    """

    called_ae: bytes
    calling_ae: bytes
    application_context: str | None
    presentation_contexts: tuple[PresentationContextRq, ...]
    user_information: UserInformation | None
    protocol_version: int = 1
    unknown_items: tuple[UnknownItem, ...] = ()
    missing: int = 0

    pdu_type = PduType.A_ASSOCIATE_RQ

    def encode(self) -> bytes:
        return _encode_associate(self, self.presentation_contexts)


@dataclass(frozen=True, slots=True)
class AssociateAc:
    """A-ASSOCIATE-AC PDU (type 0x02). The AE fields are echoed from the RQ (not tested).

    ``missing``: bytes of the body the capture lost (a snap length, a gap), 0 when it was
    captured whole. A cut PDU holds the items captured whole before the cut and nothing
    after it: an absent item may have been sent (see :func:`decode_cut_control_pdu`).
    """

    called_ae: bytes
    calling_ae: bytes
    application_context: str | None
    presentation_contexts: tuple[PresentationContextAc, ...]
    user_information: UserInformation | None
    protocol_version: int = 1
    unknown_items: tuple[UnknownItem, ...] = ()
    missing: int = 0

    pdu_type = PduType.A_ASSOCIATE_AC

    def encode(self) -> bytes:
        return _encode_associate(self, self.presentation_contexts)


@dataclass(frozen=True, slots=True)
class AssociateRj:
    """A-ASSOCIATE-RJ PDU (type 0x03)."""

    result: int
    source: int
    reason: int

    pdu_type = PduType.A_ASSOCIATE_RJ

    def encode(self) -> bytes:
        return PDU_HEADER.pack(3, 0, 4) + bytes((0, self.result, self.source, self.reason))


@dataclass(frozen=True, slots=True)
class Pdv:
    """One Presentation Data Value item of a P-DATA-TF."""

    context_id: int
    control: int
    data: bytes

    @property
    def is_command(self) -> bool:
        return bool(self.control & 0x01)

    @property
    def is_last(self) -> bool:
        return bool(self.control & 0x02)

    def encode(self) -> bytes:
        return PDV_HEADER.pack(len(self.data) + 2, self.context_id, self.control) + self.data


@dataclass(frozen=True, slots=True)
class PDataTf:
    """P-DATA-TF PDU (type 0x04), fully materialised (tests, encoding)."""

    pdvs: tuple[Pdv, ...]

    pdu_type = PduType.P_DATA_TF

    def encode(self) -> bytes:
        body = b"".join(p.encode() for p in self.pdvs)
        return PDU_HEADER.pack(4, 0, len(body)) + body


@dataclass(frozen=True, slots=True)
class ReleaseRq:
    """A-RELEASE-RQ PDU (type 0x05)."""

    pdu_type = PduType.A_RELEASE_RQ

    def encode(self) -> bytes:
        return PDU_HEADER.pack(5, 0, 4) + bytes(4)


@dataclass(frozen=True, slots=True)
class ReleaseRp:
    """A-RELEASE-RP PDU (type 0x06)."""

    pdu_type = PduType.A_RELEASE_RP

    def encode(self) -> bytes:
        return PDU_HEADER.pack(6, 0, 4) + bytes(4)


@dataclass(frozen=True, slots=True)
class Abort:
    """A-ABORT PDU (type 0x07)."""

    source: int
    reason: int

    pdu_type = PduType.A_ABORT

    def encode(self) -> bytes:
        return PDU_HEADER.pack(7, 0, 4) + bytes((0, 0, self.source, self.reason))


ControlPdu = AssociateRq | AssociateAc | AssociateRj | ReleaseRq | ReleaseRp | Abort
"""Every PDU but P-DATA-TF: short, decoded whole."""

Pdu = ControlPdu | PDataTf


def _encode_associate(
    pdu: AssociateRq | AssociateAc,
    contexts: tuple[PresentationContextRq, ...] | tuple[PresentationContextAc, ...],
) -> bytes:
    body = bytearray(
        _ASSOC_FIXED.pack(pdu.protocol_version, 0, pdu.called_ae, pdu.calling_ae, bytes(32))
    )
    if pdu.application_context is not None:
        body += ApplicationContextItem(pdu.application_context).encode()
    for ctx in contexts:
        body += ctx.encode()
    if pdu.user_information is not None:
        body += pdu.user_information.encode()
    for unknown in pdu.unknown_items:
        body += unknown.encode()
    return PDU_HEADER.pack(int(pdu.pdu_type), 0, len(body)) + bytes(body)


def _decode_associate(
    pdu_type: int, body: bytes, defects: list[Defect], missing: int = 0
) -> AssociateRq | AssociateAc:
    """Decode an association PDU body; ``missing`` bytes of it after ``body`` were not
    captured (``body`` then holds at least the AE titles)."""
    is_rq = pdu_type == PduType.A_ASSOCIATE_RQ
    cut = missing > 0
    if len(body) < ASSOCIATE_FIXED_LENGTH:
        declared = len(body) + missing
        if declared < ASSOCIATE_FIXED_LENGTH:
            defects.append(Defect(6, f"association PDU body is {declared} bytes, shorter than 68"))
        # Padded: the reserved field is all that may be absent from a cut one.
        body = bytes(body).ljust(ASSOCIATE_FIXED_LENGTH, b"\x00")
    version, _, called, calling, _ = _ASSOC_FIXED.unpack_from(body, 0)
    if version != 1:
        defects.append(Defect(6, f"protocol version is 0x{version:04X}; PS3.8 defines only 0x0001"))
    app_context: str | None = None
    rq_contexts: list[PresentationContextRq] = []
    ac_contexts: list[PresentationContextAc] = []
    user_info: UserInformation | None = None
    unknown: list[UnknownItem] = []
    base = 6 + ASSOCIATE_FIXED_LENGTH
    items = body[ASSOCIATE_FIXED_LENGTH:]
    walked = 0  # the items captured whole end there
    for item_type, second, item, offset in iter_items(items, base, defects, cut=cut):
        walked = offset - base + 4 + len(item)
        if item_type == ItemType.APPLICATION_CONTEXT:
            if app_context is not None:
                defects.append(Defect(offset, "more than one application context item"))
            app_context = uid_text(item)
        elif item_type == ItemType.PRESENTATION_CONTEXT_RQ and is_rq:
            rq_contexts.append(decode_context_rq(item, offset, defects))
        elif item_type == ItemType.PRESENTATION_CONTEXT_AC and not is_rq:
            ac_contexts.append(decode_context_ac(item, offset, defects))
        elif item_type == ItemType.USER_INFORMATION:
            if user_info is not None:
                defects.append(Defect(offset, "more than one user information item"))
            user_info = decode_user_information(item, offset, defects)
        else:
            defects.append(
                Defect(offset, f"unexpected item type 0x{item_type:02X} kept as raw bytes")
            )
            unknown.append(UnknownItem(item_type, bytes(item), second))
    if cut:
        tail = items[walked:]
        if user_info is None and len(tail) >= 4 and tail[0] == ItemType.USER_INFORMATION:
            # Its sub-items captured whole are known; the others are not.
            user_info = decode_user_information(tail[4:], base + walked, defects, cut=True)
    else:
        if app_context is None:
            defects.append(Defect(6, "no application context item"))
        if user_info is None:
            defects.append(Defect(6, "no user information item (PS3.7 requires Maximum Length)"))
    if is_rq:
        if not rq_contexts and not cut:
            defects.append(Defect(6, "no presentation context proposed"))
        if len(rq_contexts) > 128:
            defects.append(
                Defect(
                    6,
                    f"{len(rq_contexts)} presentation contexts proposed; odd IDs 1-255 allow "
                    "at most 128",
                )
            )
        seen: set[int] = set()
        for ctx in rq_contexts:
            if ctx.context_id in seen:
                defects.append(
                    Defect(6, f"presentation context ID {ctx.context_id} proposed twice")
                )
            seen.add(ctx.context_id)
        return AssociateRq(
            called,
            calling,
            app_context,
            tuple(rq_contexts),
            user_info,
            version,
            tuple(unknown),
            missing,
        )
    return AssociateAc(
        called,
        calling,
        app_context,
        tuple(ac_contexts),
        user_info,
        version,
        tuple(unknown),
        missing,
    )


def decode_control_pdu(pdu_type: int, body: bytes) -> tuple[ControlPdu, list[Defect]]:
    """Decode the body of any PDU except P-DATA-TF.

    Never raises for bad content: defects come back as a list. Raises ``ValueError`` only
    for ``pdu_type`` 4 or an undefined type, which is a caller error.
    """
    if pdu_type in _REMEMBERED_TYPES and len(body) <= _REMEMBER_BODY_LIMIT:
        pdu, defects = _decode_remembered(pdu_type, bytes(body))
        return pdu, list(defects)
    return _decode_whole(pdu_type, body)


def _decode_whole(pdu_type: int, body: bytes) -> tuple[ControlPdu, list[Defect]]:
    defects: list[Defect] = []
    pdu = _decode_control(pdu_type, body, 0, defects)
    assert pdu is not None
    return pdu, defects


_REMEMBERED_TYPES = frozenset({PduType.A_ASSOCIATE_RQ, PduType.A_ASSOCIATE_AC})
_REMEMBER_BODY_LIMIT = 1 << 14
_REMEMBER_BYTES = 1 << 20  # the bodies remembered, at most


@lru_cache(maxsize=_REMEMBER_BYTES // _REMEMBER_BODY_LIMIT)
def _decode_remembered(pdu_type: int, body: bytes) -> tuple[ControlPdu, tuple[Defect, ...]]:
    """A-ASSOCIATE-RQ and -AC bodies decoded lately. A site's applications propose the same
    contexts every time they associate, byte for byte: the decode of a body seen before is
    taken from here. The decoded PDU and its defects are immutable; the cache is bounded
    (entries of at most :data:`_REMEMBER_BODY_LIMIT` bytes) and safe across threads."""
    pdu, defects = _decode_whole(pdu_type, body)
    return pdu, tuple(defects)


def decode_cut_control_pdu(
    pdu_type: int, body: bytes, missing: int
) -> tuple[ControlPdu | None, list[Defect]]:
    """Decode the captured start ``body`` of a PDU body (any PDU but P-DATA-TF) whose last
    ``missing`` bytes the capture lost, as far as it was captured; nothing is guessed.

    An A-ASSOCIATE-RQ/AC needs its AE titles (the first 36 bytes of the body): it then holds
    the application context, presentation contexts and user information sub-items captured
    whole before the cut, and its ``missing``. An A-ASSOCIATE-RJ or A-ABORT needs its 4
    bytes; an A-RELEASE-RQ/RP nothing. None when the fields that make the PDU were not
    captured. The defects are those of the bytes captured and of the declared length: an
    item the cut ends is not captured, not malformed. ``missing`` 0 is
    :func:`decode_control_pdu`.
    """
    defects: list[Defect] = []
    return _decode_control(pdu_type, body, missing, defects), defects


def _decode_control(
    pdu_type: int, body: bytes, missing: int, defects: list[Defect]
) -> ControlPdu | None:
    declared = len(body) + missing
    if pdu_type in (PduType.A_ASSOCIATE_RQ, PduType.A_ASSOCIATE_AC):
        if missing and len(body) < ASSOCIATE_TITLES_END:
            if declared < ASSOCIATE_FIXED_LENGTH:
                defects.append(
                    Defect(6, f"association PDU body is {declared} bytes, shorter than 68")
                )
            return None
        return _decode_associate(pdu_type, body, defects, missing)
    if pdu_type not in (
        PduType.A_ASSOCIATE_RJ,
        PduType.A_ABORT,
        PduType.A_RELEASE_RQ,
        PduType.A_RELEASE_RP,
    ):
        raise ValueError(f"decode_control_pdu does not handle PDU type 0x{pdu_type:02X}")
    if declared != 4:
        defects.append(Defect(2, f"PDU length is {declared}, PS3.8 fixes it at 4"))
    if pdu_type == PduType.A_RELEASE_RQ:
        return ReleaseRq()
    if pdu_type == PduType.A_RELEASE_RP:
        return ReleaseRp()
    if missing and len(body) < 4:
        return None
    fixed = bytes(body[:4]).ljust(4, b"\x00")
    if pdu_type == PduType.A_ASSOCIATE_RJ:
        return AssociateRj(fixed[1], fixed[2], fixed[3])
    return Abort(fixed[2], fixed[3])


def decode_p_data(body: bytes) -> tuple[PDataTf, list[Defect]]:
    """Decode a whole P-DATA-TF body into its PDVs (tests and small PDUs only)."""
    defects: list[Defect] = []
    pdvs: list[Pdv] = []
    pos = 0
    while pos < len(body):
        if len(body) - pos < 6:
            defects.append(Defect(6 + pos, "truncated PDV header"))
            break
        length, ctx, control = PDV_HEADER.unpack_from(body, pos)
        if length < 2 or pos + 4 + length > len(body):
            defects.append(Defect(6 + pos, f"PDV length {length} does not fit the PDU"))
            break
        pdvs.append(Pdv(ctx, control, bytes(body[pos + 6 : pos + 4 + length])))
        pos += 4 + length
    return PDataTf(tuple(pdvs)), defects


def decode_pdu(data: bytes) -> tuple[Pdu, list[Defect]]:
    """Decode one complete PDU, header included (tests and tools)."""
    if len(data) < 6:
        raise ValueError("a PDU is at least 6 bytes")
    pdu_type, _, length = PDU_HEADER.unpack_from(data, 0)
    body = data[6 : 6 + length]
    if len(body) != length:
        raise ValueError(f"PDU declares {length} bytes of body, {len(body)} given")
    if pdu_type == PduType.P_DATA_TF:
        return decode_p_data(body)
    return decode_control_pdu(pdu_type, body)
