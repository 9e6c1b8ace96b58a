"""Storage commitment: the report with failures, the reverse association that failed, the
report that never came (from the links of :mod:`analyzer.workflows`).

Until the SCU gets a report that commits an object, it must keep its copy: "the modality
never deleted its local copy" is a report that never arrived, or arrived with failures.
"""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.model import Association, Finding, Outcome, Party, Severity
from analyzer.reports.common import duration_text, outcome_text, plural
from analyzer.store import Store
from analyzer.workflows import CommitmentFlow, Delivery, Update

from . import fingerprints
from .facts import Facts, cap, exchange_label

_DELIVERY_MODES = (
    "The commitment SCP can send the N-EVENT-REPORT on the N-ACTION's own association (if it "
    "is still open), on a new association that it opens to the SCU (it must know the SCU's AE "
    "title, address and port), or on a later association that the SCU opens."
)


def _scp_name(flow: CommitmentFlow) -> str:
    title, ip = flow.scp
    return f"'{title}' ({ip})" if title else f"the SCP at {ip}"


def _scu_name(flow: CommitmentFlow) -> str:
    title, ip = flow.scu
    return f"'{title}' ({ip})" if title else f"the SCU at {ip}"


def failed_references(store: Store, update: Update) -> Iterator[Finding]:
    """A report (event type 2) that lists objects the SCP did not commit."""
    for flow in update.commitments:
        new = {(link.target_association, link.target_exchange) for link in flow.new}
        for report in flow.reports:
            if (report.association.id, report.exchange.index) not in new:
                continue
            data = report.data
            if data is None or not data.failed:
                continue
            f = Facts.of(store, flow.association)
            listed = "; ".join(
                f"{r.sop_instance or '?'} ({r.reason_text})" for r in data.failed[:10]
            )
            more = f"; and {len(data.failed) - 10} more" if len(data.failed) > 10 else ""
            cut = "" if data.whole else " (the data set was not captured whole: there may be more)"
            e = report.exchange
            yield f.finding(
                "commitment-failed-references",
                Severity.ERROR,
                f"Storage commitment refused for {plural(len(data.failed), 'object')}",
                f"The storage commitment report for {exchange_label(flow.exchange)} (Transaction "
                f"UID {data.transaction_uid}) from {_scp_name(flow)} committed "
                f"{plural(data.references, 'object')} and failed {len(data.failed)}{cut}: "
                f"{listed}{more}. It came {_delivery_text(report.delivery)}, association "
                f"{report.association.id}.",
                f"The SCU must keep (and send again) the objects that failed: 0x0112 (No such "
                f"SOP instance) means {_scp_name(flow)} never received or no longer holds them; "
                "check its storage log for those SOP Instance UIDs, store them again, then ask "
                "again for commitment.",
                frames=(e.request.frame if e.request else None,),
                ts=e.start_ts,
                requestor_sent=flow.exchange.from_requestor,
                detail=data.transaction_uid,
            )


def _delivery_text(d: Delivery) -> str:
    return {
        Delivery.SAME_ASSOCIATION: "on the N-ACTION's own association",
        Delivery.REVERSE_ASSOCIATION: "on a reverse association the SCP opened",
        Delivery.NEW_ASSOCIATION: "on a later association the SCU opened",
        Delivery.NONE: "nowhere",
    }[d]


def _what_failed(a: Association) -> str:
    if a.outcome == Outcome.NEVER_ASSOCIATED:
        if not a.syn_answered and a.closed_by == Party.ACCEPTOR:
            return f"the connection to {a.server} was refused: nothing listens there"
        if not a.syn_answered:
            return f"the connection to {a.server} got no answer"
        return f"it connected to {a.server} but never associated"
    if a.outcome == Outcome.REJECTED:
        return f"the association was {outcome_text(a)}"
    if a.ac_ts is not None and not a.negotiation_cut and not any(c.accepted for c in a.contexts):
        return "the SCU accepted the association but none of its presentation contexts"
    return f"the association carried no report ({outcome_text(a)})"


