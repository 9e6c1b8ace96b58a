"""C-MOVE → the association(s) that carried its C-STORE sub-operations.

A C-MOVE SCP sends the objects on a *new* association that it opens to the Move Destination
(PS3.4 C.4.2). Each C-STORE-RQ of that sub-association should carry the C-MOVE's Move
Originator AE Title (0000,1030) and Move Originator Message ID (0000,1031) (PS3.7 9.1.1.1):
when they are there, the link is exact (``originator-fields``), whatever the addresses.

Without them (or for a sub-association that never got as far as a C-STORE: rejected,
aborted, refused), the link is inferred, and only when nothing else fits: the association
comes from the C-MOVE SCP's address, is called with the Move Destination AE title and calls
with the SCP's own AE title, starts between the C-MOVE-RQ and its final response, and no
other C-MOVE known at that moment fits as well. An association to the same destination from
another AE (another modality storing at the same time), or whose C-STOREs lack the fields
although this SCP is known to send them, is never linked. A connection attempt from the
SCP's address during a C-MOVE that failed, which never became an association (refused,
unanswered), is linked as an inferred attempt.

Decisions are made when both ends are known (the C-MOVE's association and the
sub-association have ended), in whatever order they end; an inferred link is not revised
when a C-MOVE that would also fit ends later.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TypeVar

from pynetdicom.status import Status

from analyzer.model import Association, Endpoint, Exchange, Link, LinkHow, LinkKind, Outcome

#: The C-MOVE SCP answered 0xA801: it sent nothing anywhere.
MOVE_DESTINATION_UNKNOWN: int = Status.MOVE_DESTINATION_UNKNOWN

_K = TypeVar("_K")

_SLACK_NS = 1_000_000_000
"""C-STORE sub-operations may be a little outside the C-MOVE's lifetime as captured
(timestamps of two connections, a response crossing the last C-STORE)."""


_FIRST_KEPT = 4096
"""Data set bytes a waiting association keeps of its first C-STORE (of each originator
pair): the UIDs that tell two C-MOVEs apart are near the start of the data set."""

MAX_WAITING = 5000
"""Ended associations kept waiting for their C-MOVE at most (the oldest are forgotten
first): a proxy or a busy site's capture must not hold an hour of storage traffic."""


def _light(e: Exchange, keep: int = 0) -> Exchange:
    """``e`` with at most ``keep`` bytes of its data sets (links need the commands and the
    counts; the bytes kept for display would make every waiting association heavy)."""
    request, final = e.request, e.final
    if request is not None and request.dataset is not None and len(request.dataset.kept) > keep:
        request = replace(
            request, dataset=replace(request.dataset, kept=request.dataset.kept[:keep])
        )
    if final is not None and final.dataset is not None and final.dataset.kept:
        final = replace(final, dataset=replace(final.dataset, kept=b""))
    if request is e.request and final is e.final:
        return e
    return replace(e, request=request, final=final)


@dataclass(frozen=True, slots=True)
class MoveFlow:
    """What became of one C-MOVE, as far as the capture shows."""

    association: Association
    """The association that carried the C-MOVE."""
    exchange: Exchange
    destination: str | None
    originator: str | None
    """The AE title the C-STOREs should name as Move Originator (the C-MOVE SCU's)."""
    scp_ae: str | None
    subs: tuple[Association, ...]
    """Linked sub-associations (any outcome but never-associated), in start order."""
    attempts: tuple[Association, ...]
    """Linked connection attempts that never became an association."""
    stores: tuple[Exchange, ...]
    """The C-STORE sub-operations seen for this C-MOVE on its sub-associations."""
    links: tuple[Link, ...]
    new: tuple[Link, ...] = ()
    """The links made just now (for rules about what a new link shows)."""
    unlinked: tuple[Association, ...] = ()
    """When settled: associations to the destination during the C-MOVE that could not be
    tied to it (another AE calling, no originator fields although expected, ambiguity)."""

    @property
    def scp_implementation(self) -> tuple[str | None, str | None]:
        """(class UID, version name) of the C-MOVE SCP."""
        a, e = self.association, self.exchange
        info = a.acceptor_info if e.from_requestor else a.requestor_info
        if info is None:
            return None, None
        return info.implementation_class_uid, info.implementation_version_name


