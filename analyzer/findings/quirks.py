"""``implementation-quirk``: known habits of real implementations that mislead a reader of
the statuses or of the Move Originator fields, each shown on a real peer (samples/README.md).
The implementation is named from its A-ASSOCIATE-RQ/AC (:mod:`.fingerprints`)."""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.model import Finding, LinkHow, Severity
from analyzer.store import Store
from analyzer.workflows import MoveFlow, Update
from analyzer.workflows.moves import MOVE_DESTINATION_UNKNOWN

from . import fingerprints
from .facts import Facts, cap, exchange_label


def _scp(f: Facts, flow: MoveFlow) -> tuple[str, fingerprints.Toolkit | None, str]:
    requestor = not flow.exchange.from_requestor
    info = fingerprints.side_info(flow.association, requestor)
    described = fingerprints.describe(info)
    return (
        f"{f.party(requestor)}, implementation {described}",
        fingerprints.toolkit(info),
        described,
    )


def orthanc_failure_status(store: Store, update: Update) -> Iterator[Finding]:
    """A DCMTK-based C-MOVE SCP (Orthanc) that reports a failed C-MOVE as 0xC000 without
    sub-operation counts: the status hides what an 0xA801 or an 0xA702 with counts says."""
    for flow in update.settled_moves:
        e = flow.exchange
        if e.status != 0xC000 or flow.stores or e.request is None:
            continue
        sub = e.suboperations
        if sub is not None and any(sub[1:]):
            continue
        f = Facts.of(store, flow.association)
        scp, kit, described = _scp(f, flow)
        if kit is not fingerprints.DCMTK:
            continue
        dest = flow.destination or "?"
        if flow.attempts or flow.subs:
            meant = (
                f"here the SCP did try to reach '{dest}' and failed, which a conformant SCP "
                "reports as 0xA702 (unable to perform sub-operations) with the failed count"
            )
        else:
            meant = (
                f"here the SCP made no attempt to reach '{dest}', which is how Orthanc answers a "
                "Move Destination it does not know (a conformant SCP answers 0xA801, Move "
                "Destination unknown) or a request it cannot process"
            )
        yield f.finding(
            "implementation-quirk",
            Severity.INFO,
            "C-MOVE failure reported as 0xC000 (Orthanc's way)",
            f"{cap(scp)} answered {exchange_label(e)} with 0xC000 (Unable to process) "
            f"and no sub-operation counts: {meant}. Orthanc 1.10, which identifies itself with "
            "DCMTK's implementation class UID, answers both an unknown and an unreachable "
            "destination this way; DCMTK's dcmqrscp answers 0xA801 and 0xA702.",
            "Read the SCP's own log for the cause (Orthanc logs 'Unknown modality for AET' for an "
            "unknown destination); do not rely on the status code alone with this SCP.",
            frames=(e.request.frame, e.final.frame if e.final else None),
            ts=e.start_ts,
            requestor_sent=not e.from_requestor,
            detail=described,
        )


def originator_is_the_scp(store: Store, update: Update) -> Iterator[Finding]:
    """Sub-operations that name the C-MOVE SCP itself as Move Originator (pynetdicom)."""
    for flow in update.moves:
        if len(flow.new) != len(flow.links) or not flow.originator or not flow.scp_ae:
            continue  # said once per C-MOVE, with its first links
        if flow.originator == flow.scp_ae:
            continue
        if not any(link.how == LinkHow.ORIGINATOR_FIELDS for link in flow.new):
            continue
        own = [
            s
            for s in flow.stores
            if s.request is not None
            and (s.request.command.move_originator_ae or "").strip() == flow.scp_ae
        ]
        if not own:
            continue
        f = Facts.of(store, flow.association)
        scp, kit, described = _scp(f, flow)
        known = (
            " pynetdicom's C-MOVE SCP does this: it writes its own AE title there."
            if kit is not None and kit.name == "pynetdicom"
            else ""
        )
        e = flow.exchange
        first = own[0].request
        assert first is not None
        yield f.finding(
            "implementation-quirk",
            Severity.INFO,
            "Move Originator AE Title names the C-MOVE SCP itself",
            f"The C-STORE-RQs that {scp} sent for {exchange_label(e)} give its own AE title "
            f"'{flow.scp_ae}' as Move Originator Application Entity Title (0000,1030), where "
            f"PS3.7 wants the AE that asked for the C-MOVE, '{flow.originator}'.{known} "
            "dicomtap tied them to the C-MOVE by the Move Originator Message ID and the time.",
            "A C-MOVE SCU that checks the originator of incoming C-STOREs (to tell its own "
            "retrievals from other traffic) will not recognise these; report it to the SCP's "
            "maker.",
            frames=(first.frame,),
            ts=first.ts,
            requestor_sent=True,
            detail=described,
        )


def unknown_after_trying(store: Store, update: Update) -> Iterator[Finding]:
    """0xA801 (destination unknown) from an SCP that knew the destination and tried it."""
    for flow in update.moves:
        e = flow.exchange
        if e.status != MOVE_DESTINATION_UNKNOWN or len(flow.new) != len(flow.links):
            continue
        f = Facts.of(store, flow.association)
        scp, kit, described = _scp(f, flow)
        known = (
            " pynetdicom's C-MOVE SCP does this whenever it cannot associate with the destination."
            if kit is not None and kit.name == "pynetdicom"
            else ""
        )
        target = flow.subs[0] if flow.subs else flow.attempts[0]
        yield f.finding(
            "implementation-quirk",
            Severity.INFO,
            "0xA801 (destination unknown) for a destination the SCP knew",
            f"{cap(scp)} answered {exchange_label(e)} with 0xA801 (Move Destination unknown), "
            f"yet it knew where '{flow.destination}' is: it tried to reach it (association "
            f"{target.id}, to {target.server}).{known}",
            "Do not take this 0xA801 at its word: the destination is configured on the SCP; "
            "what failed is the association to it (see the other findings).",
            frames=(e.final.frame if e.final else None, target.start_frame),
            ts=e.end_ts,
            requestor_sent=not e.from_requestor,
            detail=described,
        )
