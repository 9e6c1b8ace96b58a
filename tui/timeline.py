"""One association's timeline as rows of a sequence diagram (headless: no Textual here).

:func:`build` merges the PDU records, the DIMSE exchanges, gaps, violations, notes and
findings of one association into rows in time order. A run of P-DATA-TF PDUs that carries
one DIMSE message (its command set and its data set) becomes one row with a PDU count and a
size; a pause of :data:`SILENCE_NS` or more between two rows becomes a silence row. Without
PDU records (a store that does not keep them) the rows come from the association record and
its exchanges. :func:`line` lays a row out as text for a given width.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from analyzer.model import (
    Association,
    DimseMessage,
    Exchange,
    Finding,
    Gap,
    Note,
    Outcome,
    PduRecord,
    Severity,
    ViolationRecord,
)
from analyzer.names import pdu_name, uid_name
from analyzer.reports.common import duration_text, outcome_text, size_text
from analyzer.textsafe import printable

from .core import SEVERITY_MARK

SILENCE_NS = 1_000_000_000
"""A pause at least this long between two rows is shown as a silence row."""

_PDU_LOOK = {1: "assoc", 2: "assoc", 3: "failed", 5: "assoc", 6: "assoc", 7: "failed"}
STATUS_LOOK = {"Success": "ok", "Warning": "warning", "Failure": "failed", "Cancel": "warning"}
"""The look of a DIMSE status category."""
SEVERITY_LOOK = {Severity.ERROR: "failed", Severity.WARNING: "warning", Severity.INFO: "info"}
"""The look of a finding's severity."""
_MULTI_RESPONSE = {"C-FIND", "C-GET", "C-MOVE"}


class Kind(StrEnum):
    """What a timeline row shows."""

    START = "start"
    PDU = "pdu"
    MESSAGE = "message"
    SILENCE = "silence"
    GAP = "gap"
    VIOLATION = "violation"
    NOTE = "note"
    FINDING = "finding"
    END = "end"


@dataclass(slots=True, eq=False)
class Row:
    """One line of the timeline. ``from_requestor`` None: not an arrow."""

    kind: Kind
    ts: int
    label: str
    from_requestor: bool | None = None
    detail: str = ""
    look: str = "pdu"
    first_frame: int | None = None
    last_frame: int | None = None
    end_ts: int | None = None
    pdus: int = 0
    bytes: int = 0
    exchange: Exchange | None = None
    message: DimseMessage | None = None
    finding: Finding | None = None

    def covers(self, frame: int) -> bool:
        if self.first_frame is None:
            return False
        last = self.last_frame if self.last_frame is not None else self.first_frame
        return self.first_frame <= frame <= last


@dataclass(slots=True, eq=False)
class _Group:
    """P-DATA-TF PDUs of one direction that carry one DIMSE message, while being read."""

    row: Row
    context_id: int
    command_bytes: int = 0
    data_bytes: int = 0
    command_done: bool = False
    data_done: bool = False


