"""Recording one association's comparison: each fact agrees, disagrees, or is a
difference a :class:`~.hazards.Hazard` explains; and how values are shown to a person."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from analyzer.model import PduRecord
from analyzer.names import pdu_name
from dissectors.dimse import command_label

from .hazards import Hazard, Hazards
from .records import Address, AssociationCheck, Difference

__all__ = ["Checker", "command_text", "our_text", "pdus_text", "status_text", "text"]


#: PDUs and PDVs listed in one difference (a crafted segment may hold thousands).
_LISTED = 8


def _listing(labels: Sequence[str], pdvs: Sequence[tuple[int, int, int]]) -> str:
    if not labels:
        return "no PDU"
    parts = list(labels[:_LISTED])
    if len(labels) > _LISTED:
        parts.append(f"and {len(labels) - _LISTED} more PDUs")
    if pdvs:
        shown = " ".join(f"ctx {c} flags {f} len {n}" for c, f, n in pdvs[:_LISTED])
        more = f" and {len(pdvs) - _LISTED} more" if len(pdvs) > _LISTED else ""
        parts.append(f"PDVs {shown}{more}")
    return ", ".join(parts)


def pdus_text(pdus: Sequence[tuple[int, int]], pdvs: Sequence[tuple[int, int, int]]) -> str:
    """tshark's PDUs in a frame: ``P-DATA-TF (94 bytes), PDVs ctx 1 flags 3 len 90``."""
    return _listing([f"{pdu_name(t)} ({n} bytes)" for t, n in pdus], pdvs)


def our_text(pdus: Sequence[PduRecord]) -> str:
    """dicomtap's PDUs in a frame, as :func:`pdus_text`; those it never saw whole marked."""
    return _listing(
        [
            f"{pdu_name(p.pdu_type)} ({p.length} bytes"
            + ("" if p.complete else ", not read to its end")
            + ")"
            for p in pdus
        ],
        [(c, f & 0x03, n) for p in pdus for c, f, n in p.pdvs],
    )


def text(value: object) -> str:
    """A compared value for a person (a tuple of syntaxes as a list)."""
    if value is None:
        return "(none)"
    if isinstance(value, tuple):
        return " ".join(map(str, value)) if value else "(none)"
    return str(value)


def status_text(value: int | None) -> str:
    return "(none)" if value is None else f"0x{value:04X}"


def command_text(value: int | None) -> str:
    return "(none)" if value is None else f"{command_label(value)} (0x{value:04X})"


class Checker:
    """The comparison of one association."""

    def __init__(
        self,
        check: AssociationCheck,
        hazards: Hazards,
        client: Address,
    ) -> None:
        self.check = check
        self.hazards = hazards
        self.client = client

    def differ(
        self,
        frame: int | None,
        from_requestor: bool | None,
        what: str,
        ours: str,
        theirs: str,
        *,
        start: int | None = None,
        hazard: Hazard | None = None,
        lookup: bool = True,
    ) -> None:
        """A difference: tshark cannot follow there if ``hazard`` (or, with ``lookup``,
        a hazard in force at ``frame``) explains it; a disagreement otherwise."""
        diff = Difference(
            frame=frame, from_requestor=from_requestor, what=what, dicomtap=ours, tshark=theirs
        )
        if hazard is None and lookup and frame is not None and from_requestor is not None:
            hazard = self.hazards.excuse(from_requestor, frame, start)
        if hazard is not None:
            self.check.cannot_follow(hazard.reason, hazard.cause, diff)
        else:
            self.check.disagree(diff)

    def field(
        self,
        frame: int,
        from_requestor: bool,
        what: str,
        ours: object,
        theirs: object,
        *,
        start: int | None = None,
        show: Callable[[object], str] = text,
        dimse: bool = False,
    ) -> None:
        """One field: counted if both have the same value (``dimse``: a DIMSE field, else an
        association field), else a difference (see :meth:`differ`)."""
        if ours == theirs:
            if dimse:
                self.check.agreed.dimse_fields += 1
            else:
                self.check.agreed.association_fields += 1
            return
        self.differ(frame, from_requestor, what, show(ours), show(theirs), start=start)
