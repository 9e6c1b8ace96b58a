"""Findings: plain-language diagnosis over the model, separate from the dissection engine.

The engine says what happened; these rules decide what matters and say it in words a
radiology engineer understands, with the evidence. One concern per module. Rules over one
association run when it ends. Rules over workflows across associations (a C-MOVE and its
sub-associations, a storage commitment request and its report) read the links that the
linker (:mod:`analyzer.workflows`) makes as associations end: what a new link shows is said
at once, what never came is said when the linker settles the request (at the latest when
the source ends).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from analyzer import redact
from analyzer.model import Association, Exchange, Finding, Severity
from analyzer.store import Store
from analyzer.workflows import Linker, Update

from . import (
    commitment,
    connection,
    ending,
    move,
    negotiation,
    quirks,
    rejection,
    security,
    status,
    suboperations,
    tcp,
    wire,
)
from .facts import Facts

AssociationRule = Callable[[Facts], Iterable[Finding]]
CaptureRule = Callable[[Store], Iterable[Finding]]
WorkflowRule = Callable[[Store, Update], Iterable[Finding]]

ASSOCIATION_RULES: tuple[AssociationRule, ...] = (
    connection.never_associated,
    rejection.association_rejected,
    negotiation.no_context_accepted,
    negotiation.context_rejected,
    negotiation.unaccepted_context_used,
    negotiation.role_not_negotiated,
    negotiation.async_window_exceeded,
    ending.association_aborted,
    ending.transport_dropped,
    ending.idle_before_end,
    ending.release_collision,
    ending.unanswered_request,
    tcp.zero_window,
    tcp.retransmissions,
    tcp.unanswered,
    tcp.reset_after_idle,
    status.dimse_statuses,
    wire.pdu_exceeds_max_length,
    wire.protocol_violations,
    wire.capture_gap,
    wire.partial_association,
    wire.ae_title_invalid,
    wire.uid_invalid,
    security.cleartext_credentials,
)

CAPTURE_RULES: tuple[CaptureRule, ...] = ()

WORKFLOW_RULES: tuple[WorkflowRule, ...] = (
    move.move_destination_unknown,
    move.sub_association_rejected,
    move.sub_association_wrong_ae,
    move.nothing_delivered,
    quirks.orthanc_failure_status,
    quirks.originator_is_the_scp,
    quirks.unknown_after_trying,
    suboperations.move_counts,
    suboperations.get_counts,
    commitment.failed_references,
    commitment.reverse_association_failed,
    commitment.report_missing,
)

#: Every code a rule can emit, for documentation and filters.
CODES: tuple[str, ...] = (
    "never-associated",
    "connection-refused",
    "connection-unanswered",
    "tls-on-dicom-port",
    "association-rejected",
    "no-context-accepted",
    "context-rejected",
    "unaccepted-context-used",
    "role-not-negotiated",
    "async-window-exceeded",
    "association-aborted",
    "transport-dropped",
    "idle-before-abort",
    "tcp-zero-window",
    "tcp-retransmissions",
    "tcp-unanswered",
    "tcp-reset-after-idle",
    "release-collision",
    "unanswered-request",
    "dimse-failure-status",
    "dimse-warning-status",
    "move-destination-unknown",
    "move-without-sub-association",
    "move-destination-unreachable",
    "move-sub-association-rejected",
    "move-sub-association-wrong-ae",
    "suboperation-count-mismatch",
    "commitment-failed-references",
    "commitment-reverse-association-failed",
    "commitment-report-missing",
    "implementation-quirk",
    "pdu-exceeds-max-length",
    "protocol-violation",
    "malformed-pdu",
    "capture-gap",
    "partial-association",
    "ae-title-invalid",
    "uid-invalid",
    "cleartext-credentials",
    "user-identity-unconfirmed",
    "analysis-error",
    # made by live capture about the capture itself (analyzer/sources/live/findings.py)
    "capture-drops",
    "capture-lag",
)


class Diagnosis:
    """The findings rules, in the shape the model builder calls them.

    Each ended association goes to the linker first (its links are in the store before any
    rule reads it), then to the rules about one association, then to the workflow rules.
    """

    def __init__(
        self,
        association_rules: tuple[AssociationRule, ...] = ASSOCIATION_RULES,
        capture_rules: tuple[CaptureRule, ...] = CAPTURE_RULES,
        workflow_rules: tuple[WorkflowRule, ...] = WORKFLOW_RULES,
        linker: Linker | None = None,
    ) -> None:
        self._association_rules = association_rules
        self._capture_rules = capture_rules
        self._workflow_rules = workflow_rules
        self.linker = linker if linker is not None else Linker()

    def association_ended(self, store: Store, association: Association) -> list[Finding]:
        update = self.linker.association_ended(store, association)
        facts = Facts.of(store, association)
        found: list[Finding] = []
        for rule in self._association_rules:
            found.extend(rule(facts))
        found.extend(self._workflows(store, update))
        return [redact.finding(f) for f in found]

    def exchange_ended(self, store: Store, exchange: Exchange) -> list[Finding]:
        self.linker.exchange_ended(store, exchange)
        return []

    def source_ended(self, store: Store) -> list[Finding]:
        found = self._workflows(store, self.linker.source_ended(store))
        for rule in self._capture_rules:
            found.extend(rule(store))
        return [redact.finding(f) for f in found]

    def counted(self, store: Store, association: Association) -> list[Finding]:
        """The findings about one connection without DICOM that is counted, not listed: the
        rules about one association only (it has no id to link or to report by)."""
        facts = Facts.of(store, association)
        return [f for rule in self._association_rules for f in rule(facts)]

    def _workflows(self, store: Store, update: Update) -> list[Finding]:
        found: list[Finding] = []
        for rule in self._workflow_rules:
            found.extend(rule(store, update))
        return found


def worst(findings: Iterable[Finding]) -> Severity | None:
    """The highest severity among ``findings``, or None."""
    return max((f.severity for f in findings), default=None)


__all__ = ["CODES", "Diagnosis", "Facts", "worst"]
