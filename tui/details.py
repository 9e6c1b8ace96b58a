"""What the association and exchange views show, as plain rows (headless: no Textual).

Every function returns text with a style name (``ok``, ``warning``, ``failed``, ``muted``
or ``""``), so that the widgets only choose colours. Mismatches between what one side
proposed and the other accepted are marked here, where the reasons can be read and tested.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pydicom.datadict import keyword_for_tag

from analyzer import redact
from analyzer.model import Association, DimseMessage, Exchange, UserInfo
from analyzer.names import context_result_text, uid_name, user_identity_type_text
from analyzer.reports.common import duration_text, iso_time, size_text

from .diagram import rel_time
from .timeline import STATUS_LOOK


@dataclass(frozen=True, slots=True)
class ContextRow:
    """One presentation context of the negotiation matrix."""

    id: int
    abstract_syntax: str
    proposed: tuple[str, ...]
    result: str
    accepted: str
    roles: str
    look: str
    why: str = ""
    """Why the row is marked (empty when it is fine)."""


def context_rows(a: Association) -> list[ContextRow]:
    """The presentation-context matrix: what was proposed, and the answer with its meaning."""
    rows = []
    for c in a.contexts:
        look, why = "ok", ""
        if c.result is None:
            result = "(no answer)"
            look = "warning" if a.ac_ts is None and a.outcome is not None else "muted"
        else:
            result = f"{c.result} {context_result_text(c.result)}"
            if c.result != 0:
                look, why = "failed", "rejected"
        accepted = uid_name(c.accepted_transfer_syntax) if c.accepted_transfer_syntax else "-"
        if (
            c.accepted
            and c.proposed
            and c.accepted_transfer_syntax not in c.proposed_transfer_syntaxes
        ):
            look, why = "failed", "accepted a transfer syntax that was not proposed"
        if not c.proposed:
            look, why = "warning", "only seen in the A-ASSOCIATE-AC (request not captured)"
        proposed_roles = (c.scu_role, c.scp_role)
        accepted_roles = (c.accepted_scu_role, c.accepted_scp_role)
        roles = _roles(proposed_roles, accepted_roles)
        if proposed_roles != (None, None) and c.accepted and accepted_roles != proposed_roles:
            look = "failed" if look == "failed" else "warning"
            why = why or "roles accepted differ from those proposed"
        rows.append(
            ContextRow(
                id=c.id,
                abstract_syntax=uid_name(c.abstract_syntax)
                if c.abstract_syntax
                else "(not captured)",
                proposed=tuple(uid_name(t) for t in c.proposed_transfer_syntaxes)
                or ("(not captured)",),
                result=result,
                accepted=accepted,
                roles=roles,
                look=look,
                why=why,
            )
        )
    return rows


_Roles = tuple[int | None, int | None]


def _roles(proposed: _Roles, accepted: _Roles) -> str:
    if proposed == (None, None):
        return "-"
    answer = "(not answered)" if accepted == (None, None) else _role(accepted)
    return f"{_role(proposed)} → {answer}"


@dataclass(frozen=True, slots=True)
class InfoRow:
    """One line of the user-information comparison."""

    field: str
    requestor: str
    acceptor: str
    look: str = ""


def user_info_rows(a: Association) -> list[InfoRow]:
    """User information of both sides, side by side. Never a passcode."""
    rq, ac = a.requestor_info, a.acceptor_info
    if rq is None and ac is None:
        return []
    uid, version = "implementation_class_uid", "implementation_version_name"
    rows = [
        InfoRow("Max PDU length", _max_pdu(rq), _max_pdu(ac), "warning" if _no_max(rq, ac) else ""),
        InfoRow("Implementation class UID", _get(rq, uid), _get(ac, uid)),
        InfoRow("Implementation version", _get(rq, version), _get(ac, version)),
    ]
    rq_win, ac_win = _window(rq), _window(ac)
    if rq_win != "-" or ac_win != "-":
        look = "warning" if rq_win != "-" and ac_win != rq_win else ""
        rows.append(InfoRow("Async operations window", rq_win, ac_win, look))
    rq_roles = {r.sop_class_uid: (r.scu_role, r.scp_role) for r in rq.role_selections} if rq else {}
    ac_roles = {r.sop_class_uid: (r.scu_role, r.scp_role) for r in ac.role_selections} if ac else {}
    for uid in sorted(rq_roles.keys() | ac_roles.keys()):
        p, q = rq_roles.get(uid), ac_roles.get(uid)
        look = "warning" if p != q else ""
        rows.append(InfoRow(f"Role selection {uid_name(uid)}", _role(p), _role(q), look))
    for by_requestor, info in ((True, rq), (False, ac)):
        if info is None:
            continue
        for ext in info.extended_negotiation:
            text = f"{uid_name(ext.sop_class_uid)}: {ext.application_information.hex(' ')}"
            rows.append(_one_side("Extended negotiation", text, by_requestor))
        for com in info.common_extended_negotiation:
            text = f"{uid_name(com.sop_class_uid)} in {uid_name(com.service_class_uid)}"
            rows.append(_one_side("Common extended negotiation", text, by_requestor))
        for item in info.unknown_items:
            text = f"item 0x{item.item_type:02X}, {len(item.data)} B"
            rows.append(_one_side("Unknown sub-item", text, by_requestor, "warning"))
    identity = _identity(rq)
    answered = bool(ac and ac.user_identity_response)
    if identity != "-" or answered:
        asked = bool(rq and rq.user_identity_response_requested)
        look = "warning" if asked and not answered else ""
        rows.append(InfoRow("User identity", identity, "response sent" if answered else "-", look))
    return rows


def _one_side(field: str, text: str, by_requestor: bool, look: str = "") -> InfoRow:
    """A row for something only one side said."""
    return InfoRow(field, *((text, "-") if by_requestor else ("-", text)), look)


def _get(info: UserInfo | None, name: str) -> str:
    value = getattr(info, name, None) if info else None
    return str(value) if value else "-"


def _max_pdu(info: UserInfo | None) -> str:
    if info is None:
        return "-"
    if info.max_pdu_length is None:
        return "(not sent)"
    return "0 (unlimited)" if info.max_pdu_length == 0 else str(info.max_pdu_length)


def _no_max(rq: UserInfo | None, ac: UserInfo | None) -> bool:
    return any(i is not None and i.max_pdu_length is None for i in (rq, ac))


def _window(info: UserInfo | None) -> str:
    if info is None or info.async_window is None:
        return "-"
    invoked, performed = info.async_window
    return f"invoked {invoked}, performed {performed}"


def _role(pair: _Roles | None) -> str:
    return "-" if pair is None else f"SCU={pair[0]} SCP={pair[1]}"


def _identity(info: UserInfo | None) -> str:
    if info is None or info.user_identity_type is None:
        return "-"
    text = user_identity_type_text(info.user_identity_type)
    if info.user_identity_username and info.user_identity_type in (1, 2):
        text += f" '{info.user_identity_username}'"
    if info.user_identity_has_passcode:
        text += ", passcode sent (not shown)"
    if info.user_identity_response_requested:
        text += ", response requested"
    return text


# --- one exchange ---------------------------------------------------------------------------

_COMMAND_TAGS = {
    "command_field": 0x0100,
    "message_id": 0x0110,
    "message_id_being_responded_to": 0x0120,
    "affected_sop_class_uid": 0x0002,
    "requested_sop_class_uid": 0x0003,
    "affected_sop_instance_uid": 0x1000,
    "requested_sop_instance_uid": 0x1001,
    "priority": 0x0700,
    "move_destination": 0x0600,
    "dataset_type": 0x0800,
    "status": 0x0900,
    "offending_element": 0x0901,
    "error_comment": 0x0902,
    "error_id": 0x0903,
    "event_type_id": 0x1002,
    "action_type_id": 0x1008,
    "remaining": 0x1020,
    "completed": 0x1021,
    "failed": 0x1022,
    "warning": 0x1023,
    "move_originator_ae": 0x1030,
    "move_originator_message_id": 0x1031,
}
"""Command set fields in PS3.7 Annex E order, with their element numbers in group 0000."""
_PRIORITY = {0: "MEDIUM", 1: "HIGH", 2: "LOW"}


def command_rows(msg: DimseMessage, exchange: Exchange | None = None) -> list[tuple[str, str, str]]:
    """``(tag, name, value)`` for every field the command set carried."""
    cmd = msg.command
    rows = []
    for name, element in _COMMAND_TAGS.items():
        value = getattr(cmd, name, None)
        if value is None or value == ():
            continue
        if redact.phi_redacted() and redact.is_phi(element):
            shown = redact.uid(str(value)) or "" if name.endswith("_uid") else redact.REDACTED
        elif name.endswith("_uid") and isinstance(value, str):
            shown = f"{value} ({uid_name(value)})" if uid_name(value) != value else value
        elif name == "command_field":
            shown = f"0x{value:04X} {cmd.label}"
        elif name == "dataset_type":
            shown = f"0x{value:04X} ({'data set follows' if cmd.has_dataset else 'no data set'})"
        elif name == "status":
            meaning = exchange.status_meaning if exchange and exchange.final is msg else ""
            shown = f"0x{value:04X} {meaning}".rstrip()
        elif name == "priority":
            shown = f"{value} {_PRIORITY.get(value, '')}".rstrip()
        elif name == "offending_element":
            shown = ", ".join(f"({t >> 16:04X},{t & 0xFFFF:04X})" for t in value)
        else:
            shown = str(value)
        rows.append((f"(0000,{element:04X})", keyword_for_tag(element) or name, shown))
    return rows


def exchange_rows(e: Exchange, a: Association | None) -> list[tuple[str, str, str]]:
    """``(field, value, look)`` lines summing up one exchange."""
    start = a.start_ts if a else e.start_ts
    status = "no final response" if e.final is None else f"0x{e.status or 0:04X} {e.status_meaning}"
    look = STATUS_LOOK.get(e.status_category, "warning")
    sender = "requestor → acceptor" if e.from_requestor else "acceptor → requestor"
    rows = [
        ("Service", f"{e.service} ({sender})", ""),
        ("Message ID", "-" if e.message_id is None else str(e.message_id), ""),
        ("SOP class", f"{uid_name(e.sop_class)} ({e.sop_class})" if e.sop_class else "-", ""),
        ("SOP instance", redact.uid(e.sop_instance) or "-", ""),
        ("Status", f"{status} [{e.status_category}]", look),
    ]
    if e.error_comment:
        rows.append(("Error comment", e.error_comment, "failed"))
    if e.pending:
        rows.append(("Pending responses", str(e.pending), ""))
    if e.suboperations is not None:
        r, c, f, w = e.suboperations
        rows.append(
            (
                "Sub-operations",
                f"remaining {r}, completed {c}, failed {f}, warning {w}",
                "failed" if f else "",
            )
        )
    if e.cancelled:
        rows.append(("Cancelled", "yes (C-CANCEL-RQ seen)", "warning"))
    rows.append(
        ("Latency", duration_text(e.latency_ns) + "  (request's last byte → final response)", "")
    )
    rows.append(
        ("Duration", duration_text(e.duration_ns) + "  (request's first byte → final response)", "")
    )
    if e.outstanding_before:
        rows.append(
            ("Outstanding before", f"{e.outstanding_before} request(s) not yet answered", "")
        )
    for title, msg in (("Request", e.request), ("Final response", e.final)):
        if msg is not None:
            rows.append((title, message_text(msg, start), "" if msg.complete else "warning"))
    return rows


def message_text(msg: DimseMessage, start: int) -> str:
    """When, where and how big one message was."""
    frames = f"frames {msg.frame}-{msg.end_frame}" if msg.frame is not None else "frames ?"
    text = f"{rel_time(msg.ts - start)} ({iso_time(msg.ts)}), {frames}"
    text += f", command {size_text(len(msg.command.raw))}"
    ds = msg.dataset
    if ds is not None:
        text += f", data set {size_text(ds.length)} ({uid_name(ds.transfer_syntax)}"
        text += ", guessed" if ds.sniffed else ""
        text += f"; kept {size_text(len(ds.kept))}" if ds.truncated else ""
        text += f"; {size_text(ds.missing_bytes)} missing" if ds.missing_bytes else ""
        text += ")"
    if not msg.complete:
        text += " — incomplete"
    return text


# --- bytes ------------------------------------------------------------------------------------

HEX_BYTES = 16


@dataclass(frozen=True, slots=True)
class HexSection:
    """A titled run of bytes in the hex view."""

    title: str
    data: bytes

    @property
    def lines(self) -> int:
        return 1 + max(1, -(-len(self.data) // HEX_BYTES))


def hex_line(data: bytes, index: int) -> str:
    """Line ``index`` of a classic hex dump: offset, 16 bytes in hex, then as ASCII."""
    chunk = data[index * HEX_BYTES : (index + 1) * HEX_BYTES]
    hexes = " ".join(f"{b:02x}" for b in chunk)
    text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
    return f"{index * HEX_BYTES:08x}  {hexes:<47}  {text}"


def hex_doc_line(sections: list[HexSection], y: int) -> tuple[str, str] | None:
    """Line ``y`` of the hex view over ``sections`` as (text, style); None past the end."""
    for s in sections:
        if y < s.lines:
            if y == 0:
                return f"── {s.title} ({size_text(len(s.data))})", "title"
            if not s.data:
                return "(none kept)", "muted"
            return hex_line(s.data, y - 1), ""
        y -= s.lines
    return None


def hex_sections(e: Exchange) -> list[HexSection]:
    """The bytes the model kept for one exchange: command sets and data set prefixes."""
    out = []
    for title, msg in ((f"{e.service}-RQ", e.request), (f"{e.service}-RSP", e.final)):
        if msg is None:
            continue
        out.append(HexSection(f"{title} command set", redact.mask(msg.command.raw, implicit=True)))
        if msg.dataset is not None:
            ds = msg.dataset
            kept = "kept prefix" if ds.truncated else "whole"
            shown = redact.mask(ds.kept, **redact.encoding(ds.kept, ds.transfer_syntax))
            out.append(HexSection(f"{title} data set, {kept} of {size_text(ds.length)}", shown))
    return out


def iter_lines(sections: list[HexSection]) -> Iterator[str]:
    """Every line of the hex view (for tests and for search)."""
    y = 0
    while (line := hex_doc_line(sections, y)) is not None:
        yield line[0]
        y += 1