@dataclass(slots=True)
class _Builder:
    rows: list[Row] = field(default_factory=list)
    groups: list[_Group] = field(default_factory=list)
    open: dict[bool, _Group] = field(default_factory=dict)

    def pdu(self, p: PduRecord) -> None:
        if p.pdu_type != 4 or not p.pdvs:
            self.open.pop(p.from_requestor, None)
            self.rows.append(
                Row(
                    Kind.PDU,
                    p.ts,
                    pdu_name(p.pdu_type),
                    p.from_requestor,
                    size_text(p.size),
                    _PDU_LOOK.get(p.pdu_type, "pdu"),
                    p.frame,
                    p.end_frame,
                    p.end_ts,
                    1,
                    p.size,
                )
            )
            return
        counted: _Group | None = None
        for context_id, control, size in p.pdvs:
            group = self.open.get(p.from_requestor)
            if control & 1:  # command fragment: a new message unless this one is in its command
                if group is None or group.data_bytes or group.command_done:
                    group = self._start(p, context_id)
                group.command_bytes += size
                group.command_done = bool(control & 2)
            else:
                if group is None:  # data without its command (capture began mid-message)
                    group = self._start(p, context_id)
                group.data_bytes += size
                group.data_done = bool(control & 2)
            if group is not counted:
                row = group.row
                row.pdus += 1
                row.bytes += p.size
                row.last_frame = p.end_frame if p.end_frame is not None else p.frame
                row.end_ts = p.end_ts
                counted = group
            if group.data_done:
                self.open.pop(p.from_requestor, None)

    def _start(self, p: PduRecord, context_id: int) -> _Group:
        row = Row(Kind.MESSAGE, p.ts, "P-DATA-TF", p.from_requestor, look="dimse")
        row.first_frame = p.frame
        group = _Group(row, context_id)
        self.open[p.from_requestor] = group
        self.groups.append(group)
        self.rows.append(row)
        return group


def _messages(exchanges: Sequence[Exchange]) -> list[tuple[DimseMessage, Exchange, bool]]:
    """(message, its exchange, is the final response) for every message the model kept."""
    out: list[tuple[DimseMessage, Exchange, bool]] = []
    for e in exchanges:
        if e.request is not None:
            out.append((e.request, e, False))
        if e.final is not None:
            out.append((e.final, e, True))
    out.sort(key=lambda m: (m[0].ts, m[0].frame or 0))
    return out


def _match(groups: list[_Group], exchanges: Sequence[Exchange]) -> None:
    """Name each P-DATA group after the DIMSE message it carried.

    Several messages can start in one TCP segment (same time, same frame), so a group
    matches on direction, context, time, frame and the sizes of its command and data set;
    among equals a final response takes the last group (pending responses come first).
    """
    free = list(groups)
    for msg, exchange, final in _messages(exchanges):
        data = msg.dataset.length if msg.dataset else 0
        candidates = [
            g
            for g in free
            if g.row.from_requestor == msg.from_requestor
            and g.context_id == msg.context_id
            and g.row.ts == msg.ts
            and g.row.first_frame == msg.frame
            and g.command_bytes == len(msg.command.raw)
            and (g.data_bytes == data or not msg.complete)
        ] or _fallback(free, msg)
        if not candidates:
            continue
        group = candidates[-1] if final else candidates[0]
        free.remove(group)
        _name(group, msg, exchange, final)
    for group in free:  # responses the model did not keep: pending C-FIND/GET/MOVE answers
        owner = _pending_owner(group, exchanges)
        row = group.row
        row.detail = _data_detail(group)
        if owner is not None:
            row.exchange = owner
            row.label = f"{owner.service}-RSP #{owner.message_id} pending"
            row.look = "pending"
        else:
            kind = "command" if group.command_bytes else "data"
            row.label = f"P-DATA-TF ({kind}, context {group.context_id})"


def _fallback(free: list[_Group], msg: DimseMessage) -> list[_Group]:
    """Groups that may carry ``msg`` when no group matched it exactly: those starting in
    the message's frame, or, without frame numbers (a proxy writing no pcapng), the
    groups of its direction and context that are nearest to it in time."""
    same = [g for g in free if g.row.from_requestor == msg.from_requestor]
    if msg.frame is not None:
        return [g for g in same if g.row.first_frame == msg.frame]
    same = [g for g in same if g.context_id == msg.context_id] or same
    if not same:
        return []
    closest = min(abs(g.row.ts - msg.ts) for g in same)
    return [g for g in same if abs(g.row.ts - msg.ts) == closest]


def _pending_owner(group: _Group, exchanges: Sequence[Exchange]) -> Exchange | None:
    row = group.row
    for e in exchanges:
        rq = e.request
        if (
            rq is not None
            and e.service in _MULTI_RESPONSE
            and rq.from_requestor != row.from_requestor
            and rq.context_id == group.context_id
            and rq.ts <= row.ts
            and (e.final is None or row.ts <= e.final.ts)
        ):
            return e
    return None


