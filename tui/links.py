"""Workflow links as the screens show and follow them (headless: no Textual here).

A C-MOVE leads to its sub-associations, a storage commitment N-ACTION to the association
of its report; a sub-association or a reverse association leads back to the request it was
opened for. ``l`` on the association and exchange screens follows these (see
:func:`follow`).
"""

from __future__ import annotations

from analyzer.model import Association, Exchange, Link, LinkKind
from analyzer.store import Store
from analyzer.workflows import links_from


def origin(store: Store, a: Association) -> Link | None:
    """The link from another association's request to ``a`` (or to one of its exchanges)."""
    for link in store.links(a.id):
        if link.target_association == a.id and link.association != a.id:
            return link
    return None


def onward(store: Store, a: Association) -> list[Link]:
    """Links from ``a``'s requests to other associations."""
    return [x for x in store.links(a.id) if x.association == a.id and x.target_association != a.id]


_REQUEST = {LinkKind.MOVE: "C-MOVE", LinkKind.GET: "C-GET", LinkKind.COMMITMENT: "N-ACTION"}


def workflow_line(store: Store, a: Association) -> str | None:
    """``workflow: opened for C-MOVE 1 of #1 · …  (l: follow)``, or None without links."""
    parts = []
    back = origin(store, a)
    if back is not None:
        parts.append(f"opened for {_REQUEST[back.kind]} {back.exchange} of #{back.association}")
    by_request: dict[tuple[LinkKind, int], list[int]] = {}
    for link in onward(store, a):
        targets = by_request.setdefault((link.kind, link.exchange), [])
        if link.target_association not in targets:
            targets.append(link.target_association)
    for (kind, index), targets in by_request.items():
        shown = ", ".join(f"#{t}" for t in targets[:4]) + (" …" if len(targets) > 4 else "")
        parts.append(f"{_REQUEST[kind]} {index} → {shown}")
    if not parts:
        return None
    return "workflow: " + " · ".join(parts) + "   (l: follow)"


def exchange_targets(store: Store, e: Exchange) -> list[int]:
    """The other associations an exchange's links lead to (a C-MOVE's sub-associations)."""
    out: list[int] = []
    for kind in LinkKind:
        for link in links_from(store, e, kind):
            if link.target_association != e.association and link.target_association not in out:
                out.append(link.target_association)
    return out


def origin_exchange(store: Store, link: Link) -> Exchange | None:
    """The request a link starts from."""
    return next((e for e in store.exchanges(link.association) if e.index == link.exchange), None)
