"""The TUI's headless core: the association index behind the list (no Textual here).

:class:`StoreIndex` listens to a :class:`~analyzer.store.Store` and keeps, per association,
what the list shows and filters on: the :class:`~analyzer.filter.Facts` the filter tests,
kept up to date record by record, so that a new filter over 20,000 associations runs on
what is already derived. Store listeners run in
the writer's thread (a capture worker, a proxy), so the listener only queues changes under
a lock; :meth:`StoreIndex.drain`, called from the UI thread every quarter second, applies
them in one batch. Nothing here is built for a row that is not on screen: the list keeps ids
and sort keys, and the cells of a row are made when the row is drawn (:func:`cells`).
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field
from enum import StrEnum

from analyzer.filter import Facts
from analyzer.model import Association, Exchange, Finding, Link, Outcome, Severity
from analyzer.store import Change, ChangeKind, Store

from .query import Query

SEVERITY_MARK = {Severity.ERROR: "✖", Severity.WARNING: "▲", Severity.INFO: "●"}


class Look(StrEnum):
    """How an association reads at a glance (the colour of its outcome)."""

    FAILED = "failed"
    WARNING = "warning"
    OK = "ok"
    OPEN = "open"


_FAILED_OUTCOMES = {Outcome.REJECTED, Outcome.ABORTED, Outcome.TRANSPORT_DROPPED}
_WARNING_OUTCOMES = {Outcome.NEVER_ASSOCIATED, Outcome.OPEN_AT_END, Outcome.RELEASE_COLLISION}
OUTCOME_SHORT = {
    Outcome.RELEASED: "released",
    Outcome.RELEASE_COLLISION: "collision",
    Outcome.REJECTED: "rejected",
    Outcome.ABORTED: "aborted",
    Outcome.TRANSPORT_DROPPED: "dropped",
    Outcome.NEVER_ASSOCIATED: "no assoc",
    Outcome.OPEN_AT_END: "open",
}


def outcome_look(outcome: Outcome | None) -> Look:
    """The colour of an outcome itself: a released association is green even when its
    exchanges failed (that shows in the finding column and the row's number)."""
    if outcome is None:
        return Look.OPEN
    if outcome in _FAILED_OUTCOMES:
        return Look.FAILED
    if outcome in _WARNING_OUTCOMES:
        return Look.WARNING
    return Look.OK


@dataclass(slots=True, eq=False)
class Summary:
    """What the index knows of one association; ``version`` changes whenever it does."""

    association: Association
    version: int = 0
    categories: set[str] = field(default_factory=set)
    facts: Facts = field(init=False)
    """What the filter tests (the record, its exchanges and findings)."""
    _look: Look | None = None
    counted: Look | None = None
    """The look the index's counts hold for this association (None: not counted yet)."""

    def __post_init__(self) -> None:
        self.facts = Facts(self.association)

    @property
    def id(self) -> int:
        return self.association.id

    @property
    def findings(self) -> list[Finding]:
        return self.facts.findings

    @property
    def worst(self) -> Finding | None:
        """The most severe finding (the first of equals)."""
        return max(self.findings, key=lambda f: f.severity, default=None)

    @property
    def look(self) -> Look:
        """Red when it failed, yellow when something is off, green when all went well."""
        if self._look is None:
            self._look = self._judge()
        return self._look

    def _judge(self) -> Look:
        a = self.association
        worst = self.worst
        severity = worst.severity if worst else None
        if (
            a.outcome in _FAILED_OUTCOMES
            or severity == Severity.ERROR
            or "failure" in self.categories
        ):
            return Look.FAILED
        if (
            a.outcome in _WARNING_OUTCOMES
            or severity == Severity.WARNING
            or a.violations
            or a.gaps
            or self.categories & {"warning", "cancel"}
        ):
            return Look.WARNING
        return Look.OPEN if a.outcome is None else Look.OK

    def touch(self) -> None:
        self.version += 1
        self._look = None


@dataclass(frozen=True, slots=True)
class Update:
    """What one :meth:`StoreIndex.drain` applied."""

    associations: frozenset[int] = frozenset()
    """Associations whose record, exchanges or findings changed."""
    pdus: frozenset[int] = frozenset()
    """Associations that got new PDU records (their timeline grew)."""
    new_associations: int = 0
    findings: int = 0
    done: bool = False

    def touches(self, association_id: int) -> bool:
        return association_id in self.associations or association_id in self.pdus


class SortKey(StrEnum):
    """Columns the list can be sorted by."""

    START = "start"
    ID = "id"
    PEERS = "peers"
    AES = "aes"
    OUTCOME = "outcome"
    EXCHANGES = "exchanges"
    BYTES = "bytes"
    DURATION = "duration"
    FINDING = "finding"


_LOOK_RANK = {Look.FAILED: 0, Look.WARNING: 1, Look.OPEN: 2, Look.OK: 3}


def sort_value(key: SortKey, s: Summary) -> tuple[object, ...]:
    """The sort key of one row; ties fall back on start time then id (stable, total)."""
    a = s.association
    tail = (a.start_ts, a.id)
    match key:
        case SortKey.START:
            return tail
        case SortKey.ID:
            return (a.id,)
        case SortKey.PEERS:
            return (a.client.ip, a.client.port, a.server.ip, a.server.port, *tail)
        case SortKey.AES:
            return (a.calling_ae_title or "", a.called_ae_title or "", *tail)
        case SortKey.OUTCOME:
            return (_LOOK_RANK[s.look], str(a.outcome or ""), *tail)
        case SortKey.EXCHANGES:
            return (a.exchanges, *tail)
        case SortKey.BYTES:
            return (a.requestor_pdus.bytes + a.acceptor_pdus.bytes, *tail)
        case SortKey.DURATION:
            return (a.duration_ns if a.duration_ns is not None else -1, *tail)
        case SortKey.FINDING:
            worst = s.worst
            return (-(worst.severity if worst else 0), worst.code if worst else "", *tail)


class StoreIndex:
    """The list's view of a store, updated in batches from the UI thread."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.summaries: dict[int, Summary] = {}
        self.findings: list[Finding] = []
        """Every finding, in the order the store got them."""
        self._lock = threading.Lock()
        self._pending: list[Change] = []
        self._pdu_dirty: set[int] = set()
        # how many associations look failed, warning, ok, open: kept up to date from the
        # associations each batch changed, never counted again over all of them
        self._counts = dict.fromkeys(Look, 0)
        # the default order (start time) kept up to date as associations arrive, so that
        # the list of a growing capture is not sorted again at every batch
        self._by_start: list[tuple[int, int]] = []
        self._unsubscribe = store.subscribe(self._on_change)
        # Records already in the store (a store filled before the UI started) are read
        # once; a change that races with this read is recognised by identity and skipped.
        initial: list[Change] = [Change(ChangeKind.ASSOCIATION, a) for a in store.associations()]
        initial += [Change(ChangeKind.EXCHANGE, e) for e in store.exchanges()]
        initial += [Change(ChangeKind.FINDING, f) for f in store.findings()]
        self._initial_ids = {id(c.record) for c in initial if c.kind != ChangeKind.ASSOCIATION}
        with self._lock:
            self._pending[:0] = initial
            if store.keep_pdus:
                self._pdu_dirty.update(
                    a.record.id for a in initial if isinstance(a.record, Association)
                )
        if store.source.finished:
            with self._lock:
                self._pending.append(Change(ChangeKind.DONE, None))

    def close(self) -> None:
        """Stop listening to the store."""
        self._unsubscribe()

    # --- the writer's thread -------------------------------------------------------------

    def _on_change(self, change: Change) -> None:
        # Called for every record, a million times for a large capture: keep it cheap.
        if change.kind is ChangeKind.PDU:
            record = change.record
            assert record is not None
            with self._lock:
                self._pdu_dirty.add(record.association)  # type: ignore[union-attr]
            return
        with self._lock:
            self._pending.append(change)

    # --- the UI thread ---------------------------------------------------------------------

    def drain(self) -> Update | None:
        """Apply what the store queued since the last call; None when nothing changed."""
        with self._lock:
            pending, self._pending = self._pending, []
            pdus, self._pdu_dirty = self._pdu_dirty, set()
        if not pending and not pdus:
            return None
        changed: set[int] = set()
        new = findings = 0
        done = False
        initial, seen = self._initial_ids, set[int]()
        for change in pending:
            record = change.record
            if initial and _seen_before(record, initial, seen):
                continue
            match change.kind:
                case ChangeKind.ASSOCIATION:
                    assert isinstance(record, Association)
                    summary = self.summaries.get(record.id)
                    if summary is None:
                        self._add(Summary(record))
                        new += 1
                    elif summary.association is not record:
                        if summary.association.start_ts != record.start_ts:
                            self._by_start.remove((summary.association.start_ts, record.id))
                            bisect.insort(self._by_start, (record.start_ts, record.id))
                        summary.association = record
                        summary.facts.set_association(record)
                        summary.touch()
                    changed.add(record.id)
                case ChangeKind.EXCHANGE:
                    assert isinstance(record, Exchange)
                    self._exchange(record)
                    changed.add(record.association)
                case ChangeKind.FINDING:
                    assert isinstance(record, Finding)
                    self._finding(record)
                    findings += 1
                    changed.add(record.evidence.association)
                case ChangeKind.LINK:
                    assert isinstance(record, Link)  # a workflow link changes both ends
                    changed.update((record.association, record.target_association))
                case ChangeKind.DONE:
                    done = True
                case _:
                    # violations, gaps and notes change the association record too
                    # (its counters), which arrives as its own change
                    if record is not None:
                        changed.add(record.association)  # type: ignore[union-attr]
        self._initial_ids = set()  # every racing duplicate was queued before the first drain
        self._recount(changed)
        return Update(frozenset(changed), frozenset(pdus), new, findings, done)

    def _recount(self, changed: set[int]) -> None:
        """Move the associations of ``changed`` to the count of their look now."""
        counts, summaries = self._counts, self.summaries
        for association_id in changed:
            summary = summaries.get(association_id)
            if summary is None:
                continue
            look = summary.look
            if summary.counted is not look:
                if summary.counted is not None:
                    counts[summary.counted] -= 1
                counts[look] += 1
                summary.counted = look

    def _exchange(self, e: Exchange) -> None:
        summary = self._summary(e.association)
        if summary is None:
            return
        summary.facts.add_exchange(e)
        summary.categories.add(e.status_category.lower())
        summary.touch()

    def _finding(self, f: Finding) -> None:
        self.findings.append(f)
        summary = self._summary(f.evidence.association)
        if summary is not None:
            summary.facts.add_finding(f)
            summary.touch()

    def _summary(self, association_id: int) -> Summary | None:
        summary = self.summaries.get(association_id)
        if summary is None:
            # an exchange or finding before its association record: take the record now
            record = self.store.association(association_id)
            if record is None:
                return None
            summary = self._add(Summary(record))
        return summary

    def _add(self, summary: Summary) -> Summary:
        self.summaries[summary.id] = summary
        bisect.insort(self._by_start, (summary.association.start_ts, summary.id))
        return summary

    # --- reading -------------------------------------------------------------------------

    def rows(self, query: Query, key: SortKey = SortKey.START, reverse: bool = False) -> list[int]:
        """Ids of the associations that match ``query``, sorted."""
        if key is SortKey.START:  # the order kept as associations arrive: no sort
            ids = [i for _, i in self._by_start]
            if query:
                summaries = self.summaries
                ids = [i for i in ids if query.matches(summaries[i].facts)]
            return ids[::-1] if reverse else ids
        chosen: list[Summary] = list(self.summaries.values())
        if query:
            chosen = [s for s in chosen if query.matches(s.facts)]
        chosen.sort(key=lambda s: sort_value(key, s), reverse=reverse)
        return [s.id for s in chosen]

    def counts(self) -> dict[Look, int]:
        """How many associations look failed, warning, ok, open (kept by :meth:`drain`)."""
        return dict(self._counts)


def _seen_before(record: object, initial: set[int], seen: set[int]) -> bool:
    """True for the second sighting of a record that was both in the store's initial
    contents (exchanges and findings) and notified while they were read."""
    rid = id(record)
    if rid not in initial:
        return False
    if rid in seen:
        return True
    seen.add(rid)
    return False
