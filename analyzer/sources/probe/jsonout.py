"""The probe's JSON document (``--format json``): one object per probe, on one line.

The association, its exchanges and findings are the records of the JSON Lines schema
(analyzer/reports/SCHEMA.md) that ``analyze --format json`` writes.
"""

from __future__ import annotations

from typing import Any

from analyzer.names import uid_name
from analyzer.reports.common import iso_time, ms
from analyzer.reports.jsonl import association_record, exchange_record, finding_record

from .result import ProbeResult

__all__ = ["PROBE_SCHEMA", "document"]

PROBE_SCHEMA = "dicomtap-probe/1"


def document(r: ProbeResult, changes: list[str] | None = None) -> dict[str, Any]:
    """The result as a JSON-ready dict (``changes``: what ``--watch`` saw change)."""
    opts = r.options
    a = r.association
    doc: dict[str, Any] = {
        "schema": PROBE_SCHEMA,
        "summary": r.summary,
        "status": r.health.name,
        "exit_status": int(r.health),
        "target": opts.target,
        "calling_ae": opts.calling_ae,
        "called_ae": opts.called_ae,
        "tls": opts.tls is not None,
        "start": iso_time(r.started_ts),
        "timing_ms": {
            "connect": ms(r.connect_ns),
            "tls_handshake": ms(r.tls_ns),
            "association": ms(r.association_ns),
            "total": ms(r.duration_ns),
        },
        "problems": [{"status": p.health.name, "key": p.key, "text": p.text} for p in r.problems],
        "transport": (
            {"cause": str(r.trouble.cause), "text": r.trouble.text} if r.trouble else None
        ),
        "services": [
            {
                "service": s.name,
                "sop_class": s.sop_class,
                "sop_class_name": uid_name(s.sop_class),
                "status": s.status,
                "status_hex": f"0x{s.status:04X}" if s.status is not None else None,
                "status_category": s.category,
                "status_meaning": s.meaning,
                "latency_ms": ms(s.latency_ns),
                "matches": s.matches,
                "cancelled": s.cancelled,
                "committed": (s.report_status == 0) if s.name == "commit" else None,
                "error": s.error,
            }
            for s in r.services
        ],
        "association": association_record(a) if a is not None else None,
        "exchanges": [exchange_record(e) for e in r.store.exchanges(a.id)] if a else [],
        "findings": [finding_record(f) for f in r.findings],
        "notes": list(r.notes),
    }
    if r.scan is not None:
        doc["scan"] = {
            "associations": r.scan.associations,
            "unanswered_associations": r.scan.failed_associations,
            "contexts": len(r.scan.results),
            "elapsed_ms": ms(r.scan.elapsed_ns),
            "accepted": r.scan.accepted_by_class(),
        }
    if r.drift is not None:
        doc["baseline"] = {
            "created": r.drift.baseline.created,
            "compared": r.drift.compared,
            "lost": [list(p) for p in r.drift.lost],
            "gained": [list(p) for p in r.drift.gained],
        }
    if changes is not None:
        doc["changes"] = changes
    return doc
