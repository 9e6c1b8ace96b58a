"""One line per thing that happens, from store changes: the live logs of ``dicomtap live``
and ``dicomtap proxy``.

A store listener hands each :class:`~analyzer.store.Change` to :meth:`EventLines.lines`
and prints what comes back, stamped with its time::

    12:00:01.234 #1 started MODALITY → ARCHIVE, 10.0.0.5:51234 → 10.0.0.9:104, 2 contexts proposed
    12:00:01.236 #1 accepted 2 of 2 contexts: CT Image Storage, Verification SOP Class
    12:00:01.301 #1 C-STORE CT Image Storage: 0x0000 Success, latency 1.2 ms, 512.0 KiB
    12:00:02.110 #1 released after 876.0 ms: 4 exchanges, 2.1 MiB
    12:00:02.110 #1 WARNING Presentation context rejected [context-rejected]
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from analyzer.model import (
    CAPTURE_WIDE,
    Association,
    Detection,
    Exchange,
    Finding,
    Link,
    Outcome,
    ViolationRecord,
)
from analyzer.names import uid_name
from analyzer.store import Change, ChangeKind, Store
from analyzer.textsafe import printable

from .common import (
    calendar_seconds,
    duration_text,
    outcome_text,
    plural,
    side,
    size_text,
    status_text,
)
from .workflows import link_text, orphan

Line = tuple[int | None, str]
"""The time a line is about (capture time, ns; None: now), and its text."""

#: Accepted abstract syntaxes named on the "accepted" line.
_CONTEXT_NAMES = 4
#: Violation lines per association before the rest are only counted.
_VIOLATION_LINES = 5


def clock(ts: int | None) -> str:
    """``12:00:01.234``, local time, for a time in ns (now if None)."""
    ts = time.time_ns() if ts is None else ts
    seconds, _, ns = calendar_seconds(ts)  # a capture's time may lie past the year 9999
    return time.strftime("%H:%M:%S", time.localtime(seconds)) + f".{ns // 1_000_000:03d}"


class EventLines:
    """Turns store changes into log lines, each event said once.

    ``label`` names an association at the start of its lines (``#<id>`` by default; the
    proxy uses its connection numbers); ``where`` says where it goes (the server by
    default; the proxy says which upstream it relayed to).
    """

    def __init__(
        self,
        store: Store,
        *,
        label: Callable[[Association], str] | None = None,
        where: Callable[[Association], str] | None = None,
    ) -> None:
        self.store = store
        self._label = label or (lambda a: f"#{a.id}")
        self._where = where or (lambda a: str(a.server))
        self._said: dict[int, set[str]] = {}
        self._violations: dict[int, int] = {}

    def lines(self, change: Change) -> list[Line]:
        """The lines a change adds (often none), their wire text escaped
        (:func:`~analyzer.textsafe.printable`): a crafted AE title or UID can neither forge
        a log line nor reach the terminal as an escape sequence."""
        return [(ts, printable(text)) for ts, text in self._lines(change)]

    def _lines(self, change: Change) -> list[Line]:
        record = change.record
        match change.kind:
            case ChangeKind.ASSOCIATION if isinstance(record, Association):
                return self._association(record)
            case ChangeKind.EXCHANGE if isinstance(record, Exchange):
                return self._about(
                    record.association, record.end_ts or record.start_ts, exchange_text(record)
                )
            case ChangeKind.FINDING if isinstance(record, Finding):
                return self._finding(record)
            case ChangeKind.VIOLATION if isinstance(record, ViolationRecord):
                return self._violation(record)
            case ChangeKind.LINK if isinstance(record, Link):
                return self._about(record.association, record.ts, link_text(self.store, record))
            case _:
                return []

    def _about(self, association_id: int, ts: int | None, text: str) -> list[Line]:
        a = self.store.association(association_id)
        label = self._label(a) if a is not None else f"#{association_id}"
        return [(ts, f"{label} {text}")]

    def _association(self, a: Association) -> list[Line]:
        said = self._said.setdefault(a.id, set())
        label = self._label(a)
        out: list[Line] = []
        if a.outcome == Outcome.NEVER_ASSOCIATED:
            self._said.pop(a.id, None)
            return [(a.start_ts, f"{label} {a.client} → {a.server}: {outcome_text(a)}")]
        if "start" not in said and (
            a.rq_ts is not None or a.detection != Detection.ASSOCIATE_RQ or a.outcome is not None
        ):
            said.add("start")
            titles = f"{a.calling_ae_title or '?'} → {a.called_ae_title or '?'}"
            text = f"{label} started {titles}, {a.client} → {self._where(a)}"
            if a.rq_ts is not None:
                text += f", {plural(len(a.contexts), 'context')} proposed"
            elif a.partial:
                text += " (already running when the capture began)"
            out.append((a.rq_ts or a.start_ts, text))
        if a.ac_ts is not None and "ac" not in said:
            said.add("ac")
            out.append((a.ac_ts, f"{label} {accepted_text(a)}"))
        if a.reject is not None and "rj" not in said:
            said.add("rj")
            # said when the A-ASSOCIATE-RJ is seen, before the connection closes
            rejected = dataclasses.replace(a, outcome=Outcome.REJECTED)
            out.append((a.reject.ts, f"{label} {outcome_text(rejected)}"))
        if a.outcome is not None and "end" not in said:
            self._said.pop(a.id, None)
            self._violations.pop(a.id, None)
            out.append((a.end_ts, f"{label} {ended_text(a)}"))
        return out

    def _finding(self, f: Finding) -> list[Line]:
        ev = f.evidence
        label = f.severity.label.upper()
        if ev.association == CAPTURE_WIDE:
            return [(ev.ts, f"capture {label} {f.title} [{f.code}]: {f.explanation}")]
        return self._about(ev.association, ev.ts, f"{label} {f.title} [{f.code}]")

    def _violation(self, v: ViolationRecord) -> list[Line]:
        n = self._violations.get(v.association, 0) + 1
        self._violations[v.association] = n
        if n <= _VIOLATION_LINES:
            return self._about(
                v.association, v.ts, f"violation by the {side(v.from_requestor)}: {v.text}"
            )
        if n == _VIOLATION_LINES + 1:
            return self._about(v.association, v.ts, "more violations (see the JSON Lines records)")
        return []


def accepted_text(a: Association) -> str:
    """``accepted 2 of 3 contexts: CT Image Storage, Verification SOP Class``."""
    accepted = [c for c in a.contexts if c.accepted]
    names: list[str] = []
    for c in accepted:
        name = uid_name(c.abstract_syntax) if c.abstract_syntax else f"context {c.id}"
        if name not in names:
            names.append(name)
    shown = ", ".join(names[:_CONTEXT_NAMES]) + (", …" if len(names) > _CONTEXT_NAMES else "")
    text = f"accepted {len(accepted)} of {plural(len(a.contexts), 'context')}"
    return text + (f": {shown}" if shown else " (none usable)")


def exchange_text(e: Exchange) -> str:
    """``C-STORE CT Image Storage: 0x0000 Success, latency 1.2 ms, 512.0 KiB``."""
    what = uid_name(e.sop_class) if e.sop_class else "-"
    by = "" if e.from_requestor else " (by the acceptor)"
    if orphan(e):
        by += " response only (its request is not in the capture)"
    status = status_text(e)
    if e.pending:
        status += f" (+{e.pending} pending)"
    if e.error_comment:
        status += f' "{e.error_comment}"'
    text = f"{e.service}{by} {what}: {status}"
    if e.latency_ns is not None:
        text += f", latency {duration_text(e.latency_ns)}"
    if e.request_dataset_bytes:
        text += f", {size_text(e.request_dataset_bytes)}"
    return text


def ended_text(a: Association) -> str:
    """How it ended, after how long, with what was exchanged."""
    moved = a.requestor_pdus.bytes + a.acceptor_pdus.bytes
    counts = f"{plural(a.exchanges, 'exchange')}, {size_text(moved)}"
    after = f"after {duration_text(a.duration_ns)}"
    if a.outcome == Outcome.RELEASED:
        return f"released {after}: {counts}"
    if a.outcome == Outcome.REJECTED:
        return f"ended: rejected {after}"
    if a.outcome == Outcome.OPEN_AT_END:
        return f"open at end: {outcome_text(a)}, {after}: {counts}"
    return f"ended: {outcome_text(a)}, {after}: {counts}"