class _Move:
    """A C-MOVE exchange waiting for (or holding) its sub-associations."""

    __slots__ = (
        "_identifier",
        "association",
        "attempts",
        "destination",
        "end",
        "exchange",
        "links",
        "message_id",
        "originator",
        "scp_ae",
        "scp_ip",
        "scp_server",
        "start",
        "stores",
        "subs",
    )

    def __init__(self, a: Association, e: Exchange) -> None:
        self.association = a
        self.exchange = e
        req = e.request
        self.destination = (
            (req.command.move_destination or "").strip() or None if req is not None else None
        )
        self.originator = a.calling_ae_title if e.from_requestor else a.called_ae_title
        self.scp_ae = a.called_ae_title if e.from_requestor else a.calling_ae_title
        self.scp_ip = a.server.ip if e.from_requestor else a.client.ip
        self.scp_server: Endpoint | None = a.server if e.from_requestor else None
        self.message_id = e.message_id
        self.start = e.start_ts
        self.end = e.end_ts if e.end_ts is not None else (a.end_ts or e.start_ts)
        self.subs: list[Association] = []
        self.attempts: list[Association] = []
        self.stores: list[Exchange] = []
        self.links: list[Link] = []
        self._identifier: dict[str, set[str]] | None = None

    @property
    def key(self) -> tuple[int, int]:
        return (self.association.id, self.exchange.index)

    def identifier(self) -> dict[str, set[str]]:
        """The UID keys of the C-MOVE's identifier (decoded once, when first needed)."""
        if self._identifier is None:
            req = self.exchange.request
            found: dict[str, set[str]] = {}
            if req is not None and req.dataset is not None:
                ds = req.dataset.decode()
                found = {k: _values(ds.get(k)) for k in _KEYS if ds.get(k)}
            self._identifier = found
        return self._identifier

    def during(self, ts: int, slack: int = 0) -> bool:
        """Between the C-MOVE-RQ and the final response (``slack`` after it: a response may
        cross the last C-STORE). Nothing of a sub-operation can come before the request."""
        return self.start <= ts <= self.end + slack

    def failed(self) -> bool:
        """The C-MOVE did not deliver everything (a failure, a warning, failed counters)."""
        e = self.exchange
        if e.final is None:
            return True
        sub = e.suboperations
        return e.status_category in ("Failure", "Warning") or bool(sub and sub[2])

    def flow(self, new: Iterable[Link] = (), unlinked: Iterable[Association] = ()) -> MoveFlow:
        return MoveFlow(
            association=self.association,
            exchange=self.exchange,
            destination=self.destination,
            originator=self.originator,
            scp_ae=self.scp_ae,
            subs=tuple(sorted(self.subs, key=lambda s: (s.start_ts, s.id))),
            attempts=tuple(self.attempts),
            stores=tuple(sorted(self.stores, key=lambda s: s.start_ts)),
            links=tuple(self.links),
            new=tuple(new),
            unlinked=tuple(unlinked),
        )


class _Sub:
    """An ended association that may have carried C-MOVE sub-operations."""

    __slots__ = ("association", "linked", "pairs", "plain")

    def __init__(self, a: Association, exchanges: list[Exchange]) -> None:
        self.association = a
        self.pairs: dict[tuple[str | None, int], list[Exchange]] = defaultdict(list)
        self.plain: list[Exchange] = []
        for e in exchanges:
            if e.service != "C-STORE" or not e.from_requestor or e.request is None:
                continue
            cmd = e.request.command
            if cmd.move_originator_message_id is not None or cmd.move_originator_ae:
                ae = (cmd.move_originator_ae or "").strip() or None
                stores = self.pairs[(ae, cmd.move_originator_message_id or 0)]
            else:
                stores = self.plain
            stores.append(_light(e, 0 if stores else _FIRST_KEPT))
        self.linked: set[tuple[int, int]] = set()

    @property
    def attempt(self) -> bool:
        return self.association.outcome == Outcome.NEVER_ASSOCIATED

    @property
    def start(self) -> int:
        return self.association.start_ts