def _name(group: _Group, msg: DimseMessage, exchange: Exchange, final: bool) -> None:
    row = group.row
    row.exchange, row.message = exchange, msg
    cmd = msg.command
    mid = cmd.message_id if cmd.message_id is not None else cmd.message_id_being_responded_to
    label = f"{cmd.label} #{mid}" if mid is not None else cmd.label
    if final:
        label += f" {exchange.status_meaning}" if exchange.status is not None else ""
        row.look = STATUS_LOOK.get(exchange.status_category, "dimse")
        if exchange.latency_ns is not None:
            label += f"  ⏱ {duration_text(exchange.latency_ns)}"
    elif exchange.sop_class:
        label += f" {uid_name(exchange.sop_class)}"
    row.label = label
    row.detail = _data_detail(group)


def _data_detail(group: _Group) -> str:
    row = group.row
    if group.data_bytes:
        return f"+data {size_text(group.data_bytes)}, {row.pdus} PDU{'s' if row.pdus > 1 else ''}"
    return size_text(row.bytes) if row.pdus == 1 else f"{row.pdus} PDUs"


def _without_pdus(a: Association, exchanges: Sequence[Exchange]) -> list[Row]:
    """Rows from the association record and its exchanges alone."""
    rows: list[Row] = []
    if a.rq_ts is not None:
        rows.append(Row(Kind.PDU, a.rq_ts, pdu_name(1), True, look="assoc", first_frame=a.rq_frame))
    if a.ac_ts is not None:
        rows.append(
            Row(Kind.PDU, a.ac_ts, pdu_name(2), False, look="assoc", first_frame=a.ac_frame)
        )
    if a.reject is not None:
        rj = a.reject
        rows.append(Row(Kind.PDU, rj.ts, pdu_name(3), False, look="failed", first_frame=rj.frame))
    for msg, exchange, final in _messages(exchanges):
        group = _Group(
            Row(Kind.MESSAGE, msg.ts, "", msg.from_requestor, look="dimse"), msg.context_id
        )
        group.row.first_frame, group.row.last_frame = msg.frame, msg.end_frame
        group.row.end_ts, group.row.pdus = msg.end_ts, 1
        group.data_bytes = msg.dataset.length if msg.dataset else 0
        _name(group, msg, exchange, final)
        if final and exchange.pending:
            group.row.detail = f"after {exchange.pending} pending"
        rows.append(group.row)
    if a.abort is not None:
        ab = a.abort
        rows.append(
            Row(
                Kind.PDU, ab.ts, pdu_name(7), ab.from_requestor, look="failed", first_frame=ab.frame
            )
        )
    return rows


