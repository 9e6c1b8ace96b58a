"""C-MOVE: an unknown destination, and a C-MOVE whose sub-association never shows up.

A C-MOVE SCP sends the objects on a *new* association that it opens to the destination AE,
at the address it has configured for that AE (PS3.4 C.4.2). The capture can show whether
that association happened.
"""

from __future__ import annotations

from collections.abc import Iterator

from pynetdicom.status import Status

from analyzer.model import Association, Exchange, Finding, Outcome, Party, Severity
from analyzer.store import Store

from .facts import Facts, exchange_label

MOVE_DESTINATION_UNKNOWN: int = Status.MOVE_DESTINATION_UNKNOWN  # 0xA801
_SLACK_NS = 2_000_000_000


def move_destination_unknown(f: Facts) -> Iterator[Finding]:
    for e in f.exchanges:
        if e.service != "C-MOVE" or e.status != MOVE_DESTINATION_UNKNOWN or e.request is None:
            continue
        dest = e.request.command.move_destination or "?"
        scp = f.party(not e.from_requestor)
        yield f.finding(
            "move-destination-unknown",
            Severity.ERROR,
            f"C-MOVE destination '{dest}' unknown",
            f"{exchange_label(e)} asked {scp} to send objects to the AE '{dest}', and it answered "
            f"0xA801 (Move Destination unknown): it has no address configured for that AE title.",
            f"On {scp}, configure the destination '{dest}': its AE title (byte for byte, case "
            "matters), IP address and port. In Orthanc that is DicomModalities; in a PACS, its "
            "list of remote AEs / DICOM nodes.",
            frames=(e.request.frame, e.final.frame if e.final else None),
            ts=e.start_ts,
            requestor_sent=e.from_requestor,
            detail=dest,
        )


def _troubled(e: Exchange) -> bool:
    """A C-MOVE whose objects did not all arrive (A801 has its own rule)."""
    if e.service != "C-MOVE" or e.request is None or e.status == MOVE_DESTINATION_UNKNOWN:
        return False
    sub = e.suboperations
    failed = (sub[2] or 0) if sub else 0
    completed = (sub[1] or 0) if sub else 0
    if e.final is None:
        return e.pending > 0 and completed == 0
    return e.status_category in ("Failure", "Warning") or failed > 0


def move_without_sub_association(store: Store) -> Iterator[Finding]:
    associations = store.associations()
    for a in associations:
        for e in store.exchanges(a.id):
            if not _troubled(e):
                continue
            req = e.request
            assert req is not None
            dest = (req.command.move_destination or "").strip()
            scp_ip = a.server.ip if e.from_requestor else a.client.ip
            start = e.start_ts - _SLACK_NS
            end = (e.end_ts or a.end_ts or e.start_ts) + _SLACK_NS
            window = [o for o in associations if o.id != a.id and start <= o.start_ts <= end]
            subs = [
                o for o in window if o.client.ip == scp_ip and (o.called_ae_title or "") == dest
            ]
            if subs:
                continue
            attempts = [
                o for o in window if o.client.ip == scp_ip and o.outcome == Outcome.NEVER_ASSOCIATED
            ]
            tried = _attempts(attempts)
            facts = Facts.of(store, a)
            sub = e.suboperations
            counters = ""
            if sub:
                counters = (
                    f" ({sub[1] or 0} completed, {sub[2] or 0} failed, {sub[3] or 0} warning)"
                )
            yield facts.finding(
                "move-without-sub-association",
                Severity.ERROR,
                f"C-MOVE to '{dest}' sent nothing",
                f"{exchange_label(e)} ended with {e.status_meaning}{counters}, and the capture "
                f"holds no association from the C-MOVE SCP ({scp_ip}) to an AE called '{dest}'."
                f"{tried}",
                f"The C-MOVE SCP could not reach '{dest}'. On the SCP, check that '{dest}' is "
                "configured at all (some SCPs, Orthanc among them, answer a failure such as "
                "0xC000 rather than 0xA801 for an unknown destination), the IP address and port "
                f"configured for it; check that the destination listens there (not only on "
                "127.0.0.1), and that firewalls let the SCP connect to it. If this capture was "
                "filtered by port, the sub-association may simply be outside it.",
                frames=(req.frame, e.final.frame if e.final else None),
                ts=e.start_ts,
                requestor_sent=e.from_requestor,
                detail=dest,
            )


def _attempts(attempts: list[Association]) -> str:
    if not attempts:
        return ""
    described = []
    for o in attempts[:3]:
        if o.syn_answered:
            described.append(f"to {o.server} (connected, but no association)")
        elif o.close_kind is not None and o.closed_by == Party.ACCEPTOR:
            described.append(f"to {o.server} and was refused: nothing listens there")
        else:
            described.append(f"to {o.server} and got no answer")
    return " The SCP did try to connect " + "; ".join(described) + "."
