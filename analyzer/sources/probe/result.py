"""A probe's result: what was measured, observed and found, and its monitoring state.

:func:`evaluate` turns what the probe did (its connections, service runs, scan) and what the
observer recorded about it (the store: associations, exchanges, findings, the same records
a capture gives) into :class:`Problem` lines with a :class:`~.options.Health` each. The
worst decides the exit status; the first says why, in ``diagnose``'s words when the
findings rules have them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from analyzer.model import (
    Association,
    Direction,
    Exchange,
    Finding,
    Outcome,
    Party,
    Severity,
)
from analyzer.names import context_result_text, status_meaning, uid_name
from analyzer.reports.common import duration_text, plural
from analyzer.reports.diagnosis import primary_cause
from analyzer.store import Store
from analyzer.textsafe import printable
from dissectors.pdu import abort_source_text

from .baseline import Drift
from .catalog import ContextSpec
from .options import Health, ProbeOptions
from .scan import ScanMatrix
from .services import ServiceRun
from .wire import Cause, Trouble

__all__ = ["CheckRun", "ProbeResult", "Problem", "ServiceResult", "evaluate"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason the state is not OK. ``key`` is stable from one run to the next (the
    text may hold figures), so that ``--watch`` can tell a new problem from an old one."""

    health: Health
    key: str
    text: str


@dataclass(frozen=True, slots=True)
class ServiceResult:
    """A service check joined with what the observer saw of it."""

    name: str
    sop_class: str
    status: int | None
    category: str
    meaning: str
    latency_ns: int | None
    """Observed: the request's last byte to the final response's first byte (commitment:
    the N-ACTION request to the N-EVENT-REPORT)."""
    error: str | None
    matches: int | None = None
    cancelled: bool = False
    report_status: int | None = None


