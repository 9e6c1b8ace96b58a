"""The association fields: what the A-ASSOCIATE-RQ, -AC, -RJ and A-ABORT carried
(dicomtap's :class:`~analyzer.model.Association`) against tshark's tree of the same PDU.

The model keeps the first PDU of each of these kinds; later ones are compared as PDUs
(type, length) only. The A-ASSOCIATE-AC's copy of the AE titles is not kept, and the
transfer syntax of a context the acceptor did not accept is not significant (PS3.8
§9.3.3.2): neither is compared.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from analyzer.model import Association, PduRecord, PresentationContext, UserInfo

from .checker import Checker
from .records import AssociateFields, ContextItem, PduContent

__all__ = ["compare_association_fields"]


class _Pdu:
    """The fields of one PDU, as both tools decoded it."""

    def __init__(self, checker: Checker, pdu: PduRecord, name: str) -> None:
        self.checker, self.pdu, self.name = checker, pdu, name

    def field(self, label: str, ours: object, theirs: object) -> None:
        p = self.pdu
        self.checker.field(
            p.end_frame or 0, p.from_requestor, f"{self.name} {label}", ours, theirs, start=p.frame
        )

    def differ(self, label: str, ours: str, theirs: str) -> None:
        p = self.pdu
        self.checker.differ(
            p.end_frame, p.from_requestor, f"{self.name} {label}", ours, theirs, start=p.frame
        )

    def user_info(self, ours: UserInfo | None, theirs: AssociateFields) -> None:
        info = ours or UserInfo()
        self.field("maximum length", info.max_pdu_length, theirs.max_pdu_length)
        self.field(
            "implementation class UID",
            info.implementation_class_uid,
            theirs.implementation_class_uid,
        )
        self.field(
            "implementation version name",
            info.implementation_version_name,
            theirs.implementation_version_name,
        )

    def contexts(
        self,
        ours: Mapping[int, PresentationContext],
        theirs: Sequence[ContextItem],
        verb: str,
    ) -> Iterator[tuple[str, PresentationContext, ContextItem]]:
        """Both tools' context items by ID; an ID only one of them has is a difference."""
        given = {c.id: c for c in theirs if c.id is not None}
        for cid in [*ours, *(i for i in given if i not in ours)]:
            mine, their = ours.get(cid), given.get(cid)
            label = f"presentation context {cid}"
            if mine is None or their is None:
                self.differ(label, verb if mine else "(none)", verb if their else "(none)")
            else:
                yield label, mine, their


def _syntaxes(ours: Sequence[str], theirs: ContextItem) -> tuple[object, object]:
    """Transfer syntaxes to compare: in order, unless tshark's tree lost the order."""
    if theirs.ordered:
        return tuple(ours), theirs.transfer_syntaxes
    return tuple(sorted(ours)), tuple(sorted(theirs.transfer_syntaxes))


def _title(raw: bytes | None) -> str | None:
    """An AE title field as tshark shows one: ASCII, without its padding."""
    return None if raw is None else raw.decode("ascii", "replace").strip(" \x00")


def compare_association_fields(
    checker: Checker,
    association: Association,
    pdus: Sequence[PduRecord],
    contents: Mapping[int, tuple[PduContent, ...]],
    agreed: set[int],
) -> None:
    """Compare the first A-ASSOCIATE-RQ, -AC, -RJ and A-ABORT of ``association``.

    ``contents`` are tshark's PDUs by frame, ``agreed`` the frames where the two agree on
    the PDUs (where they do not, that was reported already)."""
    a = association

    def pair(pdu_type: int, name: str) -> tuple[_Pdu, PduContent] | None:
        pdu = next((p for p in pdus if p.pdu_type == pdu_type and p.complete), None)
        if pdu is None or pdu.end_frame is None:
            return None
        theirs = next((c for c in contents.get(pdu.end_frame, ()) if c.pdu_type == pdu_type), None)
        ours = _Pdu(checker, pdu, name)
        if theirs is None:
            if pdu.end_frame in agreed:
                ours.differ("fields", "decoded", "not decoded")
            return None
        return ours, theirs

    rq = pair(1, "A-ASSOCIATE-RQ")
    if rq is not None and rq[1].associate is not None:
        ours, t = rq[0], rq[1].associate
        ours.field("calling AE title", _title(a.calling_ae), t.calling_ae)
        ours.field("called AE title", _title(a.called_ae), t.called_ae)
        proposed = {c.id: c for c in a.contexts if c.proposed}
        for label, mine, their in ours.contexts(proposed, t.contexts, "proposed"):
            ours.field(f"{label} abstract syntax", mine.abstract_syntax, their.abstract_syntax)
            ours.field(
                f"{label} transfer syntaxes", *_syntaxes(mine.proposed_transfer_syntaxes, their)
            )
        ours.user_info(a.requestor_info, t)

    ac = pair(2, "A-ASSOCIATE-AC")
    if ac is not None and ac[1].associate is not None:
        ours, t = ac[0], ac[1].associate
        answered = {c.id: c for c in a.contexts if c.result is not None}
        for label, mine, their in ours.contexts(answered, t.contexts, "answered"):
            ours.field(f"{label} result", mine.result, their.result)
            if mine.result == 0 and their.result == 0:
                syntaxes = their.transfer_syntaxes
                ours.field(
                    f"{label} transfer syntax",
                    mine.accepted_transfer_syntax,
                    syntaxes[0] if len(syntaxes) == 1 else syntaxes or None,
                )
        ours.user_info(a.acceptor_info, t)

    rj = pair(3, "A-ASSOCIATE-RJ")
    if rj is not None and rj[1].reject is not None and a.reject is not None:
        mine_rj = (a.reject.result, a.reject.source, a.reject.reason)
        for label, mine_v, their_v in zip(
            ("result", "source", "reason/diagnostic"), mine_rj, rj[1].reject, strict=True
        ):
            rj[0].field(label, mine_v, their_v)

    ab = pair(7, "A-ABORT")
    if ab is not None and ab[1].abort is not None and a.abort is not None:
        mine_ab = (a.abort.source, a.abort.reason)
        for label, mine_v, their_v in zip(
            ("source", "reason/diagnostic"), mine_ab, ab[1].abort, strict=True
        ):
            ab[0].field(label, mine_v, their_v)
