"""Workflow lines of the text report: what an association's requests led to elsewhere, and
what request an association was opened for (from the links, :mod:`analyzer.workflows`)."""

from __future__ import annotations

from collections.abc import Sequence

from analyzer import redact
from analyzer.model import Association, Exchange, Link, LinkHow, LinkKind
from analyzer.store import Store
from analyzer.workflows import commitment_data, is_report, is_request

from .common import duration_text, plural

_HOW = {
    LinkHow.ORIGINATOR_FIELDS: "Move Originator fields",
    LinkHow.INFERRED: "inferred",
    LinkHow.SAME_ASSOCIATION: "same association",
    LinkHow.TRANSACTION_UID: "Transaction UID",
}


def orphan(e: Exchange) -> bool:
    """A response whose request is not in the capture: not an exchange of its own."""
    return e.request is None and e.final is not None


def orphan_reason(store: Store, e: Exchange) -> str:
    a = store.association(e.association)
    if a is not None and (a.partial or not a.handshake):
        return "its request was sent before the capture began"
    return "no request with this Message ID was seen"


def _target(store: Store, link: Link) -> str:
    a = store.association(link.target_association)
    if a is None:
        return f"association {link.target_association}"
    titles = f" {a.calling_ae_title or '?'} → {a.called_ae_title or '?'}" if a.rq_ts else ""
    return f"association {a.id}{titles} ({a.outcome or 'open'})"


def _move(store: Store, e: Exchange, links: Sequence[Link]) -> str:
    dest = e.request.command.move_destination if e.request else None
    head = f"C-MOVE #{e.index} to '{dest or '?'}'"
    if not links:
        return f"{head}: no sub-association seen"
    parts = [f"{_target(store, x)} [{_HOW[x.how]}]" for x in links]
    return f"{head} → " + "; ".join(parts)


def _get(e: Exchange, links: Sequence[Link]) -> str:
    targets = ", ".join(f"#{x.target_exchange}" for x in links[:12])
    more = f" and {len(links) - 12} more" if len(links) > 12 else ""
    sub = e.suboperations
    reported = f"; the SCP reported {(sub[1] or 0) + (sub[3] or 0)} completed" if sub else ""
    return f"C-GET #{e.index} → {plural(len(links), 'C-STORE')} {targets}{more}{reported}"


def _commitment(store: Store, e: Exchange, links: Sequence[Link]) -> str:
    data = commitment_data(e)
    uid = redact.uid(data.transaction_uid) if data else None
    head = f"N-ACTION #{e.index} (storage commitment, Transaction UID {uid or '?'})"
    reports = [x for x in links if x.target_exchange is not None]
    attempts = [x for x in links if x.target_exchange is None]
    parts = []
    for x in reports:
        where = (
            "on this association"
            if x.target_association == e.association
            else f"on {_target(store, x)}"
        )
        parts.append(
            f"report N-EVENT-REPORT #{x.target_exchange} {where}, "
            f"{duration_text(x.ts - e.start_ts)} after the request"
        )
    for x in attempts:
        parts.append(f"failed delivery: {_target(store, x)}")
    if not reports:
        parts.append("no report seen")
    return f"{head} → " + "; ".join(parts)


def workflow_lines(store: Store, a: Association) -> list[str]:
    """``  Workflow:`` lines for the text report (empty when nothing links)."""
    links = store.links(a.id)
    lines: list[str] = []
    for link in links:
        if link.target_association != a.id or link.association == a.id:
            continue
        origin = f"#{link.exchange} of association {link.association} [{_HOW[link.how]}]"
        if link.kind == LinkKind.MOVE:
            lines.append(f"    opened by the C-MOVE SCP for C-MOVE {origin}")
        elif link.target_exchange is None:
            lines.append(f"    opened by the storage commitment SCP to report on N-ACTION {origin}")
        else:
            lines.append(
                f"    #{link.target_exchange} is the storage commitment report for N-ACTION "
                f"{origin}"
            )
    for e in store.exchanges(a.id):
        own = [x for x in links if x.association == a.id and x.exchange == e.index]
        if e.service == "C-MOVE" and e.request is not None:
            lines.append("    " + _move(store, e, [x for x in own if x.kind == LinkKind.MOVE]))
        elif e.service == "C-GET":
            lines.append("    " + _get(e, [x for x in own if x.kind == LinkKind.GET]))
        elif is_request(e):
            lines.append("    " + _commitment(store, e, own))
        elif is_report(e) and not any(
            x.target_association == a.id and x.target_exchange == e.index for x in links
        ):
            lines.append(
                f"    N-EVENT-REPORT #{e.index}: no storage commitment request with its "
                "Transaction UID in the capture"
            )
        if orphan(e):
            lines.append(
                f"    #{e.index} is a response only ({e.service}-RSP, message "
                f"{e.message_id}): {orphan_reason(store, e)}"
            )
    return ["  Workflow:", *lines] if lines else []


def link_text(store: Store, link: Link) -> str:
    """One line about a new link, for the live logs: ``C-MOVE #1 → association 2 ...``."""
    how = _HOW[link.how]
    if link.kind == LinkKind.MOVE:
        return f"C-MOVE #{link.exchange} → {_target(store, link)} [{how}]"
    if link.kind == LinkKind.GET:
        return f"C-GET #{link.exchange} → C-STORE #{link.target_exchange} [{how}]"
    if link.target_exchange is None:
        return (
            f"N-ACTION #{link.exchange} (storage commitment) → failed delivery: "
            f"{_target(store, link)} [{how}]"
        )
    where = (
        "this association" if link.target_association == link.association else _target(store, link)
    )
    return (
        f"N-ACTION #{link.exchange} (storage commitment) → report N-EVENT-REPORT "
        f"#{link.target_exchange} on {where} [{how}]"
    )
