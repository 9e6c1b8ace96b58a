"""The store: an append-only record of what was observed, with change notifications.

Reports, the terminal UI and live feeds all read the same store, whether its source has
finished (a capture file) or is still running (live capture, proxy). Records are frozen; an
association is published again whenever it changes, under the same id. Listeners are called
synchronously in the writer's thread, after the record is stored.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from .model import (
    Association,
    Exchange,
    Finding,
    Gap,
    Link,
    Note,
    PduRecord,
    ViolationRecord,
)
from .pdulog import PduLog


class ChangeKind(StrEnum):
    """What a :class:`Change` carries."""

    ASSOCIATION = "association"
    EXCHANGE = "exchange"
    FINDING = "finding"
    VIOLATION = "violation"
    GAP = "gap"
    NOTE = "note"
    PDU = "pdu"
    LINK = "link"
    DONE = "done"


Record = Association | Exchange | Finding | ViolationRecord | Gap | Note | PduRecord | Link | None


@dataclass(frozen=True, slots=True)
class Change:
    """One thing added to the store (``record`` is None for DONE)."""

    kind: ChangeKind
    record: Record


@dataclass(slots=True)
class SourceInfo:
    """What the store was filled from, and how reading went."""

    name: str = ""
    files: list[str] = field(default_factory=list)
    packets: int = 0
    tcp_segments: int = 0
    bytes_read: int = 0
    total_bytes: int | None = None
    truncated: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unsupported_link_types: dict[int, int] = field(default_factory=dict)
    """Frames skipped, per link type the packet decoder does not read."""
    first_ts: int | None = None
    last_ts: int | None = None
    finished: bool = False


Listener = Callable[[Change], None]


@dataclass(frozen=True, slots=True)
class Retention:
    """How much of the past the store of a source that runs for days keeps (the proxy, live
    capture without the terminal UI): ended associations beyond either bound are forgotten,
    the oldest first, with every record about them. Their number stays in
    :attr:`Store.forgotten` so that totals remain true."""

    associations: int = 1000
    """Ended associations kept."""
    kept_bytes: int = 32 << 20
    """Data set bytes kept for display (``keep`` per data set) by the ended associations."""


@dataclass(slots=True)
class Forgotten:
    """What a store with a :class:`Retention` no longer holds."""

    associations: int = 0
    exchanges: int = 0


class Store:
    """Append-only store of model records, readable while it is being filled."""

    def __init__(
        self,
        *,
        keep_pdus: bool = False,
        compact_pdus: bool = False,
        retention: Retention | None = None,
    ) -> None:
        """``keep_pdus``: keep a record of every PDU (timelines). ``compact_pdus``: keep them
        in a :class:`~analyzer.pdulog.PduLog` per association (about 39 bytes a PDU instead
        of about 300; :meth:`pdus` rebuilds records with their PDVs summarised).
        ``retention``: forget old ended associations (None keeps everything: a capture
        file, a terminal UI that shows all)."""
        self.keep_pdus = keep_pdus
        self.compact_pdus = compact_pdus
        self.retention = retention
        self.forgotten = Forgotten()
        self._ended: OrderedDict[int, int] = OrderedDict()  # id → data set bytes kept
        self._ended_bytes = 0
        self._stale = 0  # forgotten records still in the ordered lists, dropped in batches
        self.source = SourceInfo()
        self._lock = threading.RLock()
        self._associations: dict[int, Association] = {}
        self._exchanges: list[Exchange] = []
        self._exchanges_of: dict[int, list[Exchange]] = {}
        self._findings: list[Finding] = []
        self._findings_of: dict[int, list[Finding]] = {}
        self._violations_of: dict[int, list[ViolationRecord]] = {}
        self._gaps_of: dict[int, list[Gap]] = {}
        self._notes_of: dict[int, list[Note]] = {}
        self._pdus_of: dict[int, list[PduRecord]] = {}
        self._pdu_logs: dict[int, PduLog] = {}
        self._links_of: dict[int, list[Link]] = {}
        self._listeners: list[Listener] = []

    # --- listening -------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` for every change from now on; returns an unsubscribe function."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    @property
    def has_listeners(self) -> bool:
        """Whether anyone subscribed (a live view); writers may skip interim versions if not."""
        return bool(self._listeners)

    def _notify(self, change: Change) -> None:
        for listener in list(self._listeners):
            listener(change)

    # --- writing ---------------------------------------------------------------------

    def put_association(self, association: Association) -> None:
        with self._lock:
            self._associations[association.id] = association
        self._notify(Change(ChangeKind.ASSOCIATION, association))
        # Forget only after the listeners have seen the end (they write its records).
        if self.retention is not None and association.end_ts is not None:
            self._retire(association.id)

    # --- retention -------------------------------------------------------------------

    def _retire(self, association_id: int) -> None:
        """Count an ended association against the retention, then forget the oldest ended
        ones while either bound is exceeded (never the one that just ended)."""
        retention = self.retention
        assert retention is not None
        with self._lock:
            if association_id in self._ended:
                return
            weight = sum(
                len(m.dataset.kept)
                for e in self._exchanges_of.get(association_id, ())
                for m in (e.request, e.final)
                if m is not None and m.dataset is not None
            )
            self._ended[association_id] = weight
            self._ended_bytes += weight
            while len(self._ended) > 1 and (
                len(self._ended) > retention.associations
                or self._ended_bytes > retention.kept_bytes
            ):
                oldest, size = self._ended.popitem(last=False)
                self._ended_bytes -= size
                self._forget(oldest)

    def _forget(self, association_id: int) -> None:
        a = self._associations.pop(association_id, None)
        self.forgotten.associations += 1
        self.forgotten.exchanges += a.exchanges if a is not None else 0
        exchanges = self._exchanges_of.pop(association_id, [])
        findings = self._findings_of.pop(association_id, [])
        self._stale += len(exchanges) + len(findings)
        for table in (
            self._violations_of,
            self._gaps_of,
            self._notes_of,
            self._pdus_of,
            self._pdu_logs,
            self._links_of,
        ):
            table.pop(association_id, None)
        # The ordered lists are filtered once the forgotten records are half of them, so
        # forgetting costs O(1) amortised.
        if self._stale * 2 > len(self._exchanges) + len(self._findings):
            live = self._associations
            self._exchanges = [e for e in self._exchanges if e.association in live]
            self._findings = [
                f
                for f in self._findings
                if f.evidence.association in live or f.evidence.association in self._findings_of
            ]
            self._stale = 0

    def add_exchange(self, exchange: Exchange) -> None:
        with self._lock:
            self._exchanges.append(exchange)
            self._exchanges_of.setdefault(exchange.association, []).append(exchange)
        self._notify(Change(ChangeKind.EXCHANGE, exchange))

    def add_finding(self, finding: Finding) -> None:
        with self._lock:
            self._findings.append(finding)
            self._findings_of.setdefault(finding.evidence.association, []).append(finding)
        self._notify(Change(ChangeKind.FINDING, finding))

    def add_violation(self, violation: ViolationRecord) -> None:
        with self._lock:
            self._violations_of.setdefault(violation.association, []).append(violation)
        self._notify(Change(ChangeKind.VIOLATION, violation))

    def add_gap(self, gap: Gap) -> None:
        with self._lock:
            self._gaps_of.setdefault(gap.association, []).append(gap)
        self._notify(Change(ChangeKind.GAP, gap))

    def add_note(self, note: Note) -> None:
        with self._lock:
            self._notes_of.setdefault(note.association, []).append(note)
        self._notify(Change(ChangeKind.NOTE, note))

    def add_pdu(self, pdu: PduRecord) -> None:
        if not self.keep_pdus:
            return
        with self._lock:
            if self.compact_pdus:
                log = self._pdu_logs.get(pdu.association)
                if log is None:
                    log = self._pdu_logs[pdu.association] = PduLog()
                log.append(pdu)
            else:
                self._pdus_of.setdefault(pdu.association, []).append(pdu)
        self._notify(Change(ChangeKind.PDU, pdu))

    def add_link(self, link: Link) -> None:
        """A workflow link (see :mod:`analyzer.workflows`), indexed under both ends."""
        with self._lock:
            self._links_of.setdefault(link.association, []).append(link)
            if link.target_association != link.association:
                self._links_of.setdefault(link.target_association, []).append(link)
        self._notify(Change(ChangeKind.LINK, link))

    def subset(self, keep: set[int], *, capture_wide: int | None = None) -> Store:
        """A store holding the associations whose ids are in ``keep``, with every record
        about them (and the findings under ``capture_wide``, the id of findings about the
        capture as a whole); a link is kept when either of its ends is. Records are shared,
        not copied; order is kept. Every kind of record the store holds is handled here, so
        a new kind cannot be forgotten by a caller."""
        out = Store(keep_pdus=self.keep_pdus, compact_pdus=self.compact_pdus)
        out.source = self.source
        with self._lock:
            out._associations = {i: a for i, a in self._associations.items() if i in keep}
            out._exchanges = [e for e in self._exchanges if e.association in keep]
            out._findings = [
                f
                for f in self._findings
                if f.evidence.association in keep or f.evidence.association == capture_wide
            ]
            for name in (
                "_exchanges_of",
                "_findings_of",
                "_violations_of",
                "_gaps_of",
                "_notes_of",
                "_pdus_of",
                "_pdu_logs",
                "_links_of",
            ):
                table = getattr(self, name)
                setattr(
                    out,
                    name,
                    {
                        i: v
                        for i, v in table.items()
                        if i in keep or (name == "_findings_of" and i == capture_wide)
                    },
                )
        return out

    def finish(self) -> None:
        """The source has ended; nothing more will be added."""
        self.source.finished = True
        self._notify(Change(ChangeKind.DONE, None))

    # --- reading ---------------------------------------------------------------------

    def associations(self) -> list[Association]:
        """Latest version of every association, by id."""
        with self._lock:
            return list(self._associations.values())

    def association(self, association_id: int) -> Association | None:
        return self._associations.get(association_id)

    def exchanges(self, association_id: int | None = None) -> list[Exchange]:
        with self._lock:
            if association_id is None:
                return list(self._exchanges)
            return list(self._exchanges_of.get(association_id, ()))

    def findings(self, association_id: int | None = None) -> list[Finding]:
        with self._lock:
            if association_id is None:
                return list(self._findings)
            return list(self._findings_of.get(association_id, ()))

    def violations(self, association_id: int) -> list[ViolationRecord]:
        with self._lock:
            return list(self._violations_of.get(association_id, ()))

    def gaps(self, association_id: int) -> list[Gap]:
        with self._lock:
            return list(self._gaps_of.get(association_id, ()))

    def notes(self, association_id: int) -> list[Note]:
        with self._lock:
            return list(self._notes_of.get(association_id, ()))

    def links(self, association_id: int) -> list[Link]:
        """The links from or to an association, in the order they were made."""
        with self._lock:
            return list(self._links_of.get(association_id, ()))

    def pdus(self, association_id: int) -> list[PduRecord]:
        with self._lock:
            if self.compact_pdus:
                log = self._pdu_logs.get(association_id)
                return log.records(association_id) if log is not None else []
            return list(self._pdus_of.get(association_id, ()))

    def __iter__(self) -> Iterator[Association]:
        return iter(self.associations())

    def __len__(self) -> int:
        return len(self._associations)
