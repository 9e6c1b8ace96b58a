"""Findings: plain-language diagnosis over the model, separate from the dissection engine.

The engine says what happened; these rules decide what matters and say it in words a
radiology engineer understands, with the evidence. One concern per module. Rules over one
association run when it ends; rules that look across associations (C-MOVE and its
sub-association) run when the source ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from analyzer.model import Association, Finding, Severity
from analyzer.store import Store

from . import connection, ending, move, negotiation, rejection, security, status, wire
from .facts import Facts

AssociationRule = Callable[[Facts], Iterable[Finding]]
CaptureRule = Callable[[Store], Iterable[Finding]]

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
    status.dimse_statuses,
    move.move_destination_unknown,
    wire.pdu_exceeds_max_length,
    wire.protocol_violations,
    wire.capture_gap,
    wire.partial_association,
    wire.ae_title_invalid,
    wire.uid_invalid,
    security.cleartext_credentials,
)

CAPTURE_RULES: tuple[CaptureRule, ...] = (move.move_without_sub_association,)

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
    "release-collision",
    "unanswered-request",
    "dimse-failure-status",
    "dimse-warning-status",
    "move-destination-unknown",
    "move-without-sub-association",
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
    # made by live capture about the capture itself (analyzer/sources/live_findings.py)
    "capture-drops",
    "capture-lag",
)


class Diagnosis:
    """The findings rules, in the shape the model builder calls them."""

    def __init__(
        self,
        association_rules: tuple[AssociationRule, ...] = ASSOCIATION_RULES,
        capture_rules: tuple[CaptureRule, ...] = CAPTURE_RULES,
    ) -> None:
        self._association_rules = association_rules
        self._capture_rules = capture_rules

    def association_ended(self, store: Store, association: Association) -> list[Finding]:
        facts = Facts.of(store, association)
        found: list[Finding] = []
        for rule in self._association_rules:
            found.extend(rule(facts))
        return found

    def source_ended(self, store: Store) -> list[Finding]:
        found: list[Finding] = []
        for rule in self._capture_rules:
            found.extend(rule(store))
        return found


def worst(findings: Iterable[Finding]) -> Severity | None:
    """The highest severity among ``findings``, or None."""
    return max((f.severity for f in findings), default=None)


__all__ = ["CODES", "Diagnosis", "Facts", "worst"]