@dataclass(frozen=True, slots=True)
class CheckRun:
    """What the check association did: what it proposed (and which of those the user asked
    for), its wire's measurements, and the service runs."""

    connection: int
    contexts: tuple[ContextSpec, ...]
    requested: frozenset[str]
    """Abstract syntaxes the user asked for (their rejection is a WARNING); the others were
    added for a service (their rejection fails the service)."""
    connect_ns: int | None
    tls_ns: int | None
    trouble: Trouble | None
    received_head: bytes
    runs: tuple[ServiceRun, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """Everything one probe found out."""

    options: ProbeOptions
    started_ts: int
    duration_ns: int
    health: Health
    summary: str
    problems: tuple[Problem, ...]
    store: Store
    association: Association | None
    connect_ns: int | None
    tls_ns: int | None
    association_ns: int | None
    services: tuple[ServiceResult, ...]
    findings: tuple[Finding, ...]
    trouble: Trouble | None
    scan: ScanMatrix | None = None
    drift: Drift | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def established(self) -> bool:
        a = self.association
        return a is not None and a.ac_ts is not None


# --- joining runs with the observed exchanges ----------------------------------------------


def _exchange(exchanges: Sequence[Exchange], service: str, msg_id: int) -> Exchange | None:
    for e in exchanges:
        if e.from_requestor and e.service == service and e.message_id == msg_id:
            return e
    return None


def _service_result(run: ServiceRun, exchanges: Sequence[Exchange]) -> ServiceResult:
    wire_name = {"commit": "N-ACTION"}.get(run.name, run.name)
    e = _exchange(exchanges, wire_name, run.message_id)
    status = e.status if e is not None and e.final is not None else run.status
    if status is None:
        category, meaning = "Unknown", "no response"
    else:
        category, meaning = status_meaning(status, wire_name, run.sop_class)
    latency = e.latency_ns if e is not None else None
    if run.name == "commit":
        latency = run.elapsed_ns if run.report_status is not None else latency
    return ServiceResult(
        name=run.name,
        sop_class=run.sop_class,
        status=status,
        category=category,
        meaning=meaning,
        latency_ns=latency,
        error=run.error,
        matches=run.matches,
        cancelled=run.cancelled,
        report_status=run.report_status,
    )


# --- evaluation ------------------------------------------------------------------------------

#: Findings the probe's own problems already say (in their words); others become warnings.
_SAID = frozenset(
    {
        "association-rejected",
        "no-context-accepted",
        "context-rejected",
        "association-aborted",
        "transport-dropped",
        "unanswered-request",
        "dimse-failure-status",
        "dimse-warning-status",
        "connection-refused",
        "connection-unanswered",
        "never-associated",
        "tls-on-dicom-port",
        "idle-before-abort",
    }
)


def _what_it_speaks(head: bytes) -> str | None:
    """When the peer's first bytes are not a PDU: what they look like."""
    if not head or 1 <= head[0] <= 7:
        return None
    if len(head) >= 3 and 20 <= head[0] <= 23 and head[1] == 3:
        return "answered with TLS: this port expects DICOM over TLS (probe it with --tls)"
    line = head.split(b"\n", 1)[0].rstrip(b"\r")[:80]
    if head.startswith(b"HTTP/"):
        return f"answered in HTTP ({printable(line.decode('latin-1'))}): a web port, not DICOM"
    text = line.decode("latin-1")
    if line and sum(32 <= b < 127 for b in line) >= len(line) * 0.9:
        return f"answered with text that is not DICOM: {printable(text)!r}"
    return f"answered with bytes that are not DICOM: {head[:16].hex(' ')}"


def _latency_problems(opts: ProbeOptions, what: str, key: str, ns: int | None) -> list[Problem]:
    if ns is None:
        return []
    seconds = ns / 1e9
    if opts.crit is not None and seconds > opts.crit:
        return [
            Problem(
                Health.CRITICAL,
                f"latency:{key}",
                f"{what} took {duration_text(ns)} (critical over {opts.crit:g} s)",
            )
        ]
    if opts.warn is not None and seconds > opts.warn:
        return [
            Problem(
                Health.WARNING,
                f"latency:{key}",
                f"{what} took {duration_text(ns)} (warning over {opts.warn:g} s)",
            )
        ]
    return []


#: Who aborted the check association, by the party :func:`dissectors.outcome.ending` named.
_ABORTER: dict[Party | None, str] = {
    Party.REQUESTOR: "the probe",
    Party.ACCEPTOR: "the SCP",
    Party.THIRD_PARTY: "a third party between the probe and the SCP (a proxy?)",
    None: "one side",
}


def _association_problems(
    opts: ProbeOptions, check: CheckRun, a: Association | None, findings: Sequence[Finding]
) -> list[Problem]:
    """Why the check association did not work, if it did not."""
    trouble = check.trouble
    cause = primary_cause(findings)
    speaks = _what_it_speaks(check.received_head)
    if speaks is not None and (a is None or a.ac_ts is None):
        return [Problem(Health.CRITICAL, "not-dicom", f"the peer {speaks}")]
    if trouble is not None and trouble.cause in (
        Cause.DNS,
        Cause.REFUSED,
        Cause.CONNECT_TIMEOUT,
        Cause.UNREACHABLE,
        Cause.TLS,
        Cause.PDU_TOO_LARGE,
    ):
        text = trouble.text
        if trouble.cause == Cause.TLS and opts.tls is not None and not opts.tls.cert:
            text += " (does the SCP require a client certificate? --tls-cert/--tls-key)"
        return [Problem(Health.CRITICAL, f"transport:{trouble.cause}", text)]
    if a is not None and a.outcome == Outcome.REJECTED and a.reject is not None:
        rj = a.reject
        title = cause.title if cause is not None else "association rejected"
        kind = "transient" if rj.result == 2 else "permanent"
        return [
            Problem(
                Health.CRITICAL,
                f"rejected:{rj.source}:{rj.reason}",
                f"association rejected: {title} ({kind}; result {rj.result}, source "
                f"{rj.source}, reason {rj.reason})",
            )
        ]
    if a is None or a.ac_ts is None:
        if (
            a is not None
            and a.abort is not None
            and a.outcome == Outcome.ABORTED
            and a.ended_by != Party.REQUESTOR
        ):
            return [
                Problem(
                    Health.CRITICAL,
                    "aborted",
                    f"{_ABORTER[a.ended_by]} aborted instead of answering the A-ASSOCIATE-RQ "
                    f"(A-ABORT source {a.abort.source}: {abort_source_text(a.abort.source)})",
                )
            ]
        silent = a is not None and a.acceptor_pdus.total == 0 and not a.server_head
        # The probe gave up on a silent SCP (its A-ABORT), whoever closed the connection
        # first afterwards.
        gave_up = a is not None and a.ended_by == Party.REQUESTOR and a.abort is not None
        if (trouble is not None and trouble.cause == Cause.TIMEOUT) or (
            silent and a is not None and (a.closed_by != Party.ACCEPTOR or gave_up)
        ):
            return [
                Problem(
                    Health.CRITICAL,
                    "no-answer",
                    f"no answer to the A-ASSOCIATE-RQ within {opts.timeout:g} s",
                )
            ]
        if trouble is not None and trouble.cause == Cause.RESET and not check.received_head:
            return [
                Problem(
                    Health.CRITICAL,
                    "transport:reset",
                    "the SCP reset the connection without answering the A-ASSOCIATE-RQ"
                    + ("" if opts.tls else " (does this port expect DICOM over TLS? --tls)")
                    + (f": {cause.title}" if cause is not None else ""),
                )
            ]
        if trouble is not None:
            return [Problem(Health.CRITICAL, f"transport:{trouble.cause}", trouble.text)]
        text = cause.title if cause is not None else "the connection closed"
        return [
            Problem(
                Health.CRITICAL,
                "no-association",
                f"no association: {text[:1].lower() + text[1:]} before the SCP answered",
            )
        ]
    problems: list[Problem] = []
    accepted = [c for c in a.contexts if c.accepted]
    if not accepted:
        problems.append(
            Problem(
                Health.CRITICAL,
                "no-context",
                f"no presentation context accepted (of {len(a.contexts)} proposed)",
            )
        )
    else:
        for c in a.contexts:
            if c.result not in (None, 0) and c.abstract_syntax in check.requested:
                problems.append(
                    Problem(
                        Health.WARNING,
                        f"context:{c.abstract_syntax}",
                        f"{uid_name(c.abstract_syntax)} not accepted "
                        f"({context_result_text(c.result)})",
                    )
                )
    if a.abort is not None and a.outcome == Outcome.ABORTED:
        by_probe = a.ended_by == Party.REQUESTOR
        problems.append(
            Problem(
                Health.CRITICAL,
                "aborted",
                f"association aborted by {_ABORTER[a.ended_by]} (A-ABORT source "
                f"{a.abort.source}: {abort_source_text(a.abort.source)})"
                + (f": {trouble.text}" if trouble is not None and by_probe else ""),
            )
        )
    elif a.outcome == Outcome.TRANSPORT_DROPPED and a.closed_by == Party.ACCEPTOR:
        problems.append(
            Problem(Health.CRITICAL, "dropped", "the SCP closed the connection without a release")
        )
    return problems


def _service_problems(opts: ProbeOptions, services: Sequence[ServiceResult]) -> list[Problem]:
    problems: list[Problem] = []
    for s in services:
        key = f"service:{s.name}"
        status = f"0x{s.status:04X} {s.meaning}" if s.status is not None else "no response"
        if s.error is not None:
            problems.append(Problem(Health.CRITICAL, key, f"{s.name} failed: {s.error}"))
        elif s.category == "Failure" or (s.category == "Cancel" and not s.cancelled):
            problems.append(Problem(Health.CRITICAL, key, f"{s.name} failed: {status}"))
        elif s.category == "Warning":
            problems.append(Problem(Health.WARNING, key, f"{s.name}: warning status {status}"))
        elif s.category not in ("Success", "Cancel"):
            problems.append(Problem(Health.CRITICAL, key, f"{s.name}: status {status}"))
        problems += _latency_problems(opts, s.name, s.name, s.latency_ns)
    return problems


def _finding_problems(a: Association | None, findings: Sequence[Finding]) -> list[Problem]:
    """Warnings about the SCP's behaviour that no other problem says, on an association that
    worked (when it did not, its cause says it all; the findings are in the details). What
    the probe's own client did is not the SCP's problem."""
    if a is None or a.ac_ts is None:
        return []
    return [
        Problem(Health.WARNING, f"finding:{f.code}", f"{f.title} [{f.code}]")
        for f in findings
        if f.severity >= Severity.WARNING
        and f.code not in _SAID
        and f.evidence.direction != Direction.REQUESTOR_TO_ACCEPTOR
    ]


def _scan_problems(scan: ScanMatrix | None, drift: Drift | None) -> list[Problem]:
    problems: list[Problem] = []
    if scan is not None and scan.failed_associations:
        problems.append(
            Problem(
                Health.CRITICAL,
                "scan:incomplete",
                f"scan incomplete: {scan.failed_associations} of "
                f"{plural(scan.associations, 'association')} not answered",
            )
        )
    if drift is not None and drift.lost:
        names = ", ".join(f"{uid_name(s)} / {uid_name(t)}" for s, t in drift.lost[:3])
        more = f" and {len(drift.lost) - 3} more" if len(drift.lost) > 3 else ""
        problems.append(
            Problem(
                Health.CRITICAL,
                "baseline:lost",
                f"{plural(len(drift.lost), 'context')} accepted in the baseline no longer "
                f"accepted: {names}{more}",
            )
        )
    return problems


def evaluate(
    opts: ProbeOptions,
    store: Store,
    check: CheckRun,
    *,
    started_ts: int,
    duration_ns: int,
    scan: ScanMatrix | None = None,
    drift: Drift | None = None,
) -> ProbeResult:
    """The result of one probe, from what it did and what the observer recorded."""
    a = next((x for x in store.associations() if x.connection == check.connection), None)
    findings = tuple(store.findings(a.id)) if a is not None else ()
    exchanges = store.exchanges(a.id) if a is not None else []
    services = tuple(_service_result(r, exchanges) for r in check.runs)
    association_ns = None
    if a is not None and a.rq_ts is not None:
        answer = a.ac_ts if a.ac_ts is not None else (a.reject.ts if a.reject else None)
        association_ns = None if answer is None else answer - a.rq_ts
    problems = _association_problems(opts, check, a, findings)
    problems += _latency_problems(opts, "connect", "connect", check.connect_ns)
    problems += _latency_problems(opts, "association", "association", association_ns)
    problems += _service_problems(opts, services)
    problems += _finding_problems(a, findings)
    problems += _scan_problems(scan, drift)
    problems.sort(key=lambda p: -p.health)
    health = max((p.health for p in problems), default=Health.OK)
    result = ProbeResult(
        options=opts,
        started_ts=started_ts,
        duration_ns=duration_ns,
        health=health,
        summary="",
        problems=tuple(problems),
        store=store,
        association=a,
        connect_ns=check.connect_ns,
        tls_ns=check.tls_ns,
        association_ns=association_ns,
        services=services,
        findings=findings,
        trouble=check.trouble,
        scan=scan,
        drift=drift,
        notes=check.warnings,
    )
    return replace(result, summary=summary_line(result))


def _service_text(s: ServiceResult) -> str:
    text = f"{s.name} {s.category if s.status is not None else 'no response'}"
    if s.matches is not None:
        text += f" ({'at least ' if s.cancelled else ''}{plural(s.matches, 'match', 'matches')})"
    if s.latency_ns is not None:
        text += f" {duration_text(s.latency_ns)}"
    return text


def summary_line(r: ProbeResult) -> str:
    """The plugin's first line: ``DICOM OK - target CALLING->CALLED: what happened``."""
    opts = r.options
    head = (
        f"DICOM {r.health.name} - {opts.target} "
        f"{printable(opts.calling_ae)}->{printable(opts.called_ae)}: "
    )
    if r.problems:
        first = r.problems[0].text
        more = len(r.problems) - 1
        return head + first + (f" (and {more} more)" if more else "")
    a = r.association
    parts = []
    if a is not None:
        accepted = sum(1 for c in a.contexts if c.accepted)
        parts.append(
            f"association accepted ({accepted}/{len(a.contexts)} contexts)"
            + (f" in {duration_text(r.association_ns)}" if r.association_ns is not None else "")
        )
    parts += [_service_text(s) for s in r.services]
    if r.scan is not None:
        by_class = r.scan.accepted_by_class()
        parts.append(
            f"scan: {plural(len(by_class), 'SOP class', 'SOP classes')} accepted "
            f"({len(r.scan.accepted)} of {len(r.scan.results)} pairs)"
        )
    if r.drift is not None:
        parts.append(
            "baseline unchanged"
            if not r.drift.gained
            else f"{plural(len(r.drift.gained), 'context')} accepted since the baseline"
        )
    return head + "; ".join(parts)