def build(
    a: Association,
    pdus: Sequence[PduRecord],
    exchanges: Sequence[Exchange],
    *,
    gaps: Sequence[Gap] = (),
    violations: Sequence[ViolationRecord] = (),
    notes: Sequence[Note] = (),
    findings: Sequence[Finding] = (),
) -> list[Row]:
    """The rows of one association's timeline, in time order, their text escaped
    (:func:`~analyzer.textsafe.printable`)."""
    if pdus:
        builder = _Builder()
        for p in sorted(pdus, key=lambda p: p.ts):  # stable: same-time PDUs keep their order
            builder.pdu(p)
        _match(builder.groups, exchanges)
        traffic = builder.rows
    else:
        traffic = _without_pdus(a, exchanges)
    events: list[Row] = []
    for g in gaps:
        side = "requestor → acceptor" if g.from_requestor else "acceptor → requestor"
        events.append(
            Row(
                Kind.GAP,
                g.ts,
                f"✂ capture gap: {size_text(g.size)} missing ({side})",
                look="warning",
                first_frame=g.frame,
            )
        )
    for v in violations:
        cell = f" [{v.cell}]" if v.cell else ""
        events.append(
            Row(
                Kind.VIOLATION,
                v.ts,
                f"⚠ {v.code}: {v.text}{cell}",
                look="failed",
                first_frame=v.frame,
            )
        )
    for n in notes:
        events.append(Row(Kind.NOTE, n.ts, f"ℹ {n.text}", look="info", first_frame=n.frame))
    ordered = sorted(traffic, key=lambda r: r.ts)
    start = Row(Kind.START, a.start_ts, _start_text(a), look="muted", first_frame=a.start_frame)
    rows = [start, *_silences(a, ordered)]
    end_ts = a.end_ts
    if a.outcome is not None and end_ts is not None:
        last = max((r.end_ts or r.ts for r in ordered), default=a.start_ts)
        if end_ts - last >= SILENCE_NS:
            rows.append(_silence(last, end_ts))
        look = "ok" if a.outcome in (Outcome.RELEASED, Outcome.RELEASE_COLLISION) else "failed"
        if a.outcome in (Outcome.OPEN_AT_END, Outcome.NEVER_ASSOCIATED):
            look = "warning"
        rows.append(
            Row(Kind.END, end_ts, f"■ {outcome_text(a)}", look=look, first_frame=a.end_frame)
        )
    for f in findings:
        events.append(_finding_row(f, rows))
    # events go after the traffic row of the same instant (sorted() is stable)
    ordered = sorted(rows + events, key=lambda r: (r.ts, r.kind in _AFTER))
    for row in ordered:  # labels quote wire text (UIDs, violation and finding words)
        row.label, row.detail = printable(row.label), printable(row.detail)
    return ordered


_AFTER = {Kind.GAP, Kind.VIOLATION, Kind.NOTE, Kind.FINDING, Kind.END}


def _start_text(a: Association) -> str:
    if a.partial or not a.handshake:
        return "capture begins mid-connection"
    return f"TCP connection {a.client} → {a.server}"


def _silences(a: Association, ordered: list[Row]) -> list[Row]:
    out: list[Row] = []
    last = a.start_ts
    for row in ordered:
        if row.ts - last >= SILENCE_NS:
            out.append(_silence(last, row.ts))
        out.append(row)
        last = max(last, row.end_ts or row.ts)
    return out


def _silence(since: int, until: int) -> Row:
    return Row(
        Kind.SILENCE,
        since + 1,
        f"— {duration_text(until - since)} silence —",
        look="muted",
        end_ts=until,
    )


def _finding_row(f: Finding, rows: Sequence[Row]) -> Row:
    """A finding goes where its evidence is: its time, else its first frame's row."""
    ts = f.evidence.ts
    if ts is None:
        at = nearest(rows, f.evidence.frames, None)
        ts = rows[at].ts if rows else 0
    mark = SEVERITY_MARK[f.severity]
    return Row(
        Kind.FINDING,
        ts,
        f"{mark} {f.code}: {f.title}",
        look=SEVERITY_LOOK[f.severity],
        first_frame=f.evidence.frames[0] if f.evidence.frames else None,
        finding=f,
    )


def nearest(rows: Sequence[Row], frames: Sequence[int], ts: int | None) -> int:
    """Index of the row that shows ``frames`` (the first that covers one of them), else
    of the row closest in time to ``ts``, else 0."""
    for frame in frames:
        for i, row in enumerate(rows):
            if row.kind is not Kind.FINDING and row.covers(frame):
                return i
    if ts is not None and rows:
        return min(range(len(rows)), key=lambda i: abs(rows[i].ts - ts))
    return 0


def index_of_finding(rows: Sequence[Row], finding: Finding) -> int:
    """Index of the finding's own row, else of the row nearest its evidence."""
    for i, row in enumerate(rows):
        if row.finding is finding:
            return i
    return nearest(rows, finding.evidence.frames, finding.evidence.ts)
