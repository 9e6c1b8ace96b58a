"""What the wire itself shows: oversized PDUs, protocol violations, malformed PDUs, capture
gaps, mid-association captures, odd AE titles."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from analyzer.model import (
    Association,
    Finding,
    Outcome,
    Severity,
    ViolationKind,
    ViolationRecord,
)
from analyzer.names import uid_valid
from analyzer.reports.common import plural
from dissectors.pdu import pdu_name
from dissectors.ul_fsm import RECEIVE_EVENT, SEND_EVENT, Event

from .facts import Facts, cap


def pdu_exceeds_max_length(f: Facts) -> Iterator[Finding]:
    a = f.a
    for from_requestor, stats, receiver in (
        (True, a.requestor_pdus, a.acceptor_info),
        (False, a.acceptor_pdus, a.requestor_info),
    ):
        limit = receiver.max_pdu_length if receiver else None
        if not limit or stats.largest_p_data <= limit:
            continue
        sender, other = f.party(from_requestor), f.party(not from_requestor)
        ended_badly = a.outcome in (Outcome.ABORTED, Outcome.TRANSPORT_DROPPED)
        yield f.finding(
            "pdu-exceeds-max-length",
            Severity.ERROR if ended_badly else Severity.WARNING,
            "PDU larger than the receiver accepts",
            f"{cap(sender)} sent a P-DATA-TF of {stats.largest_p_data} bytes, but "
            f"{other} announced a maximum of {limit} bytes (Maximum Length, item 0x51)."
            + (
                " The association then ended abnormally; the receiver probably refused the PDU."
                if ended_badly
                else " The receiver tolerated it this time."
            ),
            f"Make {sender} respect the peer's Maximum Length (or set its own maximum PDU size at "
            f"or below {limit}); a proxy between them may also clamp it.",
            frames=(stats.largest_p_data_frame,),
            requestor_sent=from_requestor,
            detail=f"largest={stats.largest_p_data} max={limit}",
        )


def protocol_violations(f: Facts) -> Iterator[Finding]:
    groups: dict[tuple[str, str, bool], list[ViolationRecord]] = defaultdict(list)
    for v in f.violations:
        if v.kind == ViolationKind.UNKNOWN_ITEM:
            continue
        key = v.cell or v.code
        groups[(str(v.kind), key, v.from_requestor)].append(v)
    aborted_by = f.a.abort.by_requestor if f.a.abort else None
    for (kind, key, from_requestor), items in groups.items():
        first = items[0]
        sender = f.party(from_requestor)
        # Did the receiver react by aborting after the first occurrence?
        reacted = (
            aborted_by is not None
            and aborted_by != from_requestor
            and f.a.abort is not None
            and f.a.abort.ts >= first.ts
        )
        reaction = (
            " The peer then aborted the association."
            if reacted
            else " The peer tolerated it."
            if f.a.outcome in (Outcome.RELEASED, Outcome.RELEASE_COLLISION)
            else ""
        )
        count = "" if len(items) == 1 else f" ({len(items)} times)"
        own = _own_words(key, sender, first.text, count)
        if own is not None:
            code = "malformed-pdu"
            severity, title, text, hint = own
        elif kind == ViolationKind.STATE_MACHINE:
            code = "protocol-violation"
            severity = Severity.ERROR
            title = f"{_cell_title(key)} ({key})"
            text = f"{cap(first.text)}{count}.{reaction}"
            hint = (
                f"The software of {sender} breaks the association protocol: report it to its "
                "vendor with this capture."
            )
        else:
            code = "malformed-pdu"
            severity = Severity.ERROR if reacted else Severity.WARNING
            title = "Malformed PDU" if kind != ViolationKind.DIMSE else "Malformed DIMSE message"
            text = (
                f"{cap(sender)} sent what PS3.8/PS3.7 does not allow: {first.text}{count}."
                f"{reaction}"
            )
            hint = (
                f"The software of {sender} sends data that breaks PS3.8/PS3.7: report it to its "
                "vendor."
            )
        yield f.finding(
            code,
            severity,
            title,
            text,
            hint,
            frames=[v.frame for v in items[:10]],
            ts=first.ts,
            requestor_sent=from_requestor,
            detail=key,
        )


def _own_words(
    key: str, sender: str, text: str, count: str
) -> tuple[Severity, str, str, str] | None:
    """Severity, title, explanation and hint of the malformed-pdu findings that are said in
    words of their own (whatever the peer did next), or None."""
    if key == "pdv-reserved-bits":
        return (
            Severity.INFO,
            "PDV header with reserved bits set",
            f"{cap(sender)} set reserved bits of the PDV message control header{count}: {text}.",
            "Harmless for conformant receivers, which ignore those bits; report it to the "
            "sender's vendor.",
        )
    if key == "dataset-encoding-mismatch":
        return (
            Severity.ERROR,
            "Data set encoded with another transfer syntax than negotiated",
            f"{cap(sender)}: {text}{count}. The receiver decodes data sets with the negotiated "
            "transfer syntax, so it will misread these.",
            f"The software of {sender} encodes data sets without regard to the accepted "
            "presentation context: report it to its vendor, and meanwhile make the acceptor "
            "accept only the transfer syntax the sender really uses.",
        )
    if key == "command-set-foreign-element":
        return (
            Severity.INFO,
            "Command set carries non-command elements",
            f"{cap(sender)} put data elements outside group 0000 into DIMSE command sets"
            f"{count}: {text}. PS3.7 §6.3.1 allows only command elements there; most "
            "receivers ignore the extra ones.",
            f"Cosmetic unless a receiver rejects such messages; report it to the vendor of "
            f"{sender}'s software.",
        )
    return None


# PS3.8 events back to the PDU behind them, and whether its sender or receiver saw it.
_BY_EVENT: dict[int, tuple[int, bool]] = {
    **{int(e): (t, True) for t, e in SEND_EVENT.items()},
    **{int(e): (t, False) for t, e in RECEIVE_EVENT.items()},
}


def _cell_title(cell: str) -> str:
    """``Evt9@Sta7`` → ``P-DATA-TF sent at the wrong time``."""
    try:
        event = int(cell.split("@")[0].removeprefix("Evt"))
    except ValueError:
        return "Protocol violation"
    if event == Event.EVT19:
        return "Unrecognised PDU"
    if event == Event.EVT17:
        return "Connection closed at the wrong time"
    pdu_type, sent = _BY_EVENT.get(event, (0, False))
    what = pdu_name(pdu_type) if pdu_type else "PDU"
    return f"{what} {'sent' if sent else 'received'} at the wrong time"


def capture_gap(f: Facts) -> Iterator[Finding]:
    if not f.gaps:
        return
    lost = sum(g.size for g in f.gaps)
    first = f.gaps[0]
    yield f.finding(
        "capture-gap",
        Severity.WARNING,
        "Bytes missing from the capture",
        f"{plural(len(f.gaps), 'gap')} in this association's traffic: {lost} byte(s) that were "
        "sent are not in the capture (the receiver acknowledged them, or the capture cut them). "
        "Conclusions about those stretches are uncertain: a data set may be incomplete, and a "
        "PDU boundary may have been guessed.",
        "Capture again without loss: a bigger capture buffer (tcpdump -B, dumpcap -B), no "
        "snap length limit (-s 0), and a capture point that sees both directions.",
        frames=[g.frame for g in f.gaps[:10]],
        ts=first.ts,
        requestor_sent=first.from_requestor,
        detail=f"{lost} bytes",
    )


def partial_association(f: Facts) -> Iterator[Finding]:
    a = f.a
    if not a.partial:
        return
    yield f.finding(
        "partial-association",
        Severity.INFO,
        "Capture began mid-association",
        "The capture does not hold the start of this association"
        + (" (no A-ASSOCIATE-RQ)" if a.rq_ts is None else "")
        + ": AE titles and negotiated contexts may be unknown, and data set encodings were "
        "guessed from their bytes. DIMSE commands are still decoded (they always use Implicit VR "
        "Little Endian).",
        "Start the capture before the devices connect to see the negotiation.",
        frames=(a.start_frame,),
        ts=a.start_ts,
    )


def ae_title_invalid(f: Facts) -> Iterator[Finding]:
    a = f.a
    for raw, label, requestor in ((a.calling_ae, "calling", True), (a.called_ae, "called", False)):
        if raw is None:
            continue
        text = raw.decode("ascii", "replace")
        problems = []
        if not text.strip(" \x00"):
            problems.append("it is empty (all spaces)")
        if any(not 0x20 <= b < 0x7F for b in raw.rstrip(b"\x00")) or b"\\" in raw:
            problems.append("it contains control characters, a backslash or non-ASCII bytes")
        if not problems:
            continue
        yield f.finding(
            "ae-title-invalid",
            Severity.WARNING,
            f"Invalid {label} AE title",
            f"The {label} AE title sent by {f.party(True)} is {raw!r}: "
            + " and ".join(problems)
            + " (PS3.5: up to 16 characters, no control characters or backslash, not all spaces).",
            f"Set a proper {label} AE title on the requesting device.",
            frames=(a.rq_frame,),
            ts=a.rq_ts,
            requestor_sent=requestor,
        )


#: Invalid UIDs named in a uid-invalid finding; the rest are counted.
_UIDS_NAMED = 5


def uid_invalid(f: Facts) -> Iterator[Finding]:
    """UIDs of the negotiation that PS3.5 §9.1 does not allow, per side that sent them.

    (The UIDs of DIMSE command sets are checked where they are decoded, and reported as
    DIMSE violations.)"""
    a = f.a
    for requestor, pdu, frame, ts in (
        (True, "A-ASSOCIATE-RQ", a.rq_frame, a.rq_ts),
        (False, "A-ASSOCIATE-AC", a.ac_frame, a.ac_ts),
    ):
        bad: dict[str, str] = {}  # UID -> where it was first seen
        for where, uid in _negotiated_uids(a, requestor):
            if uid not in bad and not uid_valid(uid):
                bad[uid] = where
        if not bad:
            continue
        named = [f"{where} {uid!r}" for uid, where in list(bad.items())[:_UIDS_NAMED]]
        more = len(bad) - len(named)
        yield f.finding(
            "uid-invalid",
            Severity.WARNING,
            f"Invalid UID in the {pdu}",
            f"The {pdu} sent by {f.party(requestor)} holds "
            f"{plural(len(bad), 'UID')} that PS3.5 §9.1 does not allow: "
            + "; ".join(named)
            + (f"; and {more} more" if more else "")
            + ". A UID holds only digits and dots, with no leading zero in a component, and "
            "at most 64 characters. A strict peer refuses the context or the association.",
            f"Correct the UID in the configuration or software of {f.party(requestor)}; report "
            "it to its vendor if it is built in.",
            frames=(frame,),
            ts=ts,
            requestor_sent=requestor,
        )


def _negotiated_uids(a: Association, requestor: bool) -> Iterator[tuple[str, str]]:
    """``(where, UID)`` for every UID one side sent in the negotiation."""
    info = a.requestor_info if requestor else a.acceptor_info
    if requestor:
        if a.application_context is not None:
            yield "application context", a.application_context
        for c in a.contexts:
            if c.abstract_syntax is not None:
                yield f"abstract syntax of context {c.id}", c.abstract_syntax
            for ts in c.proposed_transfer_syntaxes:
                yield f"transfer syntax of context {c.id}", ts
    else:
        for c in a.contexts:
            if c.accepted_transfer_syntax is not None:
                yield f"accepted transfer syntax of context {c.id}", c.accepted_transfer_syntax
    if info is None:
        return
    if info.implementation_class_uid is not None:
        yield "implementation class UID", info.implementation_class_uid
    for r in info.role_selections:
        yield "role selection SOP class", r.sop_class_uid
    for e in info.extended_negotiation:
        yield "extended negotiation SOP class", e.sop_class_uid
    for common in info.common_extended_negotiation:
        yield "common extended negotiation SOP class", common.sop_class_uid
        yield "common extended negotiation service class", common.service_class_uid
        for uid in common.related_general_sop_classes:
            yield "related general SOP class", uid


__all__ = [
    "ae_title_invalid",
    "capture_gap",
    "partial_association",
    "pdu_exceeds_max_length",
    "protocol_violations",
    "uid_invalid",
]
