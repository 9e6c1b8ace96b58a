"""DIMSE command sets (PS3.7 §9.3, §10.3, Annex E): decoding and encoding.

A command set is always Implicit VR Little Endian and holds only group 0000 elements, so it
is walked with ``struct`` and each element's VR and keyword come from pydicom's data
dictionary. The raw bytes are kept, so that a full pydicom decode is possible later.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from pydicom import config
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.valuerep import validate_value

from dissectors.pdu.items import Defect

_ELEMENT = struct.Struct("<HHI")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")

#: CommandDataSetType value meaning "no data set follows" (PS3.7 E.1-1).
NO_DATASET = 0x0101


class CommandField(IntEnum):
    """Command Field (0000,0100) values, PS3.7 Annex E."""

    C_STORE_RQ = 0x0001
    C_STORE_RSP = 0x8001
    C_GET_RQ = 0x0010
    C_GET_RSP = 0x8010
    C_FIND_RQ = 0x0020
    C_FIND_RSP = 0x8020
    C_MOVE_RQ = 0x0021
    C_MOVE_RSP = 0x8021
    C_ECHO_RQ = 0x0030
    C_ECHO_RSP = 0x8030
    N_EVENT_REPORT_RQ = 0x0100
    N_EVENT_REPORT_RSP = 0x8100
    N_GET_RQ = 0x0110
    N_GET_RSP = 0x8110
    N_SET_RQ = 0x0120
    N_SET_RSP = 0x8120
    N_ACTION_RQ = 0x0130
    N_ACTION_RSP = 0x8130
    N_CREATE_RQ = 0x0140
    N_CREATE_RSP = 0x8140
    N_DELETE_RQ = 0x0150
    N_DELETE_RSP = 0x8150
    C_CANCEL_RQ = 0x0FFF

    @property
    def label(self) -> str:
        """``C-STORE-RQ`` style name."""
        return self.name.replace("_", "-")

    @property
    def service(self) -> str:
        """The DIMSE service without -RQ/-RSP: ``C-STORE``."""
        return self.label.rsplit("-", 1)[0]


def command_label(field: int) -> str:
    """Name of a command field value, or its hex code when undefined."""
    try:
        return CommandField(field).label
    except ValueError:
        return f"0x{field:04X}"


def service_label(field: int) -> str:
    """The service of a command field (``C-FIND``), response bit ignored."""
    try:
        return CommandField(field).service
    except ValueError:
        try:
            return CommandField(field & 0x7FFF).service
        except ValueError:
            return f"0x{field:04X}"


#: Status values that mean "more responses follow" (PS3.7 C.4.1.1.4, C.4.2.1.5 ...).
PENDING_STATUSES = frozenset({0xFF00, 0xFF01})


def is_response(field: int) -> bool:
    """True for a -RSP command field (bit 15 set)."""
    return bool(field & 0x8000)


@dataclass(frozen=True, slots=True)
class CommandSet:
    """The decoded fields of one DIMSE command set, with its raw bytes."""

    command_field: int
    message_id: int | None = None
    message_id_being_responded_to: int | None = None
    affected_sop_class_uid: str | None = None
    requested_sop_class_uid: str | None = None
    affected_sop_instance_uid: str | None = None
    requested_sop_instance_uid: str | None = None
    dataset_type: int = NO_DATASET
    status: int | None = None
    error_comment: str | None = None
    error_id: int | None = None
    offending_element: tuple[int, ...] = ()
    priority: int | None = None
    move_destination: str | None = None
    remaining: int | None = None
    completed: int | None = None
    failed: int | None = None
    warning: int | None = None
    move_originator_ae: str | None = None
    move_originator_message_id: int | None = None
    event_type_id: int | None = None
    action_type_id: int | None = None
    raw: bytes = b""

    @property
    def has_dataset(self) -> bool:
        return self.dataset_type != NO_DATASET

    @property
    def is_response(self) -> bool:
        return is_response(self.command_field)

    @property
    def label(self) -> str:
        return command_label(self.command_field)

    @property
    def service(self) -> str:
        return service_label(self.command_field)

    @property
    def sop_class_uid(self) -> str | None:
        return self.affected_sop_class_uid or self.requested_sop_class_uid

    @property
    def sop_instance_uid(self) -> str | None:
        return self.affected_sop_instance_uid or self.requested_sop_instance_uid

    def encode(self) -> bytes:
        """Encode as Implicit VR Little Endian, group length first (tests, rewrites)."""
        return encode_command_set(self)


# keyword in pydicom's dictionary -> field of CommandSet
_FIELDS: dict[str, str] = {
    "CommandField": "command_field",
    "MessageID": "message_id",
    "MessageIDBeingRespondedTo": "message_id_being_responded_to",
    "AffectedSOPClassUID": "affected_sop_class_uid",
    "RequestedSOPClassUID": "requested_sop_class_uid",
    "AffectedSOPInstanceUID": "affected_sop_instance_uid",
    "RequestedSOPInstanceUID": "requested_sop_instance_uid",
    "CommandDataSetType": "dataset_type",
    "Status": "status",
    "ErrorComment": "error_comment",
    "ErrorID": "error_id",
    "OffendingElement": "offending_element",
    "Priority": "priority",
    "MoveDestination": "move_destination",
    "NumberOfRemainingSuboperations": "remaining",
    "NumberOfCompletedSuboperations": "completed",
    "NumberOfFailedSuboperations": "failed",
    "NumberOfWarningSuboperations": "warning",
    "MoveOriginatorApplicationEntityTitle": "move_originator_ae",
    "MoveOriginatorMessageID": "move_originator_message_id",
    "EventTypeID": "event_type_id",
    "ActionTypeID": "action_type_id",
}


def _tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    assert tag is not None, keyword
    return int(tag)


_BY_TAG: dict[int, tuple[str, str]] = {
    _tag(keyword): (dictionary_VR(_tag(keyword)), name) for keyword, name in _FIELDS.items()
}
_TAG_OF_FIELD: dict[str, tuple[int, str]] = {f: (t, vr) for t, (vr, f) in _BY_TAG.items()}


#: Value representations of the command set whose values are checked: identifiers a
#: receiver looks up (SOP classes and instances, move destinations), where a malformed value
#: misroutes or is refused.
_CHECKED_VRS = frozenset({"UI", "AE"})
_KEYWORDS = {name: keyword for keyword, name in _FIELDS.items()}


def _invalid(vr: str, value: str) -> str | None:
    """Why ``value`` breaks PS3.5 for ``vr`` (pydicom's validators), or None if it does not.

    Checked here rather than left to pydicom's reading, which would print a UserWarning on
    the analyser's stderr: a bad value on the wire is the sender's defect, reported as one."""
    try:
        validate_value(vr, value, config.RAISE)
    except ValueError:
        limit = _MAX_LENGTH.get(vr)
        if limit is not None and len(value) > limit:
            return f"longer than {limit} characters"
        return _RULES[vr]
    return None


_MAX_LENGTH = {"UI": 64, "AE": 16}
_RULES = {
    "UI": "a UID holds only digits and dots, with no leading zero in a component",
    "AE": "an AE title holds no control characters",
}


def _value(vr: str, data: bytes) -> object:
    if vr == "US":
        return _U16.unpack_from(data, 0)[0] if len(data) >= 2 else None
    if vr == "UL":
        return _U32.unpack_from(data, 0)[0] if len(data) >= 4 else None
    if vr == "AT":
        return tuple(
            (g << 16) | e for g, e in struct.iter_unpack("<HH", data[: len(data) // 4 * 4])
        )
    # UI, AE, LO, SH: text with NUL or space padding
    return data.rstrip(b"\x00 ").lstrip(b" ").decode("ascii", "replace")


def decode_command_set(raw: bytes) -> tuple[CommandSet | None, list[Defect]]:
    """Decode a complete command set. Returns None when there is no Command Field."""
    defects: list[Defect] = []
    values: dict[str, object] = {}
    pos = 0
    end = len(raw)
    while pos < end:
        if end - pos < 8:
            defects.append(Defect(pos, f"{end - pos} stray byte(s) at the end of the command set"))
            break
        group, element, length = _ELEMENT.unpack_from(raw, pos)
        if pos + 8 + length > end:
            defects.append(
                Defect(
                    pos, f"element ({group:04X},{element:04X}) length {length} runs past the end"
                )
            )
            break
        if group != 0:
            defects.append(
                Defect(
                    pos,
                    f"element ({group:04X},{element:04X}) is not in group 0000",
                    "foreign-element",
                )
            )
        known = _BY_TAG.get((group << 16) | element)
        if known is not None:
            vr, name = known
            value = _value(vr, raw[pos + 8 : pos + 8 + length])
            values[name] = value
            if vr in _CHECKED_VRS and isinstance(value, str):
                problem = _invalid(vr, value)
                if problem is not None:
                    defects.append(
                        Defect(
                            pos,
                            f"{_KEYWORDS[name]} ({group:04X},{element:04X}) {value!r} is not a "
                            f"valid {vr}: {problem}",
                            "invalid-value",
                        )
                    )
        pos += 8 + length
    if not isinstance(values.get("command_field"), int):
        defects.append(Defect(0, "the command set has no Command Field (0000,0100)"))
        return None, defects
    if values.get("dataset_type") is None:
        values["dataset_type"] = NO_DATASET
    clean = {k: v for k, v in values.items() if v is not None}
    return CommandSet(raw=bytes(raw), **clean), defects  # type: ignore[arg-type]


def encode_command_set(cmd: CommandSet) -> bytes:
    """Encode the fields of ``cmd`` that are set (tests and tools)."""
    elements: list[tuple[int, bytes]] = []
    for name, (tag, vr) in _TAG_OF_FIELD.items():
        value = getattr(cmd, name)
        if value is None or (name == "offending_element" and not value):
            continue
        if vr == "US":
            data = _U16.pack(value)
        elif vr == "UL":
            data = _U32.pack(value)
        elif vr == "AT":
            data = b"".join(struct.pack("<HH", t >> 16, t & 0xFFFF) for t in value)
        else:
            data = str(value).encode("ascii")
            if len(data) % 2:
                data += b"\x00" if vr == "UI" else b" "
        elements.append((tag, data))
    elements.sort()
    body = b"".join(_ELEMENT.pack(t >> 16, t & 0xFFFF, len(d)) + d for t, d in elements)
    return _ELEMENT.pack(0, 0, 4) + _U32.pack(len(body)) + body