class MoveLinker:
    """Links C-MOVE exchanges to their sub-associations as associations end."""

    def __init__(self) -> None:
        self._moves: dict[tuple[int, int], _Move] = {}
        self._by_mid: dict[int, list[_Move]] = defaultdict(list)
        self._by_dest: dict[str, list[_Move]] = defaultdict(list)
        self._by_scp_ip: dict[str, list[_Move]] = defaultdict(list)
        self._subs_by_mid: dict[int, list[_Sub]] = defaultdict(list)
        self._subs_by_called: dict[str, list[_Sub]] = defaultdict(list)
        self._attempts: list[_Sub] = []
        self._waiting: deque[_Sub] = deque()  # every sub above, in the order they ended
        self._senders: set[str] = set()
        """Calling AE titles seen sending C-STOREs with the originator fields."""
        self._touched: dict[tuple[int, int], list[Link]] = {}

    # --- feeding ---------------------------------------------------------------------

    def association_ended(self, a: Association, exchanges: list[Exchange]) -> list[MoveFlow]:
        """Register what ``a`` carried; return the C-MOVEs that got new links."""
        self._touched = {}
        new_moves = [
            _Move(a, e) for e in exchanges if e.service == "C-MOVE" and (e.request or e.final)
        ]
        for m in new_moves:
            self._moves[m.key] = m
            self._by_mid[m.message_id or 0].append(m)
            self._by_scp_ip[m.scp_ip].append(m)
            if m.destination:
                self._by_dest[m.destination].append(m)
        sub = _Sub(a, exchanges)
        if sub.pairs or sub.attempt or a.called_ae_title:
            self._add_sub(sub)
        for m in new_moves:
            self._match_move(m)
        self._match_sub(sub)
        return [self._moves[k].flow(new) for k, new in self._touched.items() if k in self._moves]

    def _add_sub(self, sub: _Sub) -> None:
        self._waiting.append(sub)
        if len(self._waiting) > MAX_WAITING * 5 // 4:  # in batches: O(1) amortised
            while len(self._waiting) > MAX_WAITING:
                self._waiting.popleft()
            self._drop_waiting()
        a = sub.association
        for _, mid in sub.pairs:
            self._subs_by_mid[mid].append(sub)
            if a.calling_ae_title:
                self._senders.add(a.calling_ae_title)
        if sub.attempt:
            self._attempts.append(sub)
        elif a.called_ae_title:
            self._subs_by_called[a.called_ae_title].append(sub)

    # --- matching --------------------------------------------------------------------

    def _match_move(self, m: _Move) -> None:
        """A C-MOVE became known: the sub-associations that ended before it."""
        for sub in list(self._subs_by_mid.get(m.message_id or 0, ())):
            self._match_sub(sub)
        if m.destination:
            for sub in list(self._subs_by_called.get(m.destination, ())):
                if not sub.pairs:
                    self._match_sub(sub)
        for sub in list(self._attempts):
            self._match_sub(sub)

    def _match_sub(self, sub: _Sub) -> None:
        for pair, stores in sub.pairs.items():
            m = self._exact(sub, pair, stores)
            if m is not None:
                self._link(
                    m,
                    sub,
                    LinkHow.ORIGINATOR_FIELDS,
                    f"{len(stores)} C-STORE-RQ(s) name Move Originator AE Title "
                    f"'{pair[0] or ''}' and Message ID {pair[1]}",
                    stores,
                )
        if sub.pairs:
            return  # C-STOREs without the fields next to ones with them are not linked
        a = sub.association
        if not sub.attempt and not a.called_ae_title:
            return
        near = (
            self._by_scp_ip.get(a.client.ip, ())
            if sub.attempt
            else self._by_dest.get(a.called_ae_title or "", ())
        )
        candidates = [m for m in near if self._fits(m, sub)]
        if sub.plain:  # objects whose UIDs another C-MOVE asked for are not this one's
            candidates = [m for m in candidates if _asked_for(m, sub.plain[:1]) is not False]
        if len(candidates) != 1:
            return  # nothing fits yet, or more than one C-MOVE would: no guess
        if sub.attempt:
            reason = (
                f"a connection from the C-MOVE SCP's address {a.client.ip} to {a.server} "
                "during the C-MOVE, which never became an association"
            )
        else:
            reason = (
                f"from the C-MOVE SCP's address {a.client.ip}, calling AE "
                f"'{a.calling_ae_title}' (the SCP's own), called AE '{a.called_ae_title}' (the "
                "Move Destination), during the C-MOVE; no other C-MOVE fits"
                + (" the UIDs of the objects sent" if sub.plain else "")
            )
        self._link(candidates[0], sub, LinkHow.INFERRED, reason, sub.plain)

    def _exact(
        self, sub: _Sub, pair: tuple[str | None, int], stores: list[Exchange]
    ) -> _Move | None:
        """The C-MOVE the originator fields name, at the time of the C-STOREs.

        The AE title must be the C-MOVE SCU's, or the SCP's own (pynetdicom's C-MOVE SCP
        writes its own title there); message IDs are reused (every movescu run starts at 1),
        so two C-MOVEs may fit: then the destination, the SCP's address, and at last the
        UIDs the C-MOVE asked for against those of the objects sent, decide."""
        first = min(e.start_ts for e in stores)
        ae, mid = pair
        found = [
            m
            for m in self._by_mid.get(mid, ())
            if m.during(first, _SLACK_NS)
            and (ae is None or m.originator is None or ae in (m.originator, m.scp_ae))
        ]
        if len(found) > 1:
            a = sub.association
            found = [
                m
                for m in found
                if m.destination in (a.called_ae_title, None) and m.scp_ip == a.client.ip
            ]
        # the C-MOVE that the objects belong to may not be known yet (its association has
        # not ended): never take one whose identifier names other UIDs
        found = [m for m in found if _asked_for(m, stores[:1]) is not False]
        return found[0] if len(found) == 1 else None

    def _fits(self, m: _Move, sub: _Sub) -> bool:
        """Whether an association without originator fields may be ``m``'s sub-association."""
        a = sub.association
        if a.id == m.association.id or a.client.ip != m.scp_ip:
            return False
        if not m.during(sub.start):
            return False
        if sub.attempt:
            return m.failed() and a.server != m.scp_server
        if sub.plain and a.calling_ae_title in self._senders:
            return False  # this SCP sends the originator fields; these C-STOREs are not its
        return (
            m.destination is not None
            and a.called_ae_title == m.destination
            and m.scp_ae is not None
            and a.calling_ae_title == m.scp_ae
        )

    def _link(self, m: _Move, sub: _Sub, how: LinkHow, reason: str, stores: list[Exchange]) -> None:
        if m.key in sub.linked:
            return
        sub.linked.add(m.key)
        a = sub.association
        link = Link(
            kind=LinkKind.MOVE,
            association=m.association.id,
            exchange=m.exchange.index,
            target_association=a.id,
            target_exchange=None,
            how=how,
            reason=reason,
            ts=a.start_ts,
        )
        m.links.append(link)
        (m.attempts if sub.attempt else m.subs).append(a)
        m.stores.extend(stores)
        self._touched.setdefault(m.key, []).append(link)

    # --- settling --------------------------------------------------------------------

    def settle(self, before: int | None) -> list[MoveFlow]:
        """Forget the C-MOVEs that ended before ``before`` (all of them: None), and the
        associations that ended before it; return what became of each C-MOVE, for the rules
        about what never came."""
        done = [m for m in self._moves.values() if before is None or m.end < before]
        out: list[MoveFlow] = []
        for m in done:
            del self._moves[m.key]
            out.append(m.flow(unlinked=self._unlinked(m)))
        if done:
            self._by_mid = _still(self._by_mid, self._moves)
            self._by_dest = _still(self._by_dest, self._moves)
            self._by_scp_ip = _still(self._by_scp_ip, self._moves)
        self._waiting = deque(s for s in self._waiting if _keep(s, before))
        self._drop_waiting()
        return out

    def _drop_waiting(self) -> None:
        """The indexes without the subs no longer in :attr:`_waiting`."""
        waiting = {id(s) for s in self._waiting}
        self._subs_by_mid = _kept(self._subs_by_mid, waiting)
        self._subs_by_called = _kept(self._subs_by_called, waiting)
        self._attempts = [s for s in self._attempts if id(s) in waiting]

    def _unlinked(self, m: _Move) -> list[Association]:
        if not m.destination:
            return []
        return [
            s.association
            for s in self._subs_by_called.get(m.destination, ())
            if m.key not in s.linked and m.during(s.start)
        ]