def reverse_association_failed(store: Store, update: Update) -> Iterator[Finding]:
    """A reverse association from the SCP that could not deliver the report."""
    for flow in update.commitments:
        new = {link.target_association for link in flow.new if link.target_exchange is None}
        for a in flow.attempts:
            if a.id not in new:
                continue
            f = Facts.of(store, flow.association)
            e = flow.exchange
            what = _what_failed(a)
            if a.outcome == Outcome.REJECTED and a.reject is not None and a.reject.reason == 7:
                hint = (
                    f"The SCU does not answer to the AE title '{a.called_ae_title}' that the SCP "
                    f"uses for it: make {_scp_name(flow)}'s entry for this modality match the "
                    "modality's own AE title."
                )
            elif a.outcome == Outcome.REJECTED and a.reject is not None and a.reject.reason == 3:
                hint = (
                    f"The SCU does not accept associations from '{a.calling_ae_title}': register "
                    f"the commitment SCP ({a.client.ip}) on the modality."
                )
            elif a.outcome == Outcome.NEVER_ASSOCIATED:
                hint = (
                    f"The SCP has {a.server} configured for the modality: check that address "
                    "and port, that the modality listens there for storage commitment reports, "
                    "and that no firewall blocks connections from the SCP to the modality."
                )
            else:
                hint = (
                    "The modality must accept Storage Commitment Push Model with the SCP role "
                    "for the SCP on its incoming associations."
                )
            opened = (
                f"tried to connect back to the SCU (association {a.id})"
                if a.outcome == Outcome.NEVER_ASSOCIATED
                else f"opened association {a.id} back to the SCU"
            )
            yield f.finding(
                "commitment-reverse-association-failed",
                Severity.ERROR,
                "Storage commitment report could not be delivered",
                f"After {exchange_label(e)} from {_scu_name(flow)}, {_scp_name(flow)} {opened} "
                f"to deliver the report, and {what}. "
                "Without the report the SCU keeps waiting and must not delete its copies.",
                hint,
                frames=(e.request.frame if e.request else None, a.start_frame, a.end_frame),
                ts=a.start_ts,
                requestor_sent=not e.from_requestor,
                detail=f"reverse association {a.id}",
            )


def report_missing(store: Store, update: Update) -> Iterator[Finding]:
    """A commitment request answered Success whose report never shows up (when it settles)."""
    for flow in update.settled_commitments:
        e = flow.exchange
        if flow.reports or flow.attempts or e.final is None or e.status != 0:
            continue
        if e.request is None:
            continue  # the request is before the capture: its Transaction UID is unknown
        f = Facts.of(store, flow.association)
        last = store.source.last_ts
        waited = (
            f" The capture went on for {duration_text(last - e.start_ts)} after the request."
            if last is not None and last > e.start_ts
            else ""
        )
        info = fingerprints.side_info(flow.association, not e.from_requestor)
        uid = flow.data.transaction_uid if flow.data else None
        open_after = flow.association.end_ts
        same = (
            f" The N-ACTION's association stayed open {duration_text(open_after - e.start_ts)} "
            "after it and carried no report."
            if open_after is not None
            else ""
        )
        yield f.finding(
            "commitment-report-missing",
            Severity.WARNING,
            "No storage commitment report",
            f"{cap(_scp_name(flow))} accepted {exchange_label(e)} (Transaction UID "
            f"{uid or 'not captured'}) from {_scu_name(flow)}, but no N-EVENT-REPORT with that "
            f"Transaction UID is in the capture, and no association from the SCP back to the "
            f"SCU.{same}{waited} The SCP is implementation {fingerprints.describe(info)}.",
            f"{_DELIVERY_MODES} Check that the SCP knows the SCU's AE title, address and port "
            "for reports, and look in the SCP's log for the commitment job; a report may also "
            "come later than the capture lasted.",
            frames=(e.request.frame if e.request else None, e.final.frame),
            ts=e.start_ts,
            requestor_sent=e.from_requestor,
            detail=uid,
        )
