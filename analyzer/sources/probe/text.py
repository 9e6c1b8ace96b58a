"""The probe's text output: the plugin line (with performance data), then the details.

The association is described by :func:`analyzer.reports.text.association_block` and the
findings by :func:`analyzer.reports.diagnosis.finding_lines`: the words of ``analyze`` and
``diagnose``.
"""

from __future__ import annotations

import re
from typing import IO

from analyzer.model import Severity
from analyzer.names import uid_name, uid_short
from analyzer.reports.common import duration_text, iso_time, plural
from analyzer.reports.diagnosis import finding_lines
from analyzer.reports.text import association_block, table

from .options import Health
from .result import ProbeResult, ServiceResult

__all__ = ["perfdata", "service_row", "write"]


def _label(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _seconds(label: str, ns: int | None, r: ProbeResult) -> str | None:
    if ns is None:
        return None
    warn = "" if r.options.warn is None else f"{r.options.warn:g}"
    crit = "" if r.options.crit is None else f"{r.options.crit:g}"
    return f"{label}={ns / 1e9:.6f}s;{warn};{crit};0"


def perfdata(r: ProbeResult) -> str:
    """Performance data in the monitoring-plugin format (``label=value[unit];warn;crit;min``)."""
    items = [
        _seconds("connect", r.connect_ns, r),
        _seconds("tls", r.tls_ns, r),
        _seconds("association", r.association_ns, r),
        *(_seconds(_label(s.name), s.latency_ns, r) for s in r.services),
        f"total={r.duration_ns / 1e9:.6f}s;;;0",
    ]
    if r.association is not None and r.association.contexts:
        accepted = sum(1 for c in r.association.contexts if c.accepted)
        items.append(f"accepted_contexts={accepted};;;0;{len(r.association.contexts)}")
    if r.scan is not None:
        items.append(f"scan_accepted={len(r.scan.accepted)};;;0;{len(r.scan.results)}")
    if r.drift is not None:
        items.append(f"baseline_lost={len(r.drift.lost)};;1;0")
    return " ".join(i for i in items if i is not None)


def service_row(s: ServiceResult) -> list[str]:
    status = f"0x{s.status:04X} {s.meaning}" if s.status is not None else "no response"
    notes = []
    if s.matches is not None:
        notes.append(("at least " if s.cancelled else "") + plural(s.matches, "match", "matches"))
    if s.name == "commit" and s.report_status == 0:
        notes.append("committed (N-EVENT-REPORT)")
    if s.error:
        notes.append(s.error)
    return [s.name, uid_name(s.sop_class), status, duration_text(s.latency_ns), "; ".join(notes)]


def _timing(r: ProbeResult) -> str:
    parts = []
    if r.connect_ns is not None:
        parts.append(f"connect {duration_text(r.connect_ns)}")
    if r.tls_ns is not None:
        parts.append(f"TLS handshake {duration_text(r.tls_ns)}")
    if r.association_ns is not None:
        parts.append(f"association {duration_text(r.association_ns)}")
    parts.append(f"whole probe {duration_text(r.duration_ns)}")
    return ", ".join(parts)


def _scan_lines(r: ProbeResult) -> list[str]:
    scan = r.scan
    if scan is None:
        return []
    by_class = scan.accepted_by_class()
    proposed = {sop for sop, _ in scan.results}
    lines = [
        f"Capability scan: {len(scan.results)} contexts in "
        f"{plural(scan.associations, 'association')}, {duration_text(scan.elapsed_ns)}: "
        f"{plural(len(by_class), 'SOP class', 'SOP classes')} of {len(proposed)} accepted, "
        f"{len(scan.accepted)} (SOP class, transfer syntax) pairs"
    ]
    rows = [
        [uid_name(sop), ", ".join(uid_short(ts) for ts in syntaxes)]
        for sop, syntaxes in sorted(by_class.items(), key=lambda kv: uid_name(kv[0]))
    ]
    lines += table(rows, indent="  ")
    if scan.failed_associations:
        lines.append(
            f"  Not answered: {scan.failed_associations} of "
            f"{plural(scan.associations, 'association')} (their contexts are unknown)"
        )
    return lines


def _drift_lines(r: ProbeResult) -> list[str]:
    d = r.drift
    if d is None:
        return []
    base = d.baseline
    lines = [
        f"Baseline of {base.created or '?'} ({base.target} {base.called_ae}): {d.compared} "
        f"pairs compared, {len(d.lost)} no longer accepted, {len(d.gained)} newly accepted"
    ]
    lines += [f"  - {uid_name(s)}  {uid_short(t)}" for s, t in d.lost]
    lines += [f"  + {uid_name(s)}  {uid_short(t)}" for s, t in d.gained]
    return lines


def write(r: ProbeResult, out: IO[str]) -> None:
    """The plugin line, then what was measured, problems, association, services, findings,
    scan and baseline."""
    out.write(f"{r.summary} | {perfdata(r)}\n")
    lines = [f"Probe of {r.options.target} at {iso_time(r.started_ts)}: {_timing(r)}"]
    if r.problems:
        lines.append("Problems:")
        lines += [f"  {p.health.name:<8} {p.text}" for p in r.problems]
    for note in r.notes:
        lines.append(f"Note: {note}")
    if r.association is not None:
        lines.append("")
        lines += association_block(r.store, r.association)
    if r.services:
        lines.append("")
        lines.append("Services:")
        lines += table([service_row(s) for s in r.services], indent="  ")
    shown = [f for f in r.findings if f.severity >= Severity.WARNING]
    if shown and r.health != Health.OK:
        lines.append("")
        lines.append("Diagnosis:")
        for f in shown:
            lines += finding_lines(f)
    scan = _scan_lines(r)
    if scan:
        lines.append("")
        lines += scan
    drift = _drift_lines(r)
    if drift:
        lines.append("")
        lines += drift
    out.write("\n".join(lines) + "\n")
