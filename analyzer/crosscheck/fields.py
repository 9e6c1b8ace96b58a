"""The association fields: what the A-ASSOCIATE-RQ, -AC, -RJ and A-ABORT carried
(dicomtap's :class:`~analyzer.model.Association`) against tshark's tree of the same PDU."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from analyzer.model import Association, PduRecord, UserInfo

from .checker import Checker
from .records import AssociateFields, ContextItem, PduContent

__all__ = ["compare_association_fields"]


def _first(pdus: Iterable[PduRecord], pdu_type: int) -> PduRecord | None:
    return next((p for p in pdus if p.pdu_type == pdu_type and p.complete), None)


def _their(
    contents: dict[int, tuple[PduContent, ...]], frame: int | None, pdu_type: int
) -> PduContent | None:
    if frame is None:
        return None
    return next((c for c in contents.get(frame, ()) if c.pdu_type == pdu_type), None)


def _user_info(
    checker: Checker, pdu: PduRecord, name: str, ours: UserInfo | None, theirs: AssociateFields
) -> None:
    frame, side, start = pdu.end_frame or 0, pdu.from_requestor, pdu.frame
    info = ours or UserInfo()
    checker.field(
        frame,
        side,
        f"{name} maximum length",
        info.max_pdu_length,
        theirs.max_pdu_length,
        start=start,
    )
    checker.field(
        frame,
        side,
        f"{name} implementation class UID",
        info.implementation_class_uid,
        theirs.implementation_class_uid,
        start=start,
    )
    checker.field(
        frame,
        side,
        f"{name} implementation version name",
        info.implementation_version_name,
        theirs.implementation_version_name,
        start=start,
    )


def _syntaxes(ours: Sequence[str], theirs: ContextItem) -> tuple[object, object]:
    """Transfer syntaxes to compare: in order, unless tshark's tree lost the order."""
    if theirs.ordered:
        return tuple(ours), theirs.transfer_syntaxes
    return tuple(sorted(ours)), tuple(sorted(theirs.transfer_syntaxes))


def compare_association_fields(
    checker: Checker,
    association: Association,
    pdus: Sequence[PduRecord],
    contents: dict[int, tuple[PduContent, ...]],
    agreed: set[int],
) -> None:
    a = association

    def missing(pdu: PduRecord, name: str) -> None:
        # Frames whose PDUs already differ were reported as such.
        if pdu.end_frame in agreed:
            checker.differ(
                pdu.end_frame,
                pdu.from_requestor,
                f"{name} fields",
                "decoded",
                "not decoded",
                start=pdu.frame,
            )

    rq = _first(pdus, 1)
    if rq is not None and rq.end_frame is not None:
        theirs = _their(contents, rq.end_frame, 1)
        if theirs is None or theirs.associate is None:
            missing(rq, "A-ASSOCIATE-RQ")
        else:
            t = theirs.associate
            f, side = rq.end_frame, rq.from_requestor

            def title(raw: bytes | None) -> str | None:
                return None if raw is None else raw.decode("ascii", "replace").strip(" \x00")

            checker.field(
                f, side, "A-ASSOCIATE-RQ calling AE title", title(a.calling_ae), t.calling_ae
            )
            checker.field(
                f, side, "A-ASSOCIATE-RQ called AE title", title(a.called_ae), t.called_ae
            )
            proposed = {c.id: c for c in a.contexts if c.proposed}
            offered = {c.id: c for c in t.contexts if c.id is not None}
            for cid in [*proposed, *(i for i in offered if i not in proposed)]:
                mine, their = proposed.get(cid), offered.get(cid)
                what = f"A-ASSOCIATE-RQ presentation context {cid}"
                if mine is None or their is None:
                    checker.differ(
                        f,
                        side,
                        what,
                        "proposed" if mine else "(none)",
                        "proposed" if their else "(none)",
                        start=rq.frame,
                    )
                    continue
                checker.field(
                    f,
                    side,
                    f"{what} abstract syntax",
                    mine.abstract_syntax,
                    their.abstract_syntax,
                    start=rq.frame,
                )
                ours_ts, theirs_ts = _syntaxes(mine.proposed_transfer_syntaxes, their)
                checker.field(
                    f, side, f"{what} transfer syntaxes", ours_ts, theirs_ts, start=rq.frame
                )
            _user_info(checker, rq, "A-ASSOCIATE-RQ", a.requestor_info, t)

    ac = _first(pdus, 2)
    if ac is not None and ac.end_frame is not None:
        theirs = _their(contents, ac.end_frame, 2)
        if theirs is None or theirs.associate is None:
            missing(ac, "A-ASSOCIATE-AC")
        else:
            t = theirs.associate
            f, side = ac.end_frame, ac.from_requestor
            answered = {c.id: c for c in a.contexts if c.result is not None}
            given = {c.id: c for c in t.contexts if c.id is not None}
            for cid in [*answered, *(i for i in given if i not in answered)]:
                ours_ctx, their = answered.get(cid), given.get(cid)
                what = f"A-ASSOCIATE-AC presentation context {cid}"
                if ours_ctx is None or their is None:
                    checker.differ(
                        f,
                        side,
                        what,
                        "answered" if ours_ctx else "(none)",
                        "answered" if their else "(none)",
                        start=ac.frame,
                    )
                    continue
                checker.field(
                    f, side, f"{what} result", ours_ctx.result, their.result, start=ac.frame
                )
                if ours_ctx.result == 0 and their.result == 0:
                    # PS3.8 §9.3.3.2: the transfer syntax is significant only when accepted.
                    checker.field(
                        f,
                        side,
                        f"{what} transfer syntax",
                        ours_ctx.accepted_transfer_syntax,
                        their.transfer_syntaxes[0]
                        if len(their.transfer_syntaxes) == 1
                        else their.transfer_syntaxes or None,
                        start=ac.frame,
                    )
            _user_info(checker, ac, "A-ASSOCIATE-AC", a.acceptor_info, t)

    rj = _first(pdus, 3)
    if rj is not None and rj.end_frame is not None and a.reject is not None:
        theirs = _their(contents, rj.end_frame, 3)
        if theirs is None or theirs.reject is None:
            missing(rj, "A-ASSOCIATE-RJ")
        else:
            ours_rj = (a.reject.result, a.reject.source, a.reject.reason)
            for name, mine_v, their_v in zip(
                ("result", "source", "reason/diagnostic"), ours_rj, theirs.reject, strict=True
            ):
                checker.field(
                    rj.end_frame,
                    rj.from_requestor,
                    f"A-ASSOCIATE-RJ {name}",
                    mine_v,
                    their_v,
                    start=rj.frame,
                )

    ab = _first(pdus, 7)
    if ab is not None and ab.end_frame is not None and a.abort is not None:
        theirs = _their(contents, ab.end_frame, 7)
        if theirs is None or theirs.abort is None:
            missing(ab, "A-ABORT")
        else:
            for name, mine_v, their_v in zip(
                ("source", "reason/diagnostic"),
                (a.abort.source, a.abort.reason),
                theirs.abort,
                strict=True,
            ):
                checker.field(
                    ab.end_frame,
                    ab.from_requestor,
                    f"A-ABORT {name}",
                    mine_v,
                    their_v,
                    start=ab.frame,
                )
