"""The diagnosis report: a verdict, then associations worst first with their findings."""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Iterable
from typing import IO

from analyzer.model import Association, Finding, Severity
from analyzer.store import Store
from analyzer.textsafe import printable

from .common import human_text, iso_time, lower_first, outcome_text, unlisted_lines

_WIDTH = 100


#: Error codes from the most to the least specific cause: when an association has several
#: errors, the first of these is the one the verdict names (an abort is often the
#: consequence of a protocol violation, a dropped connection of a TLS mismatch).
CAUSE_ORDER = (
    "association-rejected",
    "tls-on-dicom-port",
    "connection-refused",
    "connection-unanswered",
    "no-context-accepted",
    "move-destination-unknown",
    "move-sub-association-rejected",
    "move-destination-unreachable",
    "move-without-sub-association",
    "commitment-reverse-association-failed",
    "commitment-failed-references",
    "role-not-negotiated",
    "unaccepted-context-used",
    "pdu-exceeds-max-length",
    "protocol-violation",
    "malformed-pdu",
    "context-rejected",
    "dimse-failure-status",
    "tcp-reset-after-idle",
    "tcp-unanswered",
    "association-aborted",
    "transport-dropped",
    "unanswered-request",
)


def primary_cause(findings: Iterable[Finding]) -> Finding | None:
    """The error finding that best says why the association failed."""
    errors = [f for f in findings if f.severity == Severity.ERROR]
    if not errors:
        return None
    rank = {code: i for i, code in enumerate(CAUSE_ORDER)}
    best = min(errors, key=lambda f: rank.get(f.code, len(rank)))
    if best.code == "association-aborted":
        # The side that aborted was waiting for an answer that never came: that is the cause.
        for f in errors:
            if f.code == "unanswered-request" and f.evidence.direction == best.evidence.direction:
                return f
    return best


def verdict(store: Store) -> str:
    """One line: how many associations failed and why."""
    total = len(store)
    if not total and not store.unlisted.connections:
        return "No DICOM association found."
    causes: Counter[str] = Counter()
    failed = 0
    warnings = 0
    for a in store.iter_associations():
        findings = store.findings(a.id)
        cause = primary_cause(findings)
        if cause is not None:
            failed += 1
            causes[lower_first(cause.title)] += 1
        elif any(f.severity == Severity.WARNING for f in findings):
            warnings += 1
    noun = "association" if total == 1 else "associations"
    if not failed:
        text = f"No failure in {total} {noun}"
        if warnings:
            text += f" ({warnings} with warnings)"
        return text + "." + _unlisted_verdict(store)
    reasons = ", ".join(f"{cause} ({n})" for cause, n in causes.most_common())
    return f"{failed} of {total} {noun} failed: {reasons}." + _unlisted_verdict(store)


def _unlisted_verdict(store: Store) -> str:
    """`` N more connection(s) without DICOM not listed (M failed).`` or nothing."""
    unlisted = store.unlisted.connections
    if not unlisted:
        return ""
    failed = sum(g.connections for g in store.unlisted if g.worst == Severity.ERROR)
    return f" {unlisted} more connection(s) without DICOM not listed ({failed} failed)."


def _rank(store: Store, a: Association) -> tuple[int, int, int, int]:
    findings = store.findings(a.id)
    worst = max((f.severity for f in findings), default=0)
    errors = sum(1 for f in findings if f.severity == Severity.ERROR)
    return (-int(worst), -errors, a.start_ts, a.id)


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(
        text, _WIDTH, initial_indent=indent, subsequent_indent=indent, break_on_hyphens=False
    ) or [indent]


def finding_lines(f: Finding) -> list[str]:
    """A finding as an indented block, its wire text escaped (before wrapping, so that the
    lines keep their width)."""
    label = f.severity.label.upper()
    lines = [f"  {label:<7} {printable(f.title)}  [{f.code}]"]
    pad = " " * 10
    lines += _wrap(printable(f.explanation), pad)
    lines += _wrap(f"Hint: {printable(f.hint)}", pad)
    ev = f.evidence
    where = []
    if ev.frames:
        frames = ", ".join(str(n) for n in ev.frames[:8])
        where.append(f"frame{'s' if len(ev.frames) > 1 else ''} {frames}")
    if ev.ts is not None:
        where.append(f"at {iso_time(ev.ts)}")
    if ev.direction is not None:
        where.append(f"({ev.direction})")
    if where:
        lines.append(f"{pad}Evidence: {' '.join(where)}")
    return lines


def write(store: Store, out: IO[str], min_severity: Severity = Severity.INFO) -> None:
    """The verdict line, capture notes, then associations worst first."""
    lines = [f"Verdict: {verdict(store)}"]
    lines += [f"Note: {note}; analysed up to the cut." for note in store.source.truncated]
    out.write(human_text([*lines, ""]))
    quiet: Counter[str] = Counter()
    # Ranks, not records: a spilling store reads each association back when it is written.
    ranked: list[tuple[int, int, int, int]] = []
    for a in store.iter_associations():
        if any(f.severity >= min_severity for f in store.findings(a.id)):
            ranked.append(_rank(store, a))
        else:
            quiet[str(a.outcome or "in progress")] += 1
    ranked.sort()
    for *_, aid in ranked:
        found = store.association(aid)
        assert found is not None
        a = found
        findings = [f for f in store.findings(a.id) if f.severity >= min_severity]
        title = f"Association {a.id}: {a.client} → {a.server}"
        if a.calling_ae_title or a.called_ae_title:
            title += f"  {a.calling_ae_title or '?'} → {a.called_ae_title or '?'}"
        lines = [title, f"  {outcome_text(a)}; started {iso_time(a.start_ts)}"]
        for f in findings:
            lines += finding_lines(f)
        out.write(human_text([*lines, ""]))
    shown = [g for g in store.unlisted if g.worst is None or g.worst >= min_severity]
    if shown:
        out.write(human_text([*unlisted_lines(shown), ""]))
    if quiet:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(quiet.items()))
        out.write(
            human_text(
                [f"Without findings at this level: {sum(quiet.values())} association(s) ({kinds})."]
            )
        )


def exit_status(store: Store) -> int:
    """0: no error finding; 1: at least one."""
    if any(g.worst == Severity.ERROR for g in store.unlisted):
        return 1
    return 1 if any(f.severity == Severity.ERROR for f in store.findings()) else 0


__all__ = ["exit_status", "finding_lines", "primary_cause", "verdict", "write"]
