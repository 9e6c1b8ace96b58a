"""CSV output: one row per DIMSE exchange (``analyze``), or one row per finding
(``diagnose``), each with its association's key fields.

Text from the wire is escaped as in the text report (:func:`analyzer.textsafe.printable`):
CSV has no escape of its own for control characters, and its files are read in terminals
and spreadsheets.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from typing import IO

from analyzer.model import Association, Outcome, Severity
from analyzer.names import uid_name
from analyzer.store import Store
from analyzer.textsafe import printable

from .common import iso_time, ms

_ASSOCIATION_COLUMNS = ["association", "client", "server", "calling_ae", "called_ae", "outcome"]

COLUMNS = [
    *_ASSOCIATION_COLUMNS,
    "index",
    "command",
    "message_id",
    "sop_class",
    "sop_class_name",
    "status",
    "status_category",
    "status_meaning",
    "error_comment",
    "latency_ms",
    "duration_ms",
    "responses",
    "request_dataset_bytes",
    "response_dataset_bytes",
    "start",
    "orphan_response",
]
"""The columns of :func:`write` (``dicomtap analyze --format csv``). An orphan response (its
request is not in the capture) is a row of its own, ``command`` ``C-STORE-RSP only``,
``orphan_response`` true: it is not an exchange."""

FINDING_COLUMNS = [
    *_ASSOCIATION_COLUMNS,
    "severity",
    "code",
    "title",
    "explanation",
    "hint",
    "frames",
    "time",
    "direction",
    "detail",
]
"""The columns of :func:`write_findings` (``dicomtap diagnose --format csv``)."""


def _association_cells(a: Association) -> list[object]:
    return [
        a.id,
        str(a.client),
        str(a.server),
        a.calling_ae_title or "",
        a.called_ae_title or "",
        str(a.outcome or ""),
    ]


def _writer(out: IO[str], columns: Sequence[str]) -> csv.DictWriter[str]:
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    return writer


def _row(columns: Sequence[str], cells: Sequence[object]) -> dict[str, object]:
    return {
        k: printable(v) if isinstance(v, str) else v for k, v in zip(columns, cells, strict=True)
    }


def write(store: Store, out: IO[str]) -> None:
    """Write one row per exchange, associations in start order."""
    writer = _writer(out, COLUMNS)
    for a in store.by_start():
        association = _association_cells(a)
        for e in store.iter_exchanges(a.id):
            cells = [
                *association,
                e.index,
                f"{e.service}-RSP only" if e.orphan else e.service,
                "" if e.message_id is None else e.message_id,
                e.sop_class or "",
                uid_name(e.sop_class) if e.sop_class else "",
                f"0x{e.status:04X}" if e.status is not None else "",
                e.status_category,
                e.status_meaning,
                e.error_comment or "",
                "" if e.latency_ns is None else ms(e.latency_ns),
                "" if e.duration_ns is None else ms(e.duration_ns),
                e.responses,
                e.request_dataset_bytes,
                e.response_dataset_bytes,
                iso_time(e.start_ts) or "",
                "true" if e.orphan else "false",
            ]
            writer.writerow(_row(COLUMNS, cells))


def write_findings(store: Store, out: IO[str], min_severity: Severity = Severity.INFO) -> None:
    """Write one row per finding of ``min_severity`` or worse, associations in start order
    (each association's findings in the order they were made)."""
    writer = _writer(out, FINDING_COLUMNS)
    for a in store.by_start():
        association = _association_cells(a)
        for f in store.findings(a.id):
            if f.severity < min_severity:
                continue
            ev = f.evidence
            cells = [
                *association,
                f.severity.label,
                f.code,
                f.title,
                f.explanation,
                f.hint,
                " ".join(str(n) for n in ev.frames),
                iso_time(ev.ts) or "",
                str(ev.direction or ""),
                ev.detail or "",
            ]
            writer.writerow(_row(FINDING_COLUMNS, cells))
    # Connections counted rather than listed: one row per server and finding code, the
    # association left empty and the count in ``detail``.
    for g in store.unlisted:
        for counted in g.findings.values():
            if counted.severity < min_severity:
                continue
            cells = [
                "",
                "",
                g.server,
                "",
                "",
                str(Outcome.NEVER_ASSOCIATED),
                counted.severity.label,
                counted.code,
                counted.title,
                f"{counted.count} more connection(s) without DICOM to {g.server} got this "
                "finding; they are counted, not listed one by one.",
                "",
                f"{g.first_frame} {g.last_frame}",
                iso_time(g.first_ts) or "",
                "",
                f"{counted.count} connection(s)",
            ]
            writer.writerow(_row(FINDING_COLUMNS, cells))
