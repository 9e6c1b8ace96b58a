"""``dimse-failure-status`` and ``dimse-warning-status``: what the DIMSE statuses say."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from analyzer.model import Exchange, Finding, Severity
from analyzer.reports.common import plural
from analyzer.workflows.moves import MOVE_DESTINATION_UNKNOWN

from .facts import Facts, sop_name


def status_hint(service: str, status: int) -> str:
    """What to check for a failure or warning status, by its family (PS3.4, PS3.7 Annex C)."""
    if status == 0x0111:
        return (
            "The acceptor already holds an object with this SOP Instance UID; check for "
            "duplicates or re-sent studies."
        )
    if status in (0x0122, 0x0112):
        return (
            "The acceptor does not support this SOP class for this operation; enable it or send "
            "elsewhere."
        )
    if status == 0x0211:
        return "The acceptor does not know this operation for the SOP class."
    if status == 0x0117:
        return (
            "The acceptor considers the SOP Instance UID invalid (syntax, length over 64, or a "
            "leading zero)."
        )
    if status == 0x0110:
        return "A generic processing failure on the acceptor; its log says more."
    if 0xA700 <= status <= 0xA7FF:
        if service in ("C-MOVE", "C-GET"):
            return (
                "The SCP ran out of resources for the sub-operations (disk, memory, or it cannot "
                "reach the destination); check its log."
            )
        return (
            "The acceptor is out of resources: most often its disk or storage quota is full. "
            "Check free space and quotas on the receiving side."
        )
    if 0xA900 <= status <= 0xA9FF or status == 0xB007:
        return (
            "The data set does not match the SOP class (missing or wrong attributes): validate "
            "the object (e.g. dciodvfy) on the sending side."
        )
    if 0xC000 <= status <= 0xCFFF and service in ("C-MOVE", "C-GET"):
        return (
            "The SCP could not carry out the retrieval: its log says why. Common causes: an "
            "unknown or unreachable destination (for C-MOVE), or an identifier it cannot match."
        )
    if 0xC000 <= status <= 0xCFFF and service == "C-FIND":
        return "The SCP could not process the query: check the query keys and the SCP's log."
    if 0xC000 <= status <= 0xCFFF:
        return (
            "The acceptor could not understand the data set (parsing or a missing required "
            "attribute); validate the object and compare with one that is accepted."
        )
    if status == 0xB000:
        if service in ("C-MOVE", "C-GET"):
            return (
                "Some sub-operations failed: look at the C-STORE exchanges of the sub-operations "
                "for their statuses."
            )
        return (
            "The acceptor changed (coerced) some attributes when storing; check whether that "
            "matters for the workflow."
        )
    if status == 0xB006:
        return "The acceptor discarded some elements; check which ones in its log."
    if status == 0xFE00:
        return "The operation was cancelled (C-CANCEL)."
    return (
        "The status comes from the acceptor's application; its log and conformance statement say "
        "what it means."
    )


def dimse_statuses(f: Facts) -> Iterator[Finding]:
    groups: dict[tuple[str, int, str], list[Exchange]] = defaultdict(list)
    for e in f.exchanges:
        if e.final is None or e.status is None:
            continue
        if e.status_category not in ("Failure", "Warning"):
            continue
        if e.service == "C-MOVE" and e.status == MOVE_DESTINATION_UNKNOWN:
            continue  # its own rule (move.py)
        groups[(e.service, e.status, e.status_category)].append(e)
    for (service, status, category), items in groups.items():
        first = items[0]
        comments = sorted({e.error_comment for e in items if e.error_comment})
        comment = f" Error Comment: '{comments[0]}'." if comments else ""
        if len(comments) > 1:
            comment = " Error Comments: " + "; ".join(f"'{c}'" for c in comments[:3]) + "."
        sops = sorted({sop_name(e.sop_class) for e in items})
        failure = category == "Failure"
        word = "failed" if failure else "completed with a warning"
        sub = ""
        if first.suboperations and any(x is not None for x in first.suboperations):
            rem, done, failed, warned = first.suboperations
            sub = (
                f" Sub-operations: {done or 0} completed, {failed or 0} failed, {warned or 0} "
                f"with warnings{f', {rem} remaining' if rem else ''}."
            )
        responder = f.party(not first.from_requestor)
        yield f.finding(
            "dimse-failure-status" if failure else "dimse-warning-status",
            Severity.ERROR if failure else Severity.WARNING,
            f"{service} {word}: {first.status_meaning}",
            f"{plural(len(items), service + ' request')} ({', '.join(sops)}) {word}: "
            f"{responder} answered status 0x{status:04X} ({first.status_meaning}).{comment}{sub}",
            status_hint(service, status),
            frames=[e.final.frame for e in items[:10] if e.final],
            ts=first.final.ts if first.final else first.start_ts,
            requestor_sent=not first.from_requestor,
            detail=f"status=0x{status:04X}",
        )
