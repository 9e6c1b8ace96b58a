"""A filter applied to a finished store (reports) or to a store being filled (live logs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from analyzer.model import CAPTURE_WIDE, Association, Exchange, Finding
from analyzer.store import Change, ChangeKind, Store

from .facts import Facts

if TYPE_CHECKING:
    from . import Filter

__all__ = ["StreamFilter", "select"]


def select(store: Store, flt: Filter) -> Store:
    """A store holding the associations of ``store`` that match ``flt``, with everything
    recorded about them, and the findings about the capture as a whole (dropped packets:
    they bear on whatever is shown). Records are shared, not copied; order is kept."""
    keep = {
        a.id
        for a in store.iter_associations()
        if flt.matches(Facts(a, store.exchanges(a.id), store.findings(a.id)))
    }
    return store.subset(keep, capture_wide=CAPTURE_WIDE)


class StreamFilter:
    """Says, for each change of a store being filled, whether its association matches
    ``flt`` as known at that moment (with the exchanges and findings seen so far).

    A log that prints only accepted changes shows an association from the moment it
    matches: ``calling=CT*`` from its first line, ``latency>2s`` from the slow exchange on.
    Findings about the capture as a whole and the end of the source always pass.
    """

    def __init__(self, store: Store, flt: Filter) -> None:
        self.store = store
        self.filter = flt
        self._facts: dict[int, Facts] = {}

    def accepts(self, change: Change) -> bool:
        """Feed ``change`` (call this for every change, in order) and judge it."""
        record = change.record
        if change.kind is ChangeKind.DONE or record is None:
            return True
        if isinstance(record, Association):
            facts = self._facts.get(record.id)
            if facts is None:
                facts = self._facts[record.id] = Facts(record)
            else:
                facts.set_association(record)
            return self.filter.matches(facts)
        if isinstance(record, Finding):
            aid = record.evidence.association
            if aid == CAPTURE_WIDE:
                return True
            found = self._of(aid)
            if found is not None:
                found.add_finding(record)
        else:
            aid = record.association
            found = self._of(aid)
            if found is not None and isinstance(record, Exchange):
                found.add_exchange(record)
        return found is not None and self.filter.matches(found)

    def _of(self, association_id: int) -> Facts | None:
        facts = self._facts.get(association_id)
        if facts is None:
            record = self.store.association(association_id)
            if record is None:
                return None
            facts = self._facts[association_id] = Facts(record)
        return facts
