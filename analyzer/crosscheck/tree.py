"""Reading tshark's output: a line of its field output, and the DICOM layers of its tree.

Pure functions over text and the dicts of tshark's JSON tree (``-T json``, duplicate keys
merged into lists, as pyshark asks for them); every value may be crafted, so nothing here
trusts a shape: a missing or malformed field reads as None.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping, Sequence

from .records import Address, AssociateFields, Command, ContextItem, FrameRow, PduContent

__all__ = ["FIELDS", "frame_row", "pdu_contents"]

#: tshark's field output, one column each (``-E occurrence=a``, several values joined by ``,``).
FIELDS = (
    "frame.number",
    "ip.src",
    "ipv6.src",
    "tcp.srcport",
    "ip.dst",
    "ipv6.dst",
    "tcp.dstport",
    "dicom.pdu.type",
    "dicom.pdu.len",
    "dicom.pdv.ctx",
    "dicom.pdv.flags",
    "dicom.pdv.len",
    "frame.len",
    "frame.cap_len",
    "tcp.analysis.out_of_order",
    "_ws.malformed",
    "_ws.expert.message",
    "_ws.expert.severity",
)

# Control characters, so that no value (an expert message) can hold one.
_SEPARATOR = "\x1e"
_AGGREGATOR = "\x1f"
_ERROR = 0x00800000  # PI_ERROR, the severity of tshark's "malformed" expert infos
_MESSAGE = 160  # characters kept of an expert message


def field_options() -> list[str]:
    """tshark's options for the field output :func:`frame_row` reads."""
    argv = ["-T", "fields", "-E", "occurrence=a", "-E", f"aggregator={_AGGREGATOR}"]
    argv += ["-E", f"separator={_SEPARATOR}"]
    for name in FIELDS:
        argv += ["-e", name]
    return argv


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    try:
        return int(text, 16) if text[:2].lower() == "0x" else int(text)
    except ValueError:
        return None


def _ints(text: str) -> list[int]:
    return [v for v in map(_int, text.split(_AGGREGATOR)) if v is not None] if text else []


def _address(ip4: str, ip6: str, port: str) -> Address | None:
    # The innermost header (tunnels list the outer one first).
    ip = (ip4 or ip6).split(_AGGREGATOR)[-1]
    number = _int(port.split(_AGGREGATOR)[-1]) if port else None
    if not ip or number is None:
        return None
    try:
        return ipaddress.ip_address(ip).compressed, number
    except ValueError:
        return None


def frame_row(line: str) -> FrameRow | None:
    """One line of the field output (:data:`FIELDS`), or None if it is not one."""
    values = line.rstrip("\r\n").split(_SEPARATOR)
    if len(values) != len(FIELDS):
        return None
    (
        number,
        ip4_src,
        ip6_src,
        sport,
        ip4_dst,
        ip6_dst,
        dport,
        types,
        lengths,
        ctxs,
        flags,
        pdv_lengths,
        frame_len,
        cap_len,
        out_of_order,
        malformed,
        messages,
        severities,
    ) = values
    frame = _int(number)
    if frame is None:
        return None
    pdu_types, pdu_lengths = _ints(types), _ints(lengths)
    pdv_ctx, pdv_flags, pdv_len = _ints(ctxs), _ints(flags), _ints(pdv_lengths)
    wire, captured = _int(frame_len), _int(cap_len)
    return FrameRow(
        frame=frame,
        src=_address(ip4_src, ip6_src, sport),
        dst=_address(ip4_dst, ip6_dst, dport),
        pdus=tuple(zip(pdu_types, pdu_lengths, strict=False)),
        pdvs=tuple((c, f & 0x03, n) for c, f, n in zip(pdv_ctx, pdv_flags, pdv_len, strict=False)),
        truncated=wire is not None and captured is not None and captured < wire,
        out_of_order=bool(out_of_order),
        malformed=_malformed(malformed, messages, severities),
    )


def _malformed(flag: str, messages: str, severities: str) -> str | None:
    """What tshark said when it found the frame malformed: its first error, or None."""
    errors = [
        message
        for message, severity in zip(
            messages.split(_AGGREGATOR), severities.split(_AGGREGATOR), strict=False
        )
        if (_int(severity) or 0) >= _ERROR
    ]
    if not errors and not flag:
        return None
    return (errors[0] if errors else "malformed")[:_MESSAGE]


# --- the tree ---------------------------------------------------------------------------

Tree = Mapping[str, object]

_UID_IN_NAME = re.compile(r"\(([0-9.]+)\)\s*$")


def uid(text: str | None) -> str | None:
    """A syntax as tshark shows it (``CT Image Storage (1.2.840.10008.5.1.4.1.1.2)``, or a
    bare UID) reduced to the UID."""
    if text is None:
        return None
    text = text.strip(" \x00")
    m = _UID_IN_NAME.search(text)
    if m:
        return m.group(1)
    return text.split(" (", 1)[0] if text[:1].isdigit() else text


