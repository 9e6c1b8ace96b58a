"""Lining up dicomtap's records with tshark's view of the same capture, per association.

Three kinds of facts are compared:

* **PDUs**, frame by frame: the type and length of every PDU that ends in the frame and
  each PDV's context ID, flags and length (dicomtap's :class:`~analyzer.model.PduRecord`);
* **association fields**: the A-ASSOCIATE-RQ's AE titles, presentation contexts (abstract
  and transfer syntaxes) and user information (maximum length, implementation class UID
  and version name); the A-ASSOCIATE-AC's context results, accepted transfer syntaxes and
  user information; reject and abort codes (the :class:`~analyzer.model.Association`);
* **DIMSE fields** of every request and final response: command field, message ID or the
  message ID it answers, status, SOP class; and the number of pending responses (the
  :class:`~analyzer.model.Exchange` records).

A difference is a disagreement unless tshark cannot be expected to follow there: after
bytes the capture lost (a hole, the snap length) on that side, until the two agree again;
in an association whose start the capture missed, until they first agree; after
out-of-order segments when tshark's reassembly of them is off; in a frame tshark itself
reports malformed; a PDU not read to its end; a PDU type PS3.8 does not define. Those are
reported as such, with the reason (:class:`~.records.Reason`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from analyzer.model import Association, Endpoint, PduRecord
from analyzer.reports.common import in_start_order
from analyzer.store import Store

from .checker import Checker, our_text, pdus_text
from .dimse import compare_dimse
from .fields import compare_association_fields
from .hazards import INF, address, connection_key, excluded, hazards_of
from .records import Address, AssociationCheck, Difference, FrameRow
from .tshark import TsharkView

__all__ = ["compare"]


def framing(
    checker: Checker,
    pdus: Sequence[PduRecord],
    rows: Sequence[FrameRow],
) -> set[int]:
    """Frame by frame, the PDUs; returns the frames where both agree."""
    ours: dict[int, list[PduRecord]] = defaultdict(list)
    for pdu in pdus:
        if pdu.end_frame is not None:
            ours[pdu.end_frame].append(pdu)
    theirs = {row.frame: row for row in rows if row.pdus}
    agreed: set[int] = set()
    check, hazards = checker.check, checker.hazards
    for frame in sorted(ours.keys() | theirs.keys()):
        mine = ours.get(frame, [])
        row = theirs.get(frame)
        side = mine[0].from_requestor if mine else bool(row and row.src == checker.client)
        hazard = hazards.at(side, frame)
        marks = [excluded(p) for p in mine]
        unshown = [(p, why) for p, why in zip(mine, marks, strict=True) if why is not None]
        shown = [p for p, why in zip(mine, marks, strict=True) if why is None]
        our_pdus = tuple((p.pdu_type, p.length) for p in shown)
        our_pdvs = tuple((c, f & 0x03, n) for p in shown for c, f, n in p.pdvs)
        their_pdus = row.pdus if row else ()
        their_pdvs = row.pdvs if row else ()
        if (our_pdus, our_pdvs) == (their_pdus, their_pdvs):
            if our_pdus:
                check.agreed.pdus += len(our_pdus)
                agreed.add(frame)
                hazards.agreed(side, frame)
            for pdu, why in unshown:
                # A PDU cut by lost bytes is explained by the loss, not by where it ended.
                cause = hazard or why
                check.cannot_follow(
                    cause.reason, cause.cause,
                    Difference(frame=frame, from_requestor=side, what="PDUs",
                               dicomtap=our_text([pdu]), tshark="not shown"),
                )  # fmt: skip
            continue
        if hazard is None and unshown:
            # What tshark shows differently here follows from the PDU it cannot show.
            hazard = unshown[0][1]
        checker.differ(
            frame,
            side,
            "PDUs",
            our_text(mine),
            pdus_text(their_pdus, their_pdvs),
            hazard=hazard,
            lookup=False,
        )
    hazards.finish()
    return agreed


def attribute(
    rows: dict[int, FrameRow], associations: Sequence[Association]
) -> tuple[dict[int, list[FrameRow]], dict[frozenset[Address | None], list[FrameRow]]]:
    """tshark's frames with PDUs per association; the rest per connection."""
    by_key: dict[frozenset[Address | None], list[Association]] = defaultdict(list)
    for a in associations:
        by_key[connection_key(address(a.client), address(a.server))].append(a)
    for group in by_key.values():
        group.sort(key=lambda a: a.start_frame or 0)
    mine: dict[int, list[FrameRow]] = defaultdict(list)
    orphans: dict[frozenset[Address | None], list[FrameRow]] = defaultdict(list)
    for frame in sorted(rows):
        row = rows[frame]
        if not row.pdus:
            continue
        key = connection_key(row.src, row.dst)
        candidates = by_key.get(key)
        if not candidates:
            orphans[key].append(row)
            continue
        chosen = candidates[0]
        for a in candidates:
            if (a.start_frame or 0) <= frame:
                chosen = a
        mine[chosen.id].append(row)
    return mine, orphans


def compare(store: Store, view: TsharkView, *, reorder: bool = True) -> list[AssociationCheck]:
    """Every association of ``store`` against tshark's ``view`` of the same capture, and
    the DICOM tshark shows on connections where dicomtap found no association."""
    associations = in_start_order(store)
    attributed, orphans = attribute(view.rows, associations)
    # Frames that explain where tshark cannot follow, per connection (they carry no PDU).
    hints: dict[frozenset[Address | None], list[FrameRow]] = defaultdict(list)
    for row in view.rows.values():
        if not row.pdus and (row.truncated or row.out_of_order or row.malformed):
            hints[connection_key(row.src, row.dst)].append(row)
    checks: list[AssociationCheck] = []
    for a in associations:
        pdus = store.pdus(a.id)
        rows = attributed.get(a.id, [])
        key = connection_key(address(a.client), address(a.server))
        end = a.end_frame if a.end_frame is not None else INF
        extra = [r for r in hints.get(key, ()) if (a.start_frame or 0) <= r.frame <= end]
        check = AssociationCheck(association=a, client=a.client, server=a.server)
        checker = Checker(
            check, hazards_of(a, store, pdus, [*rows, *extra], reorder), address(a.client)
        )
        agreed = framing(checker, pdus, rows)
        frames = {r.frame: r for r in rows}
        contents = {f: view.contents[f] for f in frames if f in view.contents}
        compare_association_fields(checker, a, pdus, contents, agreed)
        compare_dimse(checker, store.exchanges(a.id), contents, frames)
        if check.agreed.total or check.disagreement_count or check.unfollowed_count:
            checks.append(check)
    for rows in orphans.values():
        first = rows[0]
        src, dst = first.src or ("?", 0), first.dst or ("?", 0)
        check = AssociationCheck(
            association=None, client=Endpoint(src[0], src[1]), server=Endpoint(dst[0], dst[1])
        )
        for row in rows:
            check.disagree(
                Difference(
                    frame=row.frame,
                    from_requestor=row.src == src,
                    what="PDUs",
                    dicomtap="no association on this connection",
                    tshark=pdus_text(row.pdus, row.pdvs),
                )
            )
        checks.append(check)
    return checks