_KEYS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


def _asked_for(m: _Move, stores: list[Exchange]) -> bool | None:
    """Whether the C-MOVE's identifier names the UIDs of these objects: None when that
    cannot be told (no UID in the identifier, a data set not captured)."""
    wanted = m.identifier()
    if not wanted:
        return None
    for e in stores:
        msg = e.request
        if msg is None or msg.dataset is None:
            return None
        ds = msg.dataset.decode()
        for k, values in wanted.items():
            got = _values(ds.get(k))
            if got and not got & values:
                return False
    return True


def _values(value: object) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        return {str(value).strip()}
    return {str(v).strip() for v in value}


def _still(
    index: dict[_K, list[_Move]], moves: dict[tuple[int, int], _Move]
) -> defaultdict[_K, list[_Move]]:
    """``index`` without the C-MOVEs no longer in ``moves``."""
    out: defaultdict[_K, list[_Move]] = defaultdict(list)
    for key, found in index.items():
        kept = [m for m in found if m.key in moves]
        if kept:
            out[key] = kept
    return out


def _keep(sub: _Sub, before: int | None) -> bool:
    end = sub.association.end_ts
    return before is not None and (end is None or end >= before)


def _kept(index: dict[_K, list[_Sub]], waiting: set[int]) -> defaultdict[_K, list[_Sub]]:
    out: defaultdict[_K, list[_Sub]] = defaultdict(list)
    for key, subs in index.items():
        kept = [s for s in subs if id(s) in waiting]
        if kept:
            out[key] = kept
    return out
