"""Items and sub-items of the association PDUs: decode and encode.

PS3.8 §9.3.2-9.3.4 (items 0x10, 0x20, 0x21, 0x30, 0x40, 0x50) and PS3.7 Annex D.3.3
(user information sub-items 0x51-0x59). Decoding never raises on bad input: what does not
fit is reported as a :class:`Defect` with its offset, and unknown item types are kept as
:class:`UnknownItem` with their raw bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from .constants import ItemType

_ITEM_HEADER = struct.Struct(">BBH")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_ASYNC = struct.Struct(">HH")


@dataclass(frozen=True, slots=True)
class Defect:
    """Something in a PDU that does not conform to PS3.8; ``offset`` is from the PDU start.

    ``code`` sorts defects: ``malformed`` (the standard is broken), ``unknown-item`` (an item
    PS3.8/PS3.7 does not define, kept as raw bytes), ``foreign-element`` (a command set
    element outside group 0000).
    """

    offset: int
    text: str
    code: str = "malformed"


def uid_text(raw: bytes) -> str:
    """A UID (or UI-like string) from the wire: trailing NUL/space padding removed."""
    return raw.rstrip(b"\x00 ").decode("ascii", "replace")


def uid_bytes(uid: str) -> bytes:
    """Encode a UID as PS3.8 sends it in items: ASCII, no padding.

    A UID decoded from the wire may hold bytes that are not ASCII (:func:`uid_text` turns
    them into U+FFFD): they encode as ``?``, so whatever was decoded encodes again."""
    return uid.encode("ascii", "replace")


def _item(item_type: int, body: bytes, second: int = 0) -> bytes:
    return _ITEM_HEADER.pack(item_type, second, len(body)) + body


def _u16_prefixed(data: bytes) -> bytes:
    return _U16.pack(len(data)) + data


# --- presentation layer items -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApplicationContextItem:
    """Application Context Item (0x10)."""

    name: str

    def encode(self) -> bytes:
        return _item(ItemType.APPLICATION_CONTEXT, uid_bytes(self.name))


@dataclass(frozen=True, slots=True)
class PresentationContextRq:
    """Presentation Context Item in an A-ASSOCIATE-RQ (0x20) with its 0x30 and 0x40 sub-items."""

    context_id: int
    abstract_syntax: str | None
    transfer_syntaxes: tuple[str, ...]

    def encode(self) -> bytes:
        body = bytearray((self.context_id, 0, 0, 0))
        if self.abstract_syntax is not None:
            body += _item(ItemType.ABSTRACT_SYNTAX, uid_bytes(self.abstract_syntax))
        for ts in self.transfer_syntaxes:
            body += _item(ItemType.TRANSFER_SYNTAX, uid_bytes(ts))
        return _item(ItemType.PRESENTATION_CONTEXT_RQ, bytes(body))


@dataclass(frozen=True, slots=True)
class PresentationContextAc:
    """Presentation Context Item in an A-ASSOCIATE-AC (0x21): result and one transfer syntax."""

    context_id: int
    result: int
    transfer_syntax: str | None

    def encode(self) -> bytes:
        body = bytearray((self.context_id, 0, self.result, 0))
        if self.transfer_syntax is not None:
            body += _item(ItemType.TRANSFER_SYNTAX, uid_bytes(self.transfer_syntax))
        return _item(ItemType.PRESENTATION_CONTEXT_AC, bytes(body))


# --- user information sub-items (PS3.7 Annex D.3.3) ---------------------------------------


@dataclass(frozen=True, slots=True)
class MaximumLength:
    """Maximum Length Sub-Item (0x51); 0 means no limit."""

    maximum_length: int

    def encode(self) -> bytes:
        return _item(ItemType.MAXIMUM_LENGTH, _U32.pack(self.maximum_length))


@dataclass(frozen=True, slots=True)
class ImplementationClassUid:
    """Implementation Class UID Sub-Item (0x52)."""

    uid: str

    def encode(self) -> bytes:
        return _item(ItemType.IMPLEMENTATION_CLASS_UID, uid_bytes(self.uid))


@dataclass(frozen=True, slots=True)
class AsynchronousOperationsWindow:
    """Asynchronous Operations Window Sub-Item (0x53); 0 means unlimited."""

    max_operations_invoked: int
    max_operations_performed: int

    def encode(self) -> bytes:
        body = _ASYNC.pack(self.max_operations_invoked, self.max_operations_performed)
        return _item(ItemType.ASYNCHRONOUS_OPERATIONS_WINDOW, body)


@dataclass(frozen=True, slots=True)
class RoleSelection:
    """SCP/SCU Role Selection Sub-Item (0x54)."""

    sop_class_uid: str
    scu_role: int
    scp_role: int

    def encode(self) -> bytes:
        body = _u16_prefixed(uid_bytes(self.sop_class_uid)) + bytes((self.scu_role, self.scp_role))
        return _item(ItemType.SCP_SCU_ROLE_SELECTION, body)


@dataclass(frozen=True, slots=True)
class ImplementationVersionName:
    """Implementation Version Name Sub-Item (0x55)."""

    name: str

    def encode(self) -> bytes:
        return _item(ItemType.IMPLEMENTATION_VERSION_NAME, self.name.encode("ascii", "replace"))


@dataclass(frozen=True, slots=True)
class SopClassExtendedNegotiation:
    """SOP Class Extended Negotiation Sub-Item (0x56); the application information is opaque."""

    sop_class_uid: str
    application_information: bytes

    def encode(self) -> bytes:
        body = _u16_prefixed(uid_bytes(self.sop_class_uid)) + self.application_information
        return _item(ItemType.SOP_CLASS_EXTENDED_NEGOTIATION, body)


@dataclass(frozen=True, slots=True)
class SopClassCommonExtendedNegotiation:
    """SOP Class Common Extended Negotiation Sub-Item (0x57), PS3.7 D.3.3.6."""

    sop_class_uid: str
    service_class_uid: str
    related_general_sop_classes: tuple[str, ...]
    version: int = 0

    def encode(self) -> bytes:
        related = b"".join(_u16_prefixed(uid_bytes(u)) for u in self.related_general_sop_classes)
        body = (
            _u16_prefixed(uid_bytes(self.sop_class_uid))
            + _u16_prefixed(uid_bytes(self.service_class_uid))
            + _u16_prefixed(related)
        )
        return _item(ItemType.SOP_CLASS_COMMON_EXTENDED_NEGOTIATION, body, self.version)


@dataclass(frozen=True, slots=True)
class UserIdentityRq:
    """User Identity Sub-Item in an A-ASSOCIATE-RQ (0x58).

    ``secondary_field`` holds the passcode for type 2; reports must never print it.
    """

    identity_type: int
    positive_response_requested: bool
    primary_field: bytes
    secondary_field: bytes

    def encode(self) -> bytes:
        body = (
            bytes((self.identity_type, int(self.positive_response_requested)))
            + _u16_prefixed(self.primary_field)
            + _u16_prefixed(self.secondary_field)
        )
        return _item(ItemType.USER_IDENTITY_RQ, body)


@dataclass(frozen=True, slots=True)
class UserIdentityAc:
    """User Identity Sub-Item in an A-ASSOCIATE-AC (0x59)."""

    server_response: bytes

    def encode(self) -> bytes:
        return _item(ItemType.USER_IDENTITY_AC, _u16_prefixed(self.server_response))


@dataclass(frozen=True, slots=True)
class UnknownItem:
    """An item or sub-item whose type PS3.8/PS3.7 does not define (or that is out of place)."""

    item_type: int
    data: bytes
    second_byte: int = 0

    def encode(self) -> bytes:
        return _item(self.item_type, self.data, self.second_byte)


SubItem = (
    MaximumLength
    | ImplementationClassUid
    | AsynchronousOperationsWindow
    | RoleSelection
    | ImplementationVersionName
    | SopClassExtendedNegotiation
    | SopClassCommonExtendedNegotiation
    | UserIdentityRq
    | UserIdentityAc
    | UnknownItem
)


@dataclass(frozen=True, slots=True)
class UserInformation:
    """User Information Item (0x50) and its sub-items, in wire order."""

    sub_items: tuple[SubItem, ...]

    def encode(self) -> bytes:
        return _item(ItemType.USER_INFORMATION, b"".join(s.encode() for s in self.sub_items))

    def _first(self, kind: type[SubItem]) -> SubItem | None:
        for sub in self.sub_items:
            if isinstance(sub, kind):
                return sub
        return None

    @property
    def maximum_length(self) -> int | None:
        sub = self._first(MaximumLength)
        return sub.maximum_length if isinstance(sub, MaximumLength) else None

    @property
    def implementation_class_uid(self) -> str | None:
        sub = self._first(ImplementationClassUid)
        return sub.uid if isinstance(sub, ImplementationClassUid) else None

    @property
    def implementation_version_name(self) -> str | None:
        sub = self._first(ImplementationVersionName)
        return sub.name if isinstance(sub, ImplementationVersionName) else None

    @property
    def async_window(self) -> AsynchronousOperationsWindow | None:
        sub = self._first(AsynchronousOperationsWindow)
        return sub if isinstance(sub, AsynchronousOperationsWindow) else None

    @property
    def user_identity(self) -> UserIdentityRq | None:
        sub = self._first(UserIdentityRq)
        return sub if isinstance(sub, UserIdentityRq) else None

    @property
    def user_identity_response(self) -> UserIdentityAc | None:
        sub = self._first(UserIdentityAc)
        return sub if isinstance(sub, UserIdentityAc) else None

    @property
    def role_selections(self) -> tuple[RoleSelection, ...]:
        return tuple(s for s in self.sub_items if isinstance(s, RoleSelection))

    @property
    def extended_negotiations(self) -> tuple[SopClassExtendedNegotiation, ...]:
        return tuple(s for s in self.sub_items if isinstance(s, SopClassExtendedNegotiation))

    @property
    def common_extended_negotiations(self) -> tuple[SopClassCommonExtendedNegotiation, ...]:
        return tuple(s for s in self.sub_items if isinstance(s, SopClassCommonExtendedNegotiation))

    @property
    def unknown(self) -> tuple[UnknownItem, ...]:
        return tuple(s for s in self.sub_items if isinstance(s, UnknownItem))


# --- decoding ------------------------------------------------------------------------------


def iter_items(
    data: bytes, base: int, defects: list[Defect], *, cut: bool = False, partial: bool = False
) -> Iterator[tuple[int, int, bytes, int]]:
    """Yield ``(type, second_byte, body, offset)`` for each item in ``data``.

    ``base`` is the offset of ``data`` within the PDU, for defect offsets. A truncated item
    is reported and ends the walk; with ``cut`` (``data`` ends where the capture lost the
    rest) it only ends the walk: that item was not captured whole, nothing says it is
    malformed. With ``partial`` too, the captured start of that item's body is yielded
    last (for tools that must rewrite every captured byte of a field, not decode it).
    """
    pos = 0
    end = len(data)
    while pos < end:
        if end - pos < 4:
            if not cut:
                defects.append(Defect(base + pos, f"{end - pos} stray byte(s) after the last item"))
            return
        item_type, second, length = _ITEM_HEADER.unpack_from(data, pos)
        if pos + 4 + length > end:
            if cut:
                if partial:
                    yield item_type, second, data[pos + 4 : end], base + pos
                return
            defects.append(
                Defect(
                    base + pos,
                    f"item 0x{item_type:02X} declares length {length} but only "
                    f"{end - pos - 4} byte(s) remain",
                )
            )
            return
        yield item_type, second, data[pos + 4 : pos + 4 + length], base + pos
        pos += 4 + length


def _bytes_field(
    body: bytes, pos: int, base: int, what: str, defects: list[Defect]
) -> tuple[bytes, int]:
    """Read a 2-byte-length-prefixed field at ``pos``; return it and the new position."""
    if pos + 2 > len(body):
        defects.append(Defect(base + pos, f"{what}: length field missing"))
        return b"", len(body)
    (n,) = _U16.unpack_from(body, pos)
    if pos + 2 + n > len(body):
        defects.append(Defect(base + pos, f"{what}: declared length {n} exceeds the item"))
        return bytes(body[pos + 2 :]), len(body)
    return bytes(body[pos + 2 : pos + 2 + n]), pos + 2 + n


def _uid_field(
    body: bytes, pos: int, base: int, what: str, defects: list[Defect]
) -> tuple[str, int]:
    """Read a 2-byte-length-prefixed UID at ``pos``; return it and the new position."""
    raw, pos = _bytes_field(body, pos, base, what, defects)
    return uid_text(raw), pos


def decode_sub_item(
    item_type: int, second: int, body: bytes, offset: int, defects: list[Defect]
) -> SubItem:
    """Decode one user information sub-item; ``offset`` is where its header starts."""
    base = offset + 4
    if item_type == ItemType.MAXIMUM_LENGTH:
        if len(body) != 4:
            defects.append(Defect(offset, f"Maximum Length sub-item has length {len(body)}, not 4"))
            if len(body) < 4:
                return UnknownItem(item_type, bytes(body), second)
        return MaximumLength(_U32.unpack_from(body, 0)[0])
    if item_type == ItemType.IMPLEMENTATION_CLASS_UID:
        return ImplementationClassUid(uid_text(body))
    if item_type == ItemType.ASYNCHRONOUS_OPERATIONS_WINDOW:
        if len(body) != 4:
            defects.append(
                Defect(offset, f"Asynchronous Operations Window has length {len(body)}, not 4")
            )
            if len(body) < 4:
                return UnknownItem(item_type, bytes(body), second)
        invoked, performed = _ASYNC.unpack_from(body, 0)
        return AsynchronousOperationsWindow(invoked, performed)
    if item_type == ItemType.SCP_SCU_ROLE_SELECTION:
        uid, pos = _uid_field(body, 0, base, "Role Selection SOP class UID", defects)
        if pos + 2 > len(body):
            defects.append(Defect(base + pos, "Role Selection is missing its SCU/SCP role bytes"))
            return RoleSelection(uid, 0, 0)
        if pos + 2 < len(body):
            defects.append(Defect(base + pos + 2, "Role Selection has trailing bytes"))
        return RoleSelection(uid, body[pos], body[pos + 1])
    if item_type == ItemType.IMPLEMENTATION_VERSION_NAME:
        if not 1 <= len(body) <= 16:
            defects.append(
                Defect(offset, f"Implementation Version Name is {len(body)} bytes (1-16 allowed)")
            )
        return ImplementationVersionName(bytes(body).rstrip(b"\x00 ").decode("ascii", "replace"))
    if item_type == ItemType.SOP_CLASS_EXTENDED_NEGOTIATION:
        uid, pos = _uid_field(body, 0, base, "Extended Negotiation SOP class UID", defects)
        return SopClassExtendedNegotiation(uid, bytes(body[pos:]))
    if item_type == ItemType.SOP_CLASS_COMMON_EXTENDED_NEGOTIATION:
        sop, pos = _uid_field(body, 0, base, "Common Extended Negotiation SOP class UID", defects)
        service, pos = _uid_field(
            body, pos, base, "Common Extended Negotiation service class UID", defects
        )
        related_raw, pos = _bytes_field(body, pos, base, "Related General SOP Class list", defects)
        related: list[str] = []
        rpos = 0
        while rpos < len(related_raw):
            uid, rpos = _uid_field(
                related_raw, rpos, base, "Related General SOP Class UID", defects
            )
            related.append(uid)
        return SopClassCommonExtendedNegotiation(sop, service, tuple(related), second)
    if item_type == ItemType.USER_IDENTITY_RQ:
        if len(body) < 2:
            defects.append(Defect(offset, "User Identity sub-item is too short"))
            return UnknownItem(item_type, bytes(body), second)
        primary, pos = _bytes_field(body, 2, base, "User Identity primary field", defects)
        secondary, pos = _bytes_field(body, pos, base, "User Identity secondary field", defects)
        return UserIdentityRq(body[0], bool(body[1]), primary, secondary)
    if item_type == ItemType.USER_IDENTITY_AC:
        response, _ = _bytes_field(body, 0, base, "User Identity server response", defects)
        return UserIdentityAc(response)
    defects.append(
        Defect(
            offset, f"unknown user information sub-item type 0x{item_type:02X} kept as raw bytes"
        )
    )
    return UnknownItem(item_type, bytes(body), second)


def decode_user_information(
    body: bytes, offset: int, defects: list[Defect], *, cut: bool = False
) -> UserInformation:
    """Decode the body of a User Information Item that starts at ``offset`` (``cut``: only
    the start of it was captured; the sub-items captured whole are decoded)."""
    subs = [
        decode_sub_item(t, s, b, o, defects)
        for t, s, b, o in iter_items(body, offset + 4, defects, cut=cut)
    ]
    return UserInformation(tuple(subs))


def decode_context_rq(body: bytes, offset: int, defects: list[Defect]) -> PresentationContextRq:
    """Decode the body of a Presentation Context Item (0x20) that starts at ``offset``."""
    if len(body) < 4:
        defects.append(Defect(offset, "Presentation Context item is shorter than 4 bytes"))
        return PresentationContextRq(body[0] if body else 0, None, ())
    context_id = body[0]
    abstract: str | None = None
    transfers: list[str] = []
    for t, _s, sub, o in iter_items(body[4:], offset + 8, defects):
        if t == ItemType.ABSTRACT_SYNTAX:
            if abstract is not None:
                defects.append(Defect(o, f"context {context_id} has more than one abstract syntax"))
            abstract = uid_text(sub)
        elif t == ItemType.TRANSFER_SYNTAX:
            transfers.append(uid_text(sub))
        else:
            defects.append(
                Defect(o, f"unexpected sub-item 0x{t:02X} in presentation context {context_id}")
            )
    if abstract is None:
        defects.append(Defect(offset, f"context {context_id} has no abstract syntax"))
    if not transfers:
        defects.append(Defect(offset, f"context {context_id} proposes no transfer syntax"))
    if context_id % 2 == 0:
        defects.append(
            Defect(offset, f"context ID {context_id} is even (PS3.8 requires odd 1-255)")
        )
    return PresentationContextRq(context_id, abstract, tuple(transfers))


def decode_context_ac(body: bytes, offset: int, defects: list[Defect]) -> PresentationContextAc:
    """Decode the body of a Presentation Context Item (0x21) that starts at ``offset``."""
    if len(body) < 4:
        defects.append(Defect(offset, "Presentation Context item is shorter than 4 bytes"))
        return PresentationContextAc(body[0] if body else 0, 2, None)
    context_id, result = body[0], body[2]
    transfer: str | None = None
    for t, _s, sub, o in iter_items(body[4:], offset + 8, defects):
        if t == ItemType.TRANSFER_SYNTAX:
            if transfer is not None:
                defects.append(
                    Defect(o, f"context {context_id} accepts more than one transfer syntax")
                )
            else:
                transfer = uid_text(sub)
        else:
            defects.append(
                Defect(o, f"unexpected sub-item 0x{t:02X} in presentation context {context_id}")
            )
    return PresentationContextAc(context_id, result, transfer)
