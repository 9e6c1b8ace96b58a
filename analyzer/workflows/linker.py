"""The linker: ties a request to the work it caused, on its own association or another.

It runs as associations end (whatever the source: a file, a live capture, the proxy), so a
link is made as soon as both of its ends are known, in whichever order they end. Each link
is added to the store (:meth:`~analyzer.store.Store.add_link`), where the reports and the
terminal UI read it. What the linker has waited for long enough (a C-MOVE an hour after it
ended, a commitment request a day after it was made, in capture time; everything when the
source ends) is *settled*: handed to the rules about what never came, then forgotten, so
that a capture running for weeks does not grow the linker without bound.
"""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.model import Association, Exchange, Link, LinkHow, LinkKind
from analyzer.store import Store

from .commitment_linker import CommitmentFlow, CommitmentLinker
from .moves import MoveFlow, MoveLinker

MOVE_RETENTION_NS = 3600 * 1_000_000_000
"""A C-MOVE is settled this long (capture time) after its final response."""
COMMITMENT_RETENTION_NS = 24 * 3600 * 1_000_000_000
"""A storage commitment request is settled this long after it was made."""
_SETTLE_EVERY_NS = 60 * 1_000_000_000


@dataclass(frozen=True, slots=True)
class GetFlow:
    """A C-GET and the C-STORE sub-operations it got on its own association."""

    association: Association
    exchange: Exchange
    stores: tuple[Exchange, ...]


@dataclass(frozen=True, slots=True)
class Update:
    """What the linker learnt when an association (or the source) ended."""

    links: tuple[Link, ...] = ()
    """The links made now (already in the store; a C-GET's are made as it completes)."""
    moves: tuple[MoveFlow, ...] = ()
    """C-MOVEs that got new links now."""
    gets: tuple[GetFlow, ...] = ()
    """The C-GETs of the association that ended."""
    commitments: tuple[CommitmentFlow, ...] = ()
    """Storage commitment requests that got new links now."""
    settled_moves: tuple[MoveFlow, ...] = ()
    settled_commitments: tuple[CommitmentFlow, ...] = ()


class Linker:
    """Links across associations, fed as each association ends (see the module doc)."""

    def __init__(
        self,
        *,
        move_retention_ns: int = MOVE_RETENTION_NS,
        commitment_retention_ns: int = COMMITMENT_RETENTION_NS,
    ) -> None:
        self._moves = MoveLinker()
        self._commitments = CommitmentLinker()
        self._move_retention = move_retention_ns
        self._commitment_retention = commitment_retention_ns
        self._now: int | None = None
        self._settled_at: int | None = None

    def association_ended(self, store: Store, a: Association) -> Update:
        """Link what ``a`` carried (or was) with what is already known."""
        exchanges = store.exchanges(a.id)
        moves = self._moves.association_ended(a, exchanges)
        claimed = any(link.target_association == a.id for m in moves for link in m.new)
        commitments = self._commitments.association_ended(a, exchanges, claimed=claimed)
        gets = tuple(_gets(store, a, exchanges))
        links = [link for m in moves for link in m.new]
        links += [link for c in commitments for link in c.new]
        for link in links:
            store.add_link(link)
        settled_moves, settled_commitments = self._settle(a.end_ts or a.start_ts)
        return Update(
            links=tuple(links),
            moves=tuple(moves),
            gets=gets,
            commitments=tuple(commitments),
            settled_moves=tuple(settled_moves),
            settled_commitments=tuple(settled_commitments),
        )

    def exchange_ended(self, store: Store, e: Exchange) -> list[Link]:
        """A C-GET is complete (not stored yet): link the C-STOREs its SCP sent meanwhile on
        the same association, all already stored, so that its record names them."""
        if e.service != "C-GET" or not e.from_requestor:
            return []
        a = store.association(e.association)
        start = e.request.ts if e.request is not None else (a.start_ts if a else e.start_ts)
        end = e.end_ts if e.end_ts is not None else None
        taken = {x.target_exchange for x in store.links(e.association) if x.kind == LinkKind.GET}
        links = [
            _get_link(e, s)
            for s in store.exchanges(e.association)
            if s.service == "C-STORE"
            and not s.from_requestor
            and s.index not in taken
            and start <= s.start_ts
            and (end is None or s.start_ts <= end)
        ]
        for link in links:
            store.add_link(link)
        return links

    def source_ended(self, store: Store) -> Update:
        """Settle everything still waiting."""
        return Update(
            settled_moves=tuple(self._moves.settle(None)),
            settled_commitments=tuple(self._commitments.settle(None)),
        )

    def _settle(self, ts: int) -> tuple[list[MoveFlow], list[CommitmentFlow]]:
        self._now = ts if self._now is None else max(self._now, ts)
        if self._settled_at is not None and self._now - self._settled_at < _SETTLE_EVERY_NS:
            return [], []
        self._settled_at = self._now
        return (
            self._moves.settle(self._now - self._move_retention),
            self._commitments.settle(self._now - self._commitment_retention),
        )


def _gets(store: Store, a: Association, exchanges: list[Exchange]) -> list[GetFlow]:
    """Each C-GET of ``a`` with the C-STOREs linked to it when it completed."""
    gets = [e for e in exchanges if e.service == "C-GET" and e.from_requestor]
    if not gets:
        return []
    by_index = {e.index: e for e in exchanges}
    links = store.links(a.id)
    return [
        GetFlow(
            a,
            g,
            tuple(
                by_index[x.target_exchange]
                for x in links
                if x.kind == LinkKind.GET
                and x.exchange == g.index
                and x.target_exchange in by_index
            ),
        )
        for g in gets
    ]


def _get_link(get: Exchange, store: Exchange) -> Link:
    return Link(
        kind=LinkKind.GET,
        association=get.association,
        exchange=get.index,
        target_association=store.association,
        target_exchange=store.index,
        how=LinkHow.SAME_ASSOCIATION,
        reason="a C-STORE-RQ from the C-GET SCP on the same association while the C-GET ran",
        ts=store.start_ts,
    )
