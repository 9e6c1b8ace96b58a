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
    """The links made now (already in the store)."""
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
        gets = tuple(_gets(a, exchanges))
        links = [link for m in moves for link in m.new]
        links += [link for c in commitments for link in c.new]
        links += [_get_link(g.exchange, s) for g in gets for s in g.stores]
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


def _gets(a: Association, exchanges: list[Exchange]) -> list[GetFlow]:
    """Each C-GET of ``a`` with the C-STOREs the acceptor sent while it ran."""
    gets = [e for e in exchanges if e.service == "C-GET" and e.from_requestor]
    if not gets:
        return []
    stores = [e for e in exchanges if e.service == "C-STORE" and not e.from_requestor]
    end = a.end_ts if a.end_ts is not None else max((e.end_ts or e.start_ts) for e in exchanges)

    def window(g: Exchange) -> tuple[int, int]:
        start = g.request.ts if g.request is not None else a.start_ts
        return start, g.end_ts if g.end_ts is not None else end

    found: dict[int, list[Exchange]] = {g.index: [] for g in gets}
    for s in stores:
        owners = [g for g in gets if window(g)[0] <= s.start_ts <= window(g)[1]]
        if len(owners) == 1:  # two C-GETs running at once: which one is not on the wire
            found[owners[0].index].append(s)
    return [GetFlow(a, g, tuple(found[g.index])) for g in gets]


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
