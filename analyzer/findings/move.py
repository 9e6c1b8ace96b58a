"""C-MOVE: an unknown destination, and what became of the sub-association (from the links).

A C-MOVE SCP sends the objects on a *new* association that it opens to the destination AE,
at the address it has configured for that AE (PS3.4 C.4.2). The linker
(:mod:`analyzer.workflows`) ties each C-MOVE to the association(s) that carried its
C-STOREs, or tried to; these rules say what that shows.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.model import Association, Finding, LinkHow, Outcome, Party, Severity
from analyzer.reports.common import outcome_text, plural, status_text
from analyzer.store import Store
from analyzer.workflows import MoveFlow, Update
from analyzer.workflows.moves import MOVE_DESTINATION_UNKNOWN

from . import fingerprints
from .facts import Facts, exchange_label


def move_destination_unknown(store: Store, update: Update) -> Iterator[Finding]:
    """0xA801 with no attempt to reach the destination (said when the C-MOVE settles: an
    attempt that never became an association is known only then)."""
    for flow in update.settled_moves:
        e = flow.exchange
        if e.status != MOVE_DESTINATION_UNKNOWN or e.request is None:
            continue
        if flow.subs or flow.attempts:
            continue  # the SCP did try: the rules about its sub-association say what failed
        f = Facts.of(store, flow.association)
        dest = e.request.command.move_destination or "?"
        scp = f.party(not e.from_requestor)
        yield f.finding(
            "move-destination-unknown",
            Severity.ERROR,
            f"C-MOVE destination '{dest}' unknown",
            f"{exchange_label(e)} asked {scp} to send objects to the AE '{dest}', and it answered "
            "0xA801 (Move Destination unknown) without trying to reach it: it has no address "
            "configured for that AE title.",
            f"On {scp}, configure the destination '{dest}': its AE title (byte for byte, case "
            "matters), IP address and port. In Orthanc that is DicomModalities; in a PACS, its "
            "list of remote AEs / DICOM nodes.",
            frames=(e.request.frame, e.final.frame if e.final else None),
            ts=e.start_ts,
            requestor_sent=e.from_requestor,
            detail=dest,
        )


def troubled(flow: MoveFlow) -> bool:
    """A C-MOVE whose objects did not all arrive (0xA801 without any attempt to reach the
    destination has its own rule)."""
    e = flow.exchange
    if e.request is None:
        return False
    if e.status == MOVE_DESTINATION_UNKNOWN:
        return bool(flow.subs or flow.attempts)
    sub = e.suboperations
    failed = (sub[2] or 0) if sub else 0
    completed = (sub[1] or 0) if sub else 0
    if e.final is None:
        return e.pending > 0 and completed == 0
    return e.status_category in ("Failure", "Warning") or failed > 0


def _scp(f: Facts, flow: MoveFlow) -> str:
    """``the acceptor ORTHANC (127.0.0.1:4242), implementation OFFIS_DCMTK_367 (...)``."""
    requestor = not flow.exchange.from_requestor
    info = fingerprints.side_info(flow.association, requestor)
    return f"{f.party(requestor)}, implementation {fingerprints.describe(info)}"


def _counters(flow: MoveFlow) -> str:
    sub = flow.exchange.suboperations
    if not sub:
        return ""
    return f" ({sub[1] or 0} completed, {sub[2] or 0} failed, {sub[3] or 0} warning)"


def _sub_label(a: Association) -> str:
    titles = f" {a.calling_ae_title or '?'} → {a.called_ae_title or '?'}"
    return f"association {a.id} ({a.client} → {a.server}{titles if a.rq_ts else ''})"


def sub_association_rejected(store: Store, update: Update) -> Iterator[Finding]:
    """A linked sub-association that the destination rejected (said when the link is made)."""
    for flow in update.moves:
        new = {link.target_association for link in flow.new}
        for sub in flow.subs:
            if sub.id not in new or sub.outcome != Outcome.REJECTED or sub.reject is None:
                continue
            f = Facts.of(store, flow.association)
            e = flow.exchange
            req = e.request
            rj = sub.reject
            hint = f"The destination '{sub.called_ae_title}' refused the C-MOVE SCP's association. "
            if rj.source == 1 and rj.reason == 7:
                hint += (
                    f"It does not answer to the AE title '{sub.called_ae_title}': make the title "
                    "configured for this destination on the C-MOVE SCP match, byte for byte, the "
                    "destination's own AE title."
                )
            elif rj.source == 1 and rj.reason == 3:
                hint += (
                    f"It does not accept associations from '{sub.calling_ae_title}' (the C-MOVE "
                    f"SCP's AE title): register the SCP ({sub.client.ip}) on the destination."
                )
            elif rj.result == 2:
                hint += "The rejection is transient (busy): retry the C-MOVE later."
            else:
                hint += "Its log and conformance statement say why."
            yield f.finding(
                "move-sub-association-rejected",
                Severity.ERROR,
                f"C-MOVE to '{flow.destination}': the destination rejected the sub-association",
                f"{exchange_label(e)} asked {_scp(f, flow)} to send objects to "
                f"'{flow.destination}'. The SCP opened {_sub_label(sub)} to deliver them, and "
                f"it was {outcome_text(sub)}. The C-MOVE ended with {status_text(e)}"
                f"{_counters(flow)}.",
                hint,
                frames=(req.frame if req else None, rj.frame, sub.rq_frame),
                ts=rj.ts,
                requestor_sent=e.from_requestor,
                detail=f"sub-association {sub.id}",
            )


def sub_association_wrong_ae(store: Store, update: Update) -> Iterator[Finding]:
    """A sub-association (tied by the originator fields) called another AE than asked."""
    for flow in update.moves:
        for link in flow.new:
            if link.how != LinkHow.ORIGINATOR_FIELDS or not flow.destination:
                continue
            sub = next((s for s in flow.subs if s.id == link.target_association), None)
            if sub is None or sub.called_ae_title in (None, flow.destination):
                continue
            f = Facts.of(store, flow.association)
            e = flow.exchange
            delivered = sum(1 for s in flow.stores if s.association == sub.id)
            yield f.finding(
                "move-sub-association-wrong-ae",
                Severity.WARNING,
                f"C-MOVE to '{flow.destination}' went to AE '{sub.called_ae_title}'",
                f"{exchange_label(e)} asked for the objects to go to the AE "
                f"'{flow.destination}', but the sub-association the SCP opened for it "
                f"({_sub_label(sub)}, tied by its Move Originator fields) called the AE "
                f"'{sub.called_ae_title}' at {sub.server}; "
                f"{plural(delivered, 'C-STORE')} went there. The SCP is "
                f"{_scp(f, flow)}.",
                f"The C-MOVE SCP maps '{flow.destination}' to another AE title (or address) in "
                "its configuration: check its list of destinations. If the objects were meant "
                f"for '{flow.destination}', they did not go there.",
                frames=(e.request.frame if e.request else None, sub.rq_frame),
                ts=sub.start_ts,
                requestor_sent=e.from_requestor,
                detail=f"sub-association {sub.id}",
            )


def nothing_delivered(store: Store, update: Update) -> Iterator[Finding]:
    """A C-MOVE that failed with no sub-association: the destination was unreachable (the
    SCP's attempts are linked) or nothing was even tried (said when the C-MOVE settles)."""
    for flow in update.settled_moves:
        if not troubled(flow) or flow.subs:
            continue
        e = flow.exchange
        req = e.request
        assert req is not None
        dest = flow.destination or "?"
        f = Facts.of(store, flow.association)
        frames = (req.frame, e.final.frame if e.final else None)
        if flow.attempts:
            yield f.finding(
                "move-destination-unreachable",
                Severity.ERROR,
                f"C-MOVE to '{dest}': destination unreachable",
                f"{exchange_label(e)} ended with {e.status_meaning}{_counters(flow)}. To deliver "
                f"the objects, {_scp(f, flow)} tried to connect {_attempts(flow.attempts)}; no "
                "association to the destination was made.",
                f"On the C-MOVE SCP, check the IP address and port configured for '{dest}'; "
                "check that the destination runs and listens there (not only on 127.0.0.1), "
                "and that firewalls let the SCP connect to it.",
                frames=(*frames, *(a.start_frame for a in flow.attempts[:3])),
                ts=e.start_ts,
                requestor_sent=e.from_requestor,
                detail=dest,
            )
            continue
        unlinked = ""
        if flow.unlinked:
            unlinked = (
                f" The capture does hold {plural(len(flow.unlinked), 'association')} to "
                f"'{dest}' at that time ("
                + ", ".join(_sub_label(a) for a in flow.unlinked[:3])
                + "), but nothing ties it to this C-MOVE (no Move Originator fields naming it, "
                "and not from the SCP's address and AE title)."
            )
        yield f.finding(
            "move-without-sub-association",
            Severity.ERROR,
            f"C-MOVE to '{dest}' sent nothing",
            f"{exchange_label(e)} ended with {e.status_meaning}{_counters(flow)}, and the "
            f"capture holds no association from the C-MOVE SCP to '{dest}', nor any attempt "
            f"to connect. The SCP is {_scp(f, flow)}.{unlinked}",
            f"The C-MOVE SCP did not even try to reach '{dest}'. On the SCP, check that "
            f"'{dest}' is configured at all (some SCPs, Orthanc among them, answer a failure such "
            "as 0xC000 rather than 0xA801 for an unknown destination), with its IP address and "
            "port. If this capture was filtered by port, the sub-association may simply be "
            "outside it.",
            frames=frames,
            ts=e.start_ts,
            requestor_sent=e.from_requestor,
            detail=dest,
        )


def _attempts(attempts: tuple[Association, ...]) -> str:
    described = []
    for o in attempts[:3]:
        if o.syn_answered:
            described.append(f"to {o.server} (connected, but no association; association {o.id})")
        elif o.close_kind is not None and o.closed_by == Party.ACCEPTOR:
            described.append(
                f"to {o.server} and was refused: nothing listens there (association {o.id})"
            )
        else:
            described.append(f"to {o.server} and got no answer (association {o.id})")
    more = f" and {len(attempts) - 3} more time(s)" if len(attempts) > 3 else ""
    return "; ".join(described) + more
