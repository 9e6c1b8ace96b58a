"""Reading the links of the store: what reports and the terminal UI ask about a record."""

from __future__ import annotations

from analyzer.model import Association, Exchange, Link, LinkKind
from analyzer.store import Store


def links_from(store: Store, e: Exchange, kind: LinkKind) -> list[Link]:
    """The links of ``kind`` made from exchange ``e`` (a C-MOVE, C-GET or N-ACTION)."""
    return [
        link
        for link in store.links(e.association)
        if link.kind == kind and link.association == e.association and link.exchange == e.index
    ]


def links_to(store: Store, association: int, exchange: int | None = None) -> list[Link]:
    """The links whose target is an association (``exchange`` None) or one of its exchanges."""
    return [
        link
        for link in store.links(association)
        if link.target_association == association
        and link.target_exchange == exchange
        and not (link.association == association and exchange is None)
    ]


def sub_associations(store: Store, e: Exchange) -> list[Link]:
    """A C-MOVE's links to the associations that carried (or tried to carry) its C-STOREs."""
    return links_from(store, e, LinkKind.MOVE)


def initiated_by(store: Store, a: Association) -> Link | None:
    """The C-MOVE (or storage commitment request) whose work ``a`` carried, if linked."""
    found = links_to(store, a.id)
    return found[0] if found else None


def get_sub_operations(store: Store, e: Exchange) -> list[Link]:
    """A C-GET's links to its C-STORE sub-operations (same association)."""
    return links_from(store, e, LinkKind.GET)


def commitment_links(store: Store, e: Exchange) -> list[Link]:
    """A storage commitment N-ACTION's links: its reports (``target_exchange`` set) and the
    reverse associations that failed to carry one (``target_exchange`` None)."""
    return links_from(store, e, LinkKind.COMMITMENT)


def linked_request(store: Store, e: Exchange) -> Link | None:
    """For an N-EVENT-REPORT or a C-STORE: the link from its N-ACTION or C-GET."""
    found = links_to(store, e.association, e.index)
    return found[0] if found else None
