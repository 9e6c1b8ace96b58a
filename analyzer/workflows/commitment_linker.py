"""Storage Commitment: N-ACTION → N-EVENT-REPORT(s), by Transaction UID, on any association.

The commitment SCP may answer on the association of the N-ACTION (its acceptor sends the
N-EVENT-REPORT: legal with the default roles, PS3.4 J.3), on a *reverse* association that it
opens to the SCU (it is then the requestor, with the SCP role negotiated), or on a later
association the SCU opens. The Transaction UID (0008,1195) in both data sets ties them
whatever the order in which the associations end (capture files read in either order).

A reverse association that failed before it could carry a report (rejected, refused, no
usable context) carries no Transaction UID: it is linked by inference, when it goes from
the N-ACTION's acceptor to its requestor (AE titles swapped, when they were seen) after the
N-ACTION, and exactly one N-ACTION still waiting for its report fits.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum

from analyzer.model import Association, Exchange, Link, LinkHow, LinkKind, Outcome

from .commitment import CommitmentData, commitment_data, is_report, is_request
from .moves import MAX_WAITING


class Delivery(StrEnum):
    """How a storage commitment report reached the SCU."""

    SAME_ASSOCIATION = "same-association"
    """On the association of the N-ACTION, sent by its acceptor."""
    REVERSE_ASSOCIATION = "reverse-association"
    """On an association the commitment SCP opened to the SCU."""
    NEW_ASSOCIATION = "new-association"
    """On a later association the SCU opened (the SCP's acceptor sent it)."""
    NONE = "none"
    """No report seen."""


@dataclass(frozen=True, slots=True)
class Report:
    """One N-EVENT-REPORT tied to an N-ACTION."""

    association: Association
    exchange: Exchange
    data: CommitmentData | None
    link: Link
    delivery: Delivery


@dataclass(frozen=True, slots=True)
class CommitmentFlow:
    """What became of one storage commitment request, as far as the capture shows."""

    association: Association
    """The association that carried the N-ACTION."""
    exchange: Exchange
    data: CommitmentData | None
    reports: tuple[Report, ...]
    attempts: tuple[Association, ...]
    """Associations from the SCP to the SCU after the N-ACTION that carried no report."""
    links: tuple[Link, ...]
    new: tuple[Link, ...] = ()

    @property
    def delivery(self) -> Delivery:
        return self.reports[0].delivery if self.reports else Delivery.NONE

    @property
    def time_to_report_ns(self) -> int | None:
        """From the N-ACTION-RQ to the first N-EVENT-REPORT-RQ."""
        if not self.reports:
            return None
        return min(r.exchange.start_ts for r in self.reports) - self.exchange.start_ts

    @property
    def scp(self) -> tuple[str | None, str | None]:
        """(AE title, IP) of the commitment SCP (the N-ACTION's receiver)."""
        a, e = self.association, self.exchange
        if e.from_requestor:
            return a.called_ae_title, a.server.ip
        return a.calling_ae_title, a.client.ip

    @property
    def scu(self) -> tuple[str | None, str | None]:
        """(AE title, IP) of the commitment SCU (the N-ACTION's sender)."""
        a, e = self.association, self.exchange
        if e.from_requestor:
            return a.calling_ae_title, a.client.ip
        return a.called_ae_title, a.server.ip


class _Action:
    __slots__ = ("association", "attempts", "data", "exchange", "links", "reports")

    def __init__(self, a: Association, e: Exchange, data: CommitmentData | None) -> None:
        self.association = a
        self.exchange = e
        self.data = data
        self.reports: list[Report] = []
        self.attempts: list[Association] = []
        self.links: list[Link] = []

    @property
    def key(self) -> tuple[int, int]:
        return (self.association.id, self.exchange.index)

    @property
    def uid(self) -> str | None:
        return self.data.transaction_uid if self.data else None

    @property
    def addresses(self) -> tuple[str, str]:
        """(SCP IP, SCU IP)."""
        a = self.association
        if self.exchange.from_requestor:
            return a.server.ip, a.client.ip
        return a.client.ip, a.server.ip

    def flow(self, new: list[Link] | None = None) -> CommitmentFlow:
        return CommitmentFlow(
            association=self.association,
            exchange=self.exchange,
            data=self.data,
            reports=tuple(sorted(self.reports, key=lambda r: r.exchange.start_ts)),
            attempts=tuple(self.attempts),
            links=tuple(self.links),
            new=tuple(new or ()),
        )


_Waiting = tuple[Association, Exchange, CommitmentData]


class CommitmentLinker:
    """Links storage commitment requests to their reports as associations end."""

    def __init__(self) -> None:
        self._actions: dict[tuple[int, int], _Action] = {}
        self._by_uid: dict[str, list[_Action]] = defaultdict(list)
        self._waiting_by_ips: dict[tuple[str, str], list[_Action]] = defaultdict(list)
        """Requests by (SCP address, SCU address): where a reverse association would go."""
        self._waiting: dict[str, list[_Waiting]] = defaultdict(list)
        self._unclaimed: list[Association] = []
        """Associations without exchanges not tied to a request yet."""
        """Reports whose N-ACTION is not known yet (read in the other order)."""
        self._touched: dict[tuple[int, int], list[Link]] = {}

    def association_ended(
        self, a: Association, exchanges: list[Exchange], *, claimed: bool = False
    ) -> list[CommitmentFlow]:
        """Register what ``a`` carried; return the N-ACTIONs that got new links.
        ``claimed``: ``a`` is already linked elsewhere (a C-MOVE's attempt)."""
        self._touched = {}
        reports = 0
        new = False
        for e in exchanges:
            if is_request(e) and (e.request is not None or e.final is not None):
                action = _Action(a, e, commitment_data(e))
                self._actions[action.key] = action
                self._waiting_by_ips[action.addresses].append(action)
                new = True
                if action.uid:
                    self._by_uid[action.uid].append(action)
                    for waiting in self._waiting.pop(action.uid, []):
                        self._report(*waiting)
            elif is_report(e):
                reports += 1
                data = commitment_data(e)
                if data is not None and data.transaction_uid:
                    self._report(a, e, data)
        if not reports and not claimed and not a.exchanges and not self._attempt(a):
            self._unclaimed.append(a)  # its request may end later (a reverse association
            # often ends before the association of the N-ACTION does)
            if len(self._unclaimed) > MAX_WAITING * 5 // 4:  # bounded, in batches
                self._unclaimed = self._unclaimed[-MAX_WAITING:]
        if new and self._unclaimed:
            self._unclaimed = [x for x in self._unclaimed if not self._attempt(x)]
        return [
            self._actions[k].flow(new) for k, new in self._touched.items() if k in self._actions
        ]

    def _report(self, a: Association, e: Exchange, data: CommitmentData) -> None:
        uid = data.transaction_uid
        assert uid is not None
        actions = self._by_uid.get(uid)
        if not actions:
            self._waiting[uid].append((a, e, data))
            return
        before = [x for x in actions if x.exchange.start_ts <= e.start_ts]
        action = max(before, key=lambda x: x.exchange.start_ts) if before else actions[0]
        if action.association.id == a.id:
            delivery = Delivery.SAME_ASSOCIATION
        elif e.from_requestor:
            delivery = Delivery.REVERSE_ASSOCIATION
        else:
            delivery = Delivery.NEW_ASSOCIATION
        link = Link(
            kind=LinkKind.COMMITMENT,
            association=action.association.id,
            exchange=action.exchange.index,
            target_association=a.id,
            target_exchange=e.index,
            how=LinkHow.TRANSACTION_UID,
            reason=f"Transaction UID {uid}",
            ts=e.start_ts,
        )
        action.reports.append(Report(a, e, data, link, delivery))
        self._add(action, link)

    def _attempt(self, a: Association) -> bool:
        """An association without exchanges: a reverse association that did not deliver?
        Returns whether it was linked."""
        waiting = self._waiting_by_ips.get((a.client.ip, a.server.ip), ())
        fits = [x for x in waiting if not x.reports and _reverse(x, a)]
        if not fits:
            return False
        # Several requests waiting: SCPs work through their requests in order (a job queue),
        # so this is the attempt for the oldest one not tried yet.
        untried = [x for x in fits if not x.attempts] or fits
        action = min(untried, key=lambda x: x.exchange.start_ts)
        others = len(fits) - 1
        how = "a connection attempt" if a.outcome == Outcome.NEVER_ASSOCIATED else "an association"
        link = Link(
            kind=LinkKind.COMMITMENT,
            association=action.association.id,
            exchange=action.exchange.index,
            target_association=a.id,
            target_exchange=None,
            how=LinkHow.INFERRED,
            reason=(
                f"{how} from the commitment SCP ({a.client.ip}) to the SCU ({a.server}) after "
                "the N-ACTION, which carried no report"
                + (
                    f"; of {others + 1} requests waiting for a report, the oldest one not tried yet"
                    if others
                    else "; no other request was waiting for one"
                )
            ),
            ts=a.start_ts,
        )
        action.attempts.append(a)
        self._add(action, link)
        return True

    def _add(self, action: _Action, link: Link) -> None:
        action.links.append(link)
        self._touched.setdefault(action.key, []).append(link)

    def settle(self, before: int | None) -> list[CommitmentFlow]:
        """Forget the requests made before ``before`` (all: None); return what became of
        each, for the rules about reports that never came."""
        done = [x for x in self._actions.values() if before is None or x.exchange.start_ts < before]
        for x in done:
            del self._actions[x.key]
            near = self._waiting_by_ips.get(x.addresses, [])
            if x in near:
                near.remove(x)
                if not near:
                    del self._waiting_by_ips[x.addresses]
            if x.uid:
                same = self._by_uid.get(x.uid, [])
                if x in same:
                    same.remove(x)
                if not same:
                    self._by_uid.pop(x.uid, None)
        self._unclaimed = [
            a for a in self._unclaimed if before is not None and (a.end_ts or a.start_ts) >= before
        ]
        if before is None:
            self._waiting.clear()
        else:
            for uid in list(self._waiting):
                kept = [w for w in self._waiting[uid] if w[1].start_ts >= before]
                if kept:
                    self._waiting[uid] = kept
                else:
                    del self._waiting[uid]
        return [x.flow() for x in done]


def _reverse(action: _Action, a: Association) -> bool:
    """``a`` goes from the N-ACTION's receiver to its sender, after the N-ACTION."""
    act, e = action.association, action.exchange
    if a.id == act.id or a.start_ts < e.start_ts:
        return False
    scp, scu = (act.server, act.client) if e.from_requestor else (act.client, act.server)
    scp_ae, scu_ae = (
        (act.called_ae_title, act.calling_ae_title)
        if e.from_requestor
        else (act.calling_ae_title, act.called_ae_title)
    )
    if a.client.ip != scp.ip or a.server.ip != scu.ip or a.server == act.server:
        return False
    if a.calling_ae_title is not None and scp_ae is not None and a.calling_ae_title != scp_ae:
        return False
    return not (
        a.called_ae_title is not None and scu_ae is not None and a.called_ae_title != scu_ae
    )
