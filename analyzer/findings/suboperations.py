"""C-MOVE and C-GET: the sub-operation counts the SCP reported against the C-STOREs seen.

The final response's counts (or, without them, the last pending response's) say how many
C-STOREs completed; the links say which ones the capture holds. Fewer seen than reported is
usually the capture's doing (filtered to the C-MOVE SCP's port, started late, lost bytes);
when the capture looks whole, the SCP counted wrong or sent them where the capture does not
reach. More seen than reported is the SCP miscounting.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.model import Association, Exchange, Finding, Outcome, Severity
from analyzer.reports.common import plural
from analyzer.store import Store
from analyzer.workflows import Update

from .facts import Facts, exchange_label


def _delivered(stores: tuple[Exchange, ...]) -> int:
    return sum(1 for s in stores if s.status_category in ("Success", "Warning"))


def _incomplete(store: Store, associations: tuple[Association, ...]) -> str | None:
    """Why the capture may miss sub-operations of these associations, if it shows why."""
    for a in associations:
        if a.partial or not a.handshake:
            return f"association {a.id} was already running when the capture began"
        if a.gaps:
            return f"the capture lost {a.gap_bytes} bytes of association {a.id}"
        if a.outcome == Outcome.OPEN_AT_END:
            return f"association {a.id} was still open when the capture ended"
    if store.source.truncated:
        return "the capture file is truncated"
    return None


def _check(
    store: Store,
    a: Association,
    e: Exchange,
    stores: tuple[Exchange, ...],
    subs: tuple[Association, ...],
    where: str,
) -> Iterator[Finding]:
    sub = e.suboperations
    if sub is None or e.final is None or e.status_category in ("Pending", "Cancel"):
        return
    reported = (sub[1] or 0) + (sub[3] or 0)
    seen = _delivered(stores)
    if seen == reported:
        return
    f = Facts.of(store, a)
    counts = (
        f"{exchange_label(e)} reported {reported} sub-operation(s) completed "
        f"({sub[1] or 0} completed, {sub[3] or 0} with warnings, {sub[2] or 0} failed), "
        f"and the capture holds {plural(seen, 'C-STORE')} that succeeded {where}"
    )
    frames = (e.request.frame if e.request else None, e.final.frame)
    if seen > reported:
        yield f.finding(
            "suboperation-count-mismatch",
            Severity.WARNING,
            f"{e.service} reported {reported} completed, {seen} seen",
            counts + ": the SCP counted fewer than it sent.",
            "The SCP miscounts its sub-operations: a client that trusts the counts (to decide "
            "whether to retry) is misled. Report it to the SCP's vendor with this capture.",
            frames=frames,
            ts=e.end_ts,
            requestor_sent=not e.from_requestor,
        )
        return
    why = _incomplete(store, subs or (a,))
    if why is None and not subs and e.service == "C-MOVE":
        why = (
            "the capture holds no sub-association at all: it was probably filtered to the "
            "C-MOVE SCP's port"
        )
    if why is not None:
        yield f.finding(
            "suboperation-count-mismatch",
            Severity.INFO,
            f"{e.service} reported {reported} completed, the capture holds {seen}",
            f"{counts}. The capture is incomplete: {why}.",
            "Nothing wrong on the wire as far as it was captured. To see every sub-operation, "
            "capture all traffic of the SCP's host (not only its DICOM port) from before the "
            "request.",
            frames=frames,
            ts=e.end_ts,
            requestor_sent=not e.from_requestor,
        )
        return
    yield f.finding(
        "suboperation-count-mismatch",
        Severity.WARNING,
        f"{e.service} reported {reported} completed, {seen} seen",
        f"{counts}, although the capture looks complete for those associations.",
        "Either the SCP sent the missing objects on an association the capture does not hold "
        "(another network path, another destination address), or it counts sub-operations it "
        "did not perform. Compare with the destination's log of received objects.",
        frames=frames,
        ts=e.end_ts,
        requestor_sent=not e.from_requestor,
    )


def move_counts(store: Store, update: Update) -> Iterator[Finding]:
    """Checked when the C-MOVE settles (every sub-association it will get has ended)."""
    for flow in update.settled_moves:
        if flow.exchange.status_category == "Failure" and not flow.stores:
            continue  # what did not arrive is said by the C-MOVE rules
        yield from _check(
            store,
            flow.association,
            flow.exchange,
            flow.stores,
            flow.subs,
            "on its sub-association(s)" if flow.subs else "for it",
        )


def get_counts(store: Store, update: Update) -> Iterator[Finding]:
    """Checked when the C-GET's association ends."""
    for flow in update.gets:
        yield from _check(
            store, flow.association, flow.exchange, flow.stores, (), "on the same association"
        )
