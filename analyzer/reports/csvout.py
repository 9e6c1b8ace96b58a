"""CSV output: one row per DIMSE exchange, with its association's key fields."""

from __future__ import annotations

import csv
from typing import IO

from analyzer.names import uid_name
from analyzer.store import Store

from .common import in_start_order, iso_time, ms

COLUMNS = [
    "association",
    "client",
    "server",
    "calling_ae",
    "called_ae",
    "outcome",
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
]


def write(store: Store, out: IO[str]) -> None:
    """Write one row per exchange, associations in start order."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for a in in_start_order(store):
        for e in store.exchanges(a.id):
            writer.writerow(
                [
                    a.id,
                    str(a.client),
                    str(a.server),
                    a.calling_ae_title or "",
                    a.called_ae_title or "",
                    str(a.outcome or ""),
                    e.index,
                    e.service,
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
                ]
            )
