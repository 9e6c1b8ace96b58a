"""The store: an append-only record of what was observed, with change notifications.

Reports, the terminal UI and live feeds all read the same store, whether its source has
finished (a capture file) or is still running (live capture, proxy). Records are frozen; an
association is published again whenever it changes, under the same id. Listeners are called
synchronously in the writer's thread, after the record is stored.
"""

from __future__ import annotations

import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise
from typing import Any, TypeVar

from .model import (
    Association,
    Exchange,
    Finding,
    Gap,
    Link,
    Note,
    Outcome,
    PduRecord,
    ViolationRecord,
)
from .pdulog import PduLog
from .spill import (
    ASSOCIATION_WEIGHT,
    Column,
    IdTable,
    Ref,
    Spill,
    Spilled,
    SpillFile,
    exchange_weight,
    finding_weight,
    record_weight,
)
from .unlisted import Unlisted


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
    frame_bases: list[int] = field(default_factory=list)
    """Frames read before each of ``files`` (frame numbers continue across files), so a
    frame can be named as Wireshark names it: its file and its number in that file."""
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

    associations: int = 500
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
        spill: Spill | None = None,
    ) -> None:
        """``keep_pdus``: keep a record of every PDU (timelines). ``compact_pdus``: keep them
        in a :class:`~analyzer.pdulog.PduLog` per association (about 39 bytes a PDU instead
        of about 300; :meth:`pdus` rebuilds records with their PDVs summarised).
        ``retention``: forget old ended associations (None keeps everything: a capture
        file, a terminal UI that shows all). ``spill``: keep everything, but move ended
        associations out of memory into a temporary file past a budget (a capture file
        whose reports are written at the end; see :mod:`analyzer.spill`): read them with
        :meth:`iter_associations` and :meth:`by_start`, one at a time."""
        if spill is not None and (retention is not None or keep_pdus):
            raise ValueError("a spilling store keeps everything and no PDUs")
        self.spill = spill
        self._file: SpillFile | None = None
        # What is spilled, by association id (see Column); and ids in the order they were
        # first stored.
        self._spilled = IdTable(len(Column))
        self._order = array("q")
        self._chunks_of: dict[int, list[Ref]] = {}  # exchanges of open associations
        self._held = 0  # estimated bytes of records in memory (spilling store)
        self._relieve_at = spill.budget if spill is not None else 0
        self._loaded: OrderedDict[int, list[Any]] = OrderedDict()  # blocks read back
        self._last_rest: tuple[int, Spilled | None] | None = None
        self._keep: frozenset[int] | None = None  # a subset of a spilling store: its ids
        self._keep_wide: int | None = None
        self.keep_pdus = keep_pdus
        self.compact_pdus = compact_pdus
        self.retention = retention
        self.forgotten = Forgotten()
        self.unlisted = Unlisted()
        """Connections without DICOM counted rather than listed (a flood, a scan)."""
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
        aid = association.id
        with self._lock:
            first = aid not in self._associations and aid not in self._spilled
            if self.spill is not None and first:
                self._order.append(aid)
                self._held += ASSOCIATION_WEIGHT
            self._associations[aid] = association
        self._notify(Change(ChangeKind.ASSOCIATION, association))
        # Forget only after the listeners have seen the end (they write its records).
        if self.retention is not None and association.end_ts is not None:
            self._retire(aid)
        elif self.spill is not None and association.end_ts is not None:
            with self._lock:
                if aid not in self._spilled and aid not in self._ended:
                    self._ended[aid] = 0
                self._check()

    # --- spilling --------------------------------------------------------------------

    def _check(self) -> None:
        if self._held > self._relieve_at:
            self._relieve()

    def _relieve(self) -> None:
        """Spill ended associations, the oldest ended first, then the exchanges of open
        ones, until the records held are half the budget (or nothing more can go)."""
        assert self.spill is not None
        budget = self.spill.budget
        target = budget // 2
        block: list[tuple[Association, tuple[list[Any], ...]]] = []
        weight = 0
        while self._held > target and self._ended:
            aid, _ = self._ended.popitem(last=False)
            entry = self._take(aid)
            if entry is None:
                continue
            block.append(entry[:2])
            weight += entry[2]
            if len(block) >= _BLOCK or weight >= _BLOCK_WEIGHT:
                self._spill_block(block)
                block, weight = [], 0
        if block:
            self._spill_block(block)
        if self._held > target:
            for aid in [
                i
                for i, xs in self._exchanges_of.items()
                if xs and i not in self._spilled and i in self._associations
            ]:
                self._spill_exchanges(aid)
        # What cannot be spilled (open associations' other records) is not tried again
        # at every record.
        self._relieve_at = max(budget, self._held + budget // 4)

    def _spill_file(self) -> SpillFile:
        if self._file is None:
            assert self.spill is not None
            self._file = SpillFile(self.spill.directory)
        return self._file

    def stash(self, batch: Any) -> Ref | None:
        """Keep ``batch`` (picklable) out of memory in a spilling store: its reference for
        :meth:`unstash`; None when this store keeps everything in memory (the caller keeps
        the batch)."""
        if self.spill is None:
            return None
        return self._spill_file().append(batch)

    def unstash(self, ref: Ref) -> Any:
        """A batch :meth:`stash` kept."""
        return self._spill_file().read(ref)

    def _take(self, aid: int) -> tuple[Association, tuple[list[Any], ...], int] | None:
        """Association ``aid`` and every record about it, out of the tables; their weight."""
        a = self._associations.pop(aid, None)
        if a is None:
            return None
        rest = Spilled(
            self._exchanges_of.pop(aid, []),
            self._findings_of.pop(aid, []),
            self._violations_of.pop(aid, []),
            self._gaps_of.pop(aid, []),
            self._notes_of.pop(aid, []),
            self._links_of.pop(aid, []),
        )
        weight = ASSOCIATION_WEIGHT + rest.weight()
        self._held -= weight
        return a, rest.batch(), weight

    def _spill_block(self, block: list[tuple[Association, tuple[list[Any], ...]]]) -> None:
        """Write ended associations, each with its records, as one batch: one pickling for
        many small records, which share what they repeat (a server's endpoint, a TCP
        summary of a SYN)."""
        offset, length = self._spill_file().append(block)
        self._last_rest = None  # it may say "nothing spilled" of one of these
        for slot, (a, _) in enumerate(block):
            outcome = _OUTCOMES.index(a.outcome) if a.outcome is not None else -1
            self._spilled.set(a.id, (offset, length, slot, a.start_ts, a.exchanges, outcome))

    def _spill_exchanges(self, aid: int) -> None:
        exchanges = self._exchanges_of.pop(aid)
        self._held -= sum(exchange_weight(e) for e in exchanges)
        self._chunks_of.setdefault(aid, []).append(self._spill_file().append(exchanges))

    def _rest(self, aid: int) -> Spilled | None:
        """The records spilled with association ``aid`` (a report asks for each kind in
        turn: the last one asked for is kept)."""
        last = self._last_rest
        if last is not None and last[0] == aid:
            return last[1]
        entry = self._read_back(aid)
        rest = None if entry is None else Spilled(*entry[1])
        self._last_rest = (aid, rest)
        return rest

    def _spilled_association(self, aid: int) -> Association | None:
        entry = self._read_back(aid)
        if entry is None:
            return None
        found = entry[0]
        assert isinstance(found, Association)
        return found

    def _read_back(self, aid: int) -> tuple[Association, tuple[list[Any], ...]] | None:
        """Spilled association ``aid`` with its records, from its block (the last few
        blocks read are kept: reports read associations in about the order they ended)."""
        spilled = self._spilled
        if aid not in spilled or self._file is None:
            return None
        offset = spilled.value(aid, Column.BLOCK_OFFSET)
        cache = self._loaded
        block = cache.get(offset)
        if block is None:
            block = cache[offset] = self._file.read(
                (offset, spilled.value(aid, Column.BLOCK_LENGTH))
            )
            if len(cache) > _CACHED:
                cache.popitem(last=False)
        else:
            cache.move_to_end(offset)
        entry: tuple[Association, tuple[list[Any], ...]] = block[spilled.value(aid, Column.SLOT)]
        return entry

    def _visible(self, aid: int) -> bool:
        return self._keep is None or aid in self._keep or aid == self._keep_wide

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
            if self.spill is None:
                self._exchanges.append(exchange)
            else:
                self._held += exchange_weight(exchange)
            self._exchanges_of.setdefault(exchange.association, []).append(exchange)
        self._notify(Change(ChangeKind.EXCHANGE, exchange))
        if self.spill is not None:
            self._check()

    def add_finding(self, finding: Finding) -> None:
        with self._lock:
            if self.spill is None:
                self._findings.append(finding)
            else:
                self._held += finding_weight(finding)
            self._findings_of.setdefault(finding.evidence.association, []).append(finding)
        self._notify(Change(ChangeKind.FINDING, finding))

    def add_violation(self, violation: ViolationRecord) -> None:
        with self._lock:
            self._violations_of.setdefault(violation.association, []).append(violation)
            self._held += record_weight(violation) if self.spill is not None else 0
        self._notify(Change(ChangeKind.VIOLATION, violation))

    def add_gap(self, gap: Gap) -> None:
        with self._lock:
            self._gaps_of.setdefault(gap.association, []).append(gap)
            self._held += record_weight(gap) if self.spill is not None else 0
        self._notify(Change(ChangeKind.GAP, gap))

    def add_note(self, note: Note) -> None:
        with self._lock:
            self._notes_of.setdefault(note.association, []).append(note)
            self._held += record_weight(note) if self.spill is not None else 0
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
            self._held += record_weight(link) if self.spill is not None else 0
        self._notify(Change(ChangeKind.LINK, link))

    def subset(self, keep: set[int], *, capture_wide: int | None = None) -> Store:
        """A store holding the associations whose ids are in ``keep``, with every record
        about them (and the findings under ``capture_wide``, the id of findings about the
        capture as a whole); a link is kept when either of its ends is. Records are shared,
        not copied; order is kept. Every kind of record the store holds is handled here, so
        a new kind cannot be forgotten by a caller. The subset of a spilling store is a view
        of it (read it once the source has finished). Connections counted rather than listed
        (:attr:`unlisted`) are in no subset: a filter selects records."""
        if self.spill is not None:
            return self._view(keep, capture_wide)
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

    def _view(self, keep: set[int], capture_wide: int | None) -> Store:
        out = Store.__new__(Store)
        out.__dict__.update(self.__dict__)
        out._keep = frozenset(keep if self._keep is None else keep & self._keep)
        out._keep_wide = capture_wide
        out.unlisted = Unlisted()  # counted connections are in no subset: no filter has them
        out._lock = threading.RLock()
        out._listeners = []
        out._loaded = OrderedDict()
        out._last_rest = None
        return out

    def finish(self) -> None:
        """The source has ended; nothing more will be added."""
        self.source.finished = True
        self._notify(Change(ChangeKind.DONE, None))

    # --- reading ---------------------------------------------------------------------

    def associations(self) -> list[Association]:
        """Latest version of every association, in the order they were first stored (a
        spilling store reads every spilled one back: prefer :meth:`iter_associations`)."""
        return list(self.iter_associations())

    def iter_associations(self) -> Iterator[Association]:
        """:meth:`associations`, one at a time (a spilling store reads back one spilled
        association at a time)."""
        if self.spill is None:
            with self._lock:
                records = list(self._associations.values())
            yield from records
            return
        order = self._order
        for i in range(len(order)):
            found = self.association(order[i])
            if found is not None:
                yield found

    def by_start(self) -> Iterator[Association]:
        """Every association in the order they started (then by id), one at a time."""
        if self.spill is None:
            yield from sorted(self.associations(), key=lambda a: (a.start_ts, a.id))
            return
        ids = sorted(aid for aid in self._order if self._visible(aid))
        starts = [self._start_ts(aid) for aid in ids]
        if any(b < a for a, b in pairwise(starts)):
            # Stable: ids stay in order among equal start times.
            ids = [aid for _, aid in sorted(zip(starts, ids, strict=True), key=_first)]
        del starts
        for aid in ids:
            found = self.association(aid)
            if found is not None:
                yield found

    def _start_ts(self, aid: int) -> int:
        a = self._associations.get(aid)
        return a.start_ts if a is not None else self._spilled.value(aid, Column.START)

    def tally(self) -> Tally:
        """How many associations, exchanges, and associations of each outcome (without
        reading spilled associations back)."""
        tally = Tally()
        if self.spill is None:
            for a in self.iter_associations():
                tally.count(a.exchanges, a.outcome)
            return tally
        for aid in self._ids():
            held = self._associations.get(aid)
            if held is not None:
                tally.count(held.exchanges, held.outcome)
            elif aid in self._spilled:
                outcome = self._spilled.value(aid, Column.OUTCOME)
                tally.count(
                    self._spilled.value(aid, Column.EXCHANGES),
                    _OUTCOMES[outcome] if outcome >= 0 else None,
                )
        return tally

    def association(self, association_id: int) -> Association | None:
        if not self._visible(association_id):
            return None
        with self._lock:
            found = self._associations.get(association_id)
            if found is None and self.spill is not None:
                found = self._spilled_association(association_id)
            return found

    def exchanges(self, association_id: int | None = None) -> list[Exchange]:
        with self._lock:
            if association_id is None:
                if self.spill is None:
                    return list(self._exchanges)
                return [e for aid in self._ids() for e in self.exchanges(aid)]
            if self.spill is None:
                return list(self._exchanges_of.get(association_id, ()))
            if not self._visible(association_id):
                return []
            out: list[Exchange] = []
            if self._file is not None:
                for ref in self._chunks_of.get(association_id, ()):
                    out += self._file.read(ref)
            rest = self._rest(association_id)
            if rest is not None:
                out += rest.exchanges
            out += self._exchanges_of.get(association_id, ())
            return out

    def iter_exchanges(self, association_id: int) -> Iterator[Exchange]:
        """:meth:`exchanges` of one association, a spilled batch at a time (an association
        that carried thousands is never read back whole)."""
        if self.spill is None or not self._visible(association_id):
            yield from self.exchanges(association_id)
            return
        with self._lock:
            chunks = list(self._chunks_of.get(association_id, ()))
        for ref in chunks:
            assert self._file is not None
            with self._lock:
                batch: list[Exchange] = self._file.read(ref)
            yield from batch
        with self._lock:
            rest = self._rest(association_id)
            tail = [
                *(rest.exchanges if rest is not None else ()),
                *self._exchanges_of.get(association_id, ()),
            ]
        yield from tail

    def findings(self, association_id: int | None = None) -> list[Finding]:
        """The findings about one association, or every finding (a spilling store gives
        them association by association, then those about the capture as a whole)."""
        with self._lock:
            if association_id is None:
                if self.spill is None:
                    return list(self._findings)
                out = [f for aid in self._ids() for f in self.findings(aid)]
                for aid in list(self._findings_of):
                    if aid not in self._associations and aid not in self._spilled:
                        out += self.findings(aid)
                return out
            rest = self._spilled_rest(association_id)
            return self._joined(rest.findings if rest else (), self._findings_of, association_id)

    def violations(self, association_id: int) -> list[ViolationRecord]:
        with self._lock:
            rest = self._spilled_rest(association_id)
            return self._joined(
                rest.violations if rest else (), self._violations_of, association_id
            )

    def gaps(self, association_id: int) -> list[Gap]:
        with self._lock:
            rest = self._spilled_rest(association_id)
            return self._joined(rest.gaps if rest else (), self._gaps_of, association_id)

    def notes(self, association_id: int) -> list[Note]:
        with self._lock:
            rest = self._spilled_rest(association_id)
            return self._joined(rest.notes if rest else (), self._notes_of, association_id)

    def links(self, association_id: int) -> list[Link]:
        """The links from or to an association, in the order they were made."""
        with self._lock:
            rest = self._spilled_rest(association_id)
            return self._joined(rest.links if rest else (), self._links_of, association_id)

    def _spilled_rest(self, aid: int) -> Spilled | None:
        return self._rest(aid) if self.spill is not None else None

    def _joined(self, spilled: Iterable[_T], table: dict[int, list[_T]], aid: int) -> list[_T]:
        """What was spilled about ``aid``, then what came since (in the order stored)."""
        if not self._visible(aid):
            return []
        return [*spilled, *table.get(aid, ())]

    def _ids(self) -> list[int]:
        return [aid for aid in self._order if self._visible(aid)]

    def pdus(self, association_id: int) -> list[PduRecord]:
        with self._lock:
            if self.compact_pdus:
                log = self._pdu_logs.get(association_id)
                return log.records(association_id) if log is not None else []
            return list(self._pdus_of.get(association_id, ()))

    def __iter__(self) -> Iterator[Association]:
        return self.iter_associations()

    def __len__(self) -> int:
        if self.spill is None:
            return len(self._associations)
        if self._keep is None:
            return len(self._order)
        return len(self._ids())


_CACHED = 2  # blocks of spilled associations kept read back (a report reads each several times)
_BLOCK = 256  # associations spilled in one batch, at most
_BLOCK_WEIGHT = 1 << 20  # estimated bytes of records spilled in one batch, at most
_OUTCOMES = tuple(Outcome)


@dataclass(slots=True)
class Tally:
    """Totals over a store's associations (see :meth:`Store.tally`)."""

    associations: int = 0
    exchanges: int = 0
    outcomes: dict[Outcome | None, int] = field(default_factory=dict)

    def count(self, exchanges: int, outcome: Outcome | None) -> None:
        self.associations += 1
        self.exchanges += exchanges
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


_T = TypeVar("_T")


def _first(pair: tuple[int, int]) -> int:
    return pair[0]
