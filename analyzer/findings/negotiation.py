"""Presentation contexts and extended negotiation: what was accepted, what was then used."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from analyzer.model import Finding, Outcome, PresentationContext, Severity
from analyzer.names import uid_name
from analyzer.reports.common import plural
from dissectors.pdu import ContextResult, context_result_text

from .facts import Facts, cap, exchange_label, sop_name

#: A requestor proposing more abstract syntaxes than this offers everything it might need
#: (getscu's 120 storage classes); rejections are then expected, not failures.
TARGETED_PROPOSAL = 16

_REASON_HINTS: dict[int, str] = {
    ContextResult.USER_REJECTION: (
        "The acceptor's application refused it (user rejection): a local policy; its "
        "configuration or log says why."
    ),
    ContextResult.NO_REASON: (
        "The acceptor refused it without a reason (provider rejection): check what it supports."
    ),
    ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED: (
        "The acceptor does not support this SOP class at all: enable it there, or do not send "
        "this kind of object to this destination."
    ),
    ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED: (
        "The acceptor supports the SOP class but none of the proposed transfer syntaxes: propose "
        "Implicit VR Little Endian (every DICOM application must accept it) alongside compressed "
        "ones, or enable the compressed syntax on the acceptor."
    ),
}


def _describe(c: PresentationContext) -> str:
    syntaxes = ", ".join(uid_name(t) for t in c.proposed_transfer_syntaxes) or "(none)"
    result = context_result_text(c.result) if c.result is not None else "no answer"
    return f"context {c.id} with {syntaxes}: {result}"


def _answered(f: Facts) -> bool:
    """The A-ASSOCIATE-AC answered contexts, and the capture holds the whole negotiation (a
    context or sub-item a cut RQ or AC does not show may have been there)."""
    a = f.a
    return (
        a.ac_ts is not None
        and not a.negotiation_cut
        and any(c.result is not None for c in a.contexts)
    )


def no_context_accepted(f: Facts) -> Iterator[Finding]:
    a = f.a
    if not _answered(f) or any(c.accepted for c in a.contexts):
        return
    lines = "; ".join(f"{sop_name(c.abstract_syntax)}: {_describe(c)}" for c in a.contexts[:8])
    more = f"; and {len(a.contexts) - 8} more" if len(a.contexts) > 8 else ""
    reasons = {c.result for c in a.contexts if c.result is not None}
    hint = " ".join(_REASON_HINTS[r] for r in sorted(reasons) if r in _REASON_HINTS)
    yield f.finding(
        "no-context-accepted",
        Severity.ERROR,
        "No presentation context accepted",
        f"{cap(f.party(False))} accepted the association but "
        + (
            "not the only presentation context"
            if len(a.contexts) == 1
            else f"none of the {len(a.contexts)} presentation contexts"
        )
        + f" proposed by {f.party(True)}, so nothing could be exchanged on it. {lines}{more}.",
        hint or "Make the acceptor support what the requestor proposes.",
        frames=(a.rq_frame, a.ac_frame),
        ts=a.ac_ts,
        requestor_sent=False,
    )


def context_rejected(f: Facts) -> Iterator[Finding]:
    a = f.a
    if not _answered(f) or not any(c.accepted for c in a.contexts):
        return  # nothing answered, or no-context-accepted says it all
    by_sop: dict[str | None, list[PresentationContext]] = defaultdict(list)
    for c in a.contexts:
        if c.proposed:
            by_sop[c.abstract_syntax].append(c)
    missing: list[tuple[str | None, list[PresentationContext]]] = []
    elsewhere: list[tuple[str | None, list[PresentationContext], PresentationContext]] = []
    for sop, contexts in by_sop.items():
        rejected = [c for c in contexts if c.result is not None and not c.accepted]
        if not rejected:
            continue
        accepted = [c for c in contexts if c.accepted]
        if accepted:
            elsewhere.append((sop, rejected, accepted[0]))
        else:
            missing.append((sop, rejected))
    if elsewhere:
        yield _accepted_elsewhere(f, elsewhere)
    if not missing:
        return
    targeted = len(by_sop) <= TARGETED_PROPOSAL
    if targeted:
        for sop, rejected in missing:
            reasons = sorted({c.result for c in rejected if c.result is not None})
            yield f.finding(
                "context-rejected",
                Severity.ERROR,
                f"{sop_name(sop)} not accepted",
                f"{cap(f.party(False))} refused every presentation context proposing "
                f"{sop_name(sop)} ({sop or '?'}): "
                + "; ".join(_describe(c) for c in rejected)
                + f". Objects of this kind cannot be sent on this association; {f.party(True)} "
                "will skip them or fail.",
                " ".join(_REASON_HINTS.get(r, "") for r in reasons).strip(),
                frames=(a.rq_frame, a.ac_frame),
                ts=a.ac_ts,
                requestor_sent=False,
                detail=sop,
            )
        return
    names = ", ".join(sop_name(s) for s, _ in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    yield f.finding(
        "context-rejected",
        Severity.WARNING,
        f"{plural(len(missing), 'SOP class', 'SOP classes')} not accepted",
        f"{cap(f.party(True))} proposed {len(by_sop)} abstract syntaxes; the acceptor "
        f"refused all contexts for {len(missing)} of them: {names}{more}. That is common when a "
        "requestor proposes everything it could need; it matters only if such objects had to "
        "be exchanged.",
        "If objects of these kinds were expected, enable the SOP classes on the acceptor.",
        frames=(a.ac_frame,),
        ts=a.ac_ts,
        requestor_sent=False,
    )


def _accepted_elsewhere(
    f: Facts, items: list[tuple[str | None, list[PresentationContext], PresentationContext]]
) -> Finding:
    """SOP classes for which some proposed transfer syntaxes were refused and another
    context was accepted: ordinary negotiation, said once per association."""
    a = f.a
    if len(items) == 1:
        sop, rejected, used = items[0]
        title = f"{sop_name(sop)}: some transfer syntaxes refused"
        text = (
            f"For {sop_name(sop)} the acceptor refused "
            + "; ".join(_describe(c) for c in rejected)
            + f", and accepted context {used.id} with {uid_name(used.accepted_transfer_syntax)}."
        )
    else:
        names = ", ".join(sop_name(sop) for sop, _, _ in items[:5])
        more = f" and {len(items) - 5} more" if len(items) > 5 else ""
        title = f"{len(items)} SOP classes: some transfer syntaxes refused"
        text = (
            f"For {len(items)} SOP classes ({names}{more}) the acceptor refused some of the "
            "proposed transfer syntaxes and accepted another context for the same SOP class."
        )
    return f.finding(
        "context-rejected",
        Severity.INFO,
        title,
        text + " This is ordinary negotiation: objects are sent with the accepted transfer syntax.",
        "Nothing to do unless objects must travel compressed: then enable that transfer "
        "syntax on the acceptor.",
        frames=(a.ac_frame,),
        ts=a.ac_ts,
        requestor_sent=False,
    )


def unaccepted_context_used(f: Facts) -> Iterator[Finding]:
    a = f.a
    if a.partial or not _answered(f):
        return
    accepted = {c.id for c in a.contexts if c.accepted}
    proposed = {c.id for c in a.contexts if c.proposed}
    seen: set[tuple[int, bool]] = set()
    for e in f.exchanges:
        for msg in (e.request, e.final):
            if msg is None or msg.context_id in accepted:
                continue
            key = (msg.context_id, msg.from_requestor)
            if key in seen:
                continue
            seen.add(key)
            why = "was never proposed" if msg.context_id not in proposed else "was not accepted"
            sender = f.party(msg.from_requestor)
            yield f.finding(
                "unaccepted-context-used",
                Severity.ERROR,
                "Message sent on a presentation context that was not accepted",
                f"{cap(sender)} sent {msg.command.label} on presentation context "
                f"{msg.context_id}, which {why}. The receiver is entitled to abort the "
                "association for this (PS3.8 §9.3.5).",
                f"The software of {sender} does not track the negotiation result: report it to "
                "its vendor. Meanwhile, make the acceptor accept that context's SOP class and "
                "transfer syntax so the sender has no reason to misuse it.",
                frames=(msg.frame,),
                ts=msg.ts,
                requestor_sent=msg.from_requestor,
            )


def role_not_negotiated(f: Facts) -> Iterator[Finding]:
    a = f.a
    if a.partial or not _answered(f):
        return
    by_id = {c.id: c for c in a.contexts}
    reported: set[str] = set()
    get = any(x.service == "C-GET" and x.from_requestor for x in f.exchanges)
    for e in f.exchanges:
        req = e.request
        if req is None or e.from_requestor:
            continue
        # A C-STORE from the acceptor (a C-GET's sub-operation): the requestor must have taken
        # the SCP role (0x54) for its SOP class. A storage commitment N-EVENT-REPORT from the
        # acceptor needs no role selection: the acceptor is the SCP of the SOP class with the
        # default roles, and PS3.4 J.3 lets it report on the N-ACTION's association.
        ctx = by_id.get(req.context_id)
        if e.service != "C-STORE" or ctx is None or ctx.accepted_scp_role == 1:
            continue
        sop = ctx.abstract_syntax or "?"
        if sop in reported:
            continue
        reported.add(sop)
        proposed = (
            "proposed no SCP role"
            if ctx.scp_role != 1
            else "proposed the SCP role but the acceptor did not confirm it"
        )
        # The cause is the C-GET's missing role; the unexpected C-STORE is its symptom.
        title = (
            f"C-GET whose Storage SCP role for {sop_name(sop)} was not negotiated"
            if get
            else f"{e.service} sent without the SCP/SCU role negotiated"
        )
        yield f.finding(
            "role-not-negotiated",
            Severity.ERROR,
            title,
            f"{cap(f.party(False))} sent {exchange_label(e)} to the requestor on context "
            f"{ctx.id} ({sop_name(sop)}), but the requestor {proposed} for that SOP class "
            "(SCP/SCU Role Selection, PS3.7 D.3.3.4). Without it the requestor is not expected to "
            "accept such requests.",
            "For C-GET the requestor must propose the SCP role for every storage SOP class it "
            "wants to receive (getscu does this by default; pynetdicom needs build_role()).",
            frames=(req.frame,),
            ts=req.ts,
            requestor_sent=False,
        )
    for e in f.exchanges:
        if e.service != "C-GET" or e.request is None:
            continue
        sub = e.suboperations
        failed = (sub[2] or 0) if sub else 0
        stores = any(x.service == "C-STORE" and not x.from_requestor for x in f.exchanges)
        roles = any(c.scp_role == 1 and c.accepted_scp_role == 1 for c in a.contexts)
        if roles or (stores and not failed) or "C-GET" in reported:
            continue
        if not failed and e.status_category == "Success":
            continue
        reported.add("C-GET")
        yield f.finding(
            "role-not-negotiated",
            Severity.ERROR,
            "C-GET without the Storage SCP role",
            f"{exchange_label(e)} ended with {e.status_meaning}"
            + (f" and {failed} failed sub-operation(s)" if failed else "")
            + ". The requestor did not negotiate the SCP role for any storage SOP class, so the "
            "C-GET SCP could not send it the objects on this association.",
            "Propose SCP/SCU Role Selection with the SCP role for each storage SOP class to be "
            "retrieved (getscu does this by default; pynetdicom needs build_role()), or use "
            "C-MOVE instead.",
            frames=(e.request.frame, e.final.frame if e.final else None),
            ts=e.start_ts,
            requestor_sent=True,
        )


def async_window_exceeded(f: Facts) -> Iterator[Finding]:
    a = f.a
    if a.partial or a.outcome == Outcome.REJECTED or a.ac_ts is None or a.ac_missing:
        return
    window = a.acceptor_info.async_window if a.acceptor_info else None
    allowed = 1 if window is None else window[0]
    if allowed == 0:
        return  # unlimited
    worst = max(
        (
            e
            for e in f.exchanges
            if e.from_requestor and e.request is not None and e.service != "C-CANCEL"
        ),
        key=lambda e: e.outstanding_before,
        default=None,
    )
    if worst is None or worst.outstanding_before + 1 <= allowed:
        return
    negotiated = (
        f"the negotiated asynchronous operations window allows {allowed}"
        if window
        else "no asynchronous operations window was negotiated, so only 1 is allowed"
    )
    req = worst.request
    assert req is not None
    yield f.finding(
        "async-window-exceeded",
        Severity.WARNING,
        "More requests outstanding than negotiated",
        f"{cap(f.party(True))} had {worst.outstanding_before + 1} requests outstanding at "
        f"once (the latest: {exchange_label(worst)}), but {negotiated} (PS3.7 D.3.3.3). "
        "Many SCPs abort or stall when this happens.",
        "Make the requestor wait for each response before the next request, or negotiate a "
        "larger window (item 0x53) that the acceptor confirms.",
        frames=(req.frame,),
        ts=req.ts,
        requestor_sent=True,
    )