def ae(text: str | None) -> str | None:
    """An AE title or a short string, without its padding (spaces, NULs)."""
    return None if text is None else text.strip(" \x00")


def _nodes(value: object, ordered: list[bool] | None = None) -> Iterator[Tree]:
    """Every dict under ``value`` (itself included), depth first in document order.

    tshark merges sub-trees of the same label into a list; ``ordered[0]`` is set to False
    when that happened, since the order across labels is then no longer the wire order.
    """
    stack: list[object] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            yield node
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            if ordered is not None and any(isinstance(v, Mapping) for v in node):
                ordered[0] = False
            stack.extend(reversed(node))


def _values(node: Tree, name: str) -> list[str]:
    value = node.get(name)
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _first(tree: object, name: str) -> str | None:
    for node in _nodes(tree):
        values = _values(node, name)
        if values:
            return values[0]
    return None


def _all(tree: object, name: str) -> list[str]:
    return [v for node in _nodes(tree) for v in _values(node, name)]


def _context(item: Tree) -> ContextItem:
    ordered = [True]
    syntaxes = [
        uid(v) or ""
        for node in _nodes(item, ordered)
        for v in _values(node, "dicom.pctx.xfer.syntax")
    ]
    return ContextItem(
        id=_int(_first(item, "dicom.pctx.id")),
        result=_int(_first(item, "dicom.pctx.result")),
        abstract_syntax=uid(_first(item, "dicom.pctx.abss.syntax")),
        transfer_syntaxes=tuple(syntaxes),
        ordered=ordered[0],
    )


def _associate(pdu: Tree) -> AssociateFields:
    contexts = [
        _context(node)
        for node in _nodes(pdu)
        if _int(next(iter(_values(node, "dicom.assoc.item.type")), None)) in (0x20, 0x21)
    ]
    return AssociateFields(
        calling_ae=ae(_first(pdu, "dicom.assoc.ae.calling")),
        called_ae=ae(_first(pdu, "dicom.assoc.ae.called")),
        contexts=tuple(contexts),
        max_pdu_length=_int(_first(pdu, "dicom.max_pdu_len")),
        implementation_class_uid=ae(_first(pdu, "dicom.userinfo.uid")),
        implementation_version_name=ae(_first(pdu, "dicom.userinfo.version")),
    )


_VALUE_FIELDS = ("dicom.tag.value.16u", "dicom.tag.value.32u", "dicom.tag.value.str")


def _command(pdv: Tree) -> Command | None:
    """The command set in a PDV node whose flags mark a command fragment, if tshark decoded
    one there (group 0000 tags with ``-o dicom.tag_tree:TRUE``)."""
    flags = _int(next(iter(_values(pdv, "dicom.pdv.flags")), None))
    if flags is None or not flags & 0x01:
        return None
    tags: dict[int, str] = {}
    for node in _nodes(pdv):
        tag = _int(next(iter(_values(node, "dicom.tag")), None))
        if tag is None or tag >> 16 != 0 or tag in tags:
            continue
        for name in _VALUE_FIELDS:
            values = _values(node, name)
            if values:
                tags[tag] = values[0]
                break
    if 0x0100 not in tags:
        return None
    return Command(
        command_field=_int(tags.get(0x0100)),
        message_id=_int(tags.get(0x0110)),
        message_id_being_responded_to=_int(tags.get(0x0120)),
        status=_int(tags.get(0x0900)),
        sop_class_uid=uid(tags.get(0x0002) or tags.get(0x0003)),
    )


def _codes(pdu: Tree, prefix: str, *names: str) -> list[int | None]:
    """The numeric fields ``prefix.name`` of a PDU, in the order named."""
    return [_int(_first(pdu, f"{prefix}.{name}")) for name in names]


def pdu_contents(layers: Sequence[object]) -> tuple[PduContent, ...]:
    """The PDUs of one frame from its DICOM layers (one tree per PDU, in order)."""
    out: list[PduContent] = []
    for pdu in layers:
        if not isinstance(pdu, Mapping):
            continue
        pdu_type = _int(next(iter(_values(pdu, "dicom.pdu.type")), None))
        length = _int(next(iter(_values(pdu, "dicom.pdu.len")), None))
        if pdu_type is None or length is None:
            continue
        if pdu_type in (1, 2):
            content = PduContent(pdu_type=pdu_type, length=length, associate=_associate(pdu))
        elif pdu_type == 3:
            result, source, reason = _codes(pdu, "dicom.assoc.reject", "result", "source", "reason")
            content = PduContent(pdu_type=pdu_type, length=length, reject=(result, source, reason))
        elif pdu_type == 7:
            source, reason = _codes(pdu, "dicom.assoc.abort", "source", "reason")
            content = PduContent(pdu_type=pdu_type, length=length, abort=(source, reason))
        else:
            commands = [
                c
                for node in _nodes(pdu)
                if "dicom.pdv.ctx" in node
                for c in [_command(node)]
                if c is not None
            ]
            content = PduContent(pdu_type=pdu_type, length=length, commands=tuple(commands))
        out.append(content)
    return tuple(out)
