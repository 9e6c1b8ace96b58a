"""Parquet output: one file per record type, the JSON Lines records as columns.

``DIR/association.parquet``, ``DIR/exchange.parquet``, ... hold the records of
:mod:`analyzer.reports.jsonl` of each type, one row each, with the same field names; nested
objects are Arrow structs, arrays are Arrow lists, times are UTC timestamps (microseconds)
instead of ISO 8601 text. Every table is written, empty when a run has no record of its
type, so a query never has to ask whether a file exists. DuckDB and pandas read them as
they are (``SELECT * FROM 'DIR/exchange.parquet'``).

Rows are written in batches as records arrive (:class:`ParquetWriter`): a run is never
held in memory. The files are written under temporary names and renamed into place when the
writer closes, so a failed run leaves no half-written table behind.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["SCHEMAS", "ParquetWriter", "write"]

BATCH_ROWS = 4096
"""Rows of one type buffered before they are written as a batch."""

_INT = pa.int64()
_STR = pa.string()
_BOOL = pa.bool_()
_MS = pa.float64()
_TIME = pa.timestamp("us", tz="UTC")


def _struct(**fields: pa.DataType) -> pa.StructType:
    return pa.struct(list(fields.items()))


_ENDPOINT = _struct(ip=_STR, port=_INT)
_ROLES = _struct(scu=_BOOL, scp=_BOOL)
_CONTEXT = _struct(
    id=_INT,
    abstract_syntax=_STR,
    abstract_syntax_name=_STR,
    transfer_syntaxes=pa.list_(_STR),
    result=_INT,
    result_meaning=_STR,
    accepted_transfer_syntax=_STR,
    roles=_struct(proposed=_ROLES, accepted=_ROLES),
)
_USER_INFO = _struct(
    max_pdu=_INT,
    implementation_class_uid=_STR,
    implementation_version_name=_STR,
    async_window=_struct(invoked=_INT, performed=_INT),
    role_selection=pa.list_(_struct(sop_class=_STR, scu=_BOOL, scp=_BOOL)),
    extended_negotiation=pa.list_(_struct(sop_class=_STR, info=_STR)),
    common_extended_negotiation=pa.list_(
        _struct(sop_class=_STR, service_class=_STR, related_general_sop_classes=pa.list_(_STR))
    ),
    user_identity=_struct(
        type=_INT,
        type_meaning=_STR,
        username=_STR,
        passcode_sent=_BOOL,
        response_requested=_BOOL,
    ),
    user_identity_response=_BOOL,
    unknown_items=pa.list_(_struct(type=_INT, data=_STR)),
)
_IMPLEMENTATION = _struct(class_uid=_STR, version_name=_STR)
_PDUS = _struct(count=_INT, bytes=_INT, largest_p_data=_INT)
_REFERENCE = _struct(association=_INT, exchange=_INT)

_EXCHANGE_FIELDS: list[tuple[str, pa.DataType]] = [
    ("type", _STR),
    ("association", _INT),
    ("index", _INT),
    ("command", _STR),
    ("from", _STR),
    ("message_id", _INT),
    ("sop_class", _STR),
    ("sop_class_name", _STR),
    ("sop_instance", _STR),
    ("status", _INT),
    ("status_hex", _STR),
    ("status_category", _STR),
    ("status_meaning", _STR),
    ("error_comment", _STR),
    ("latency_ms", _MS),
    ("duration_ms", _MS),
    ("responses", _INT),
    ("pending", _INT),
    ("cancelled", _BOOL),
    ("suboperations", _struct(remaining=_INT, completed=_INT, failed=_INT, warning=_INT)),
    ("move_destination", _STR),
    ("request_dataset_bytes", _INT),
    ("response_dataset_bytes", _INT),
    ("outstanding_before", _INT),
    ("start", _TIME),
    ("end", _TIME),
    ("frames", _struct(request=_INT, response=_INT)),
    # workflow links (JSON Lines schema 2)
    ("sub_associations", pa.list_(_INT)),
    ("sub_operation_exchanges", pa.list_(_INT)),
    ("transaction_uid", _STR),
    ("commitment_reports", pa.list_(_REFERENCE)),
    (
        "commitment",
        _struct(
            delivery=_STR,
            time_to_report_ms=_MS,
            references=_INT,
            reverse_attempts=pa.list_(_INT),
        ),
    ),
    ("commitment_request", _REFERENCE),
    (
        "failed_references",
        pa.list_(_struct(sop_class=_STR, sop_instance=_STR, reason=_INT, reason_meaning=_STR)),
    ),
]

_TCP_SIDE = _struct(
    segments=_INT,
    data_segments=_INT,
    retransmissions=_INT,
    retransmitted_bytes=_INT,
    retransmission_bursts=_INT,
    first_retransmission_frame=_INT,
    zero_windows=_INT,
    zero_window_episodes=_INT,
    zero_window_ms=_MS,
    longest_zero_window_ms=_MS,
    longest_zero_window_frame=_INT,
    keepalives=_INT,
    resets=_INT,
    rtt=_struct(samples=_INT, min_ms=_MS, mean_ms=_MS, max_ms=_MS),
)
_TCP = _struct(
    requestor=_TCP_SIDE,
    acceptor=_TCP_SIDE,
    handshake_rtt_ms=_MS,
    silences=_INT,
    longest_silence_ms=_MS,
    longest_silence_frame=_INT,
    reset=_struct(by=_STR, frame=_INT, after_silence_ms=_MS),
    unanswered_retransmissions=_struct(
        by=_STR, count=_INT, first_frame=_INT, last_frame=_INT, duration_ms=_MS
    ),
    third_party_resets=_INT,
)
"""The ``tcp`` object of an association (JSON Lines schema 4; ``third_party_resets``: 5)."""

SCHEMAS: dict[str, pa.Schema] = {
    "header": pa.schema(
        [
            ("type", _STR),
            ("schema_version", _INT),
            ("generator", _STR),
            ("sources", pa.list_(_STR)),
        ]
    ),
    "association": pa.schema(
        [
            ("type", _STR),
            ("id", _INT),
            ("client", _ENDPOINT),
            ("server", _ENDPOINT),
            ("calling_ae", _STR),
            ("called_ae", _STR),
            ("calling_ae_raw", _STR),
            ("called_ae_raw", _STR),
            ("start", _TIME),
            ("end", _TIME),
            ("duration_ms", _MS),
            ("frames", _struct(first=_INT, last=_INT)),
            ("outcome", _STR),
            ("outcome_state", _STR),
            ("ended_by", _STR),
            ("closed_by", _STR),
            (
                "reject",
                _struct(
                    result=_INT,
                    source=_INT,
                    reason=_INT,
                    result_meaning=_STR,
                    source_meaning=_STR,
                    reason_meaning=_STR,
                    frame=_INT,
                ),
            ),
            (
                "abort",
                _struct(
                    source=_INT,
                    reason=_INT,
                    by=_STR,
                    source_meaning=_STR,
                    reason_meaning=_STR,
                    frame=_INT,
                ),
            ),
            ("application_context", _STR),
            ("contexts", pa.list_(_CONTEXT)),
            ("max_pdu", _struct(requestor=_INT, acceptor=_INT)),
            ("implementation", _struct(requestor=_IMPLEMENTATION, acceptor=_IMPLEMENTATION)),
            ("user_information", _struct(requestor=_USER_INFO, acceptor=_USER_INFO)),
            ("negotiation_cut", _struct(requestor=_INT, acceptor=_INT)),
            ("pdus", _struct(requestor=_PDUS, acceptor=_PDUS)),
            ("exchanges", _INT),
            ("violations", _INT),
            ("violations_unreported", _INT),
            ("tcp", _TCP),
            ("gaps", _struct(count=_INT, bytes=_INT)),
            ("partial", _BOOL),
            ("handshake_seen", _BOOL),
            ("tls_client_hello", _BOOL),
            # workflow links (JSON Lines schema 2)
            ("orphan_responses", _INT),
            ("initiated_by", _struct(association=_INT, exchange=_INT, kind=_STR, how=_STR)),
        ]
    ),
    "exchange": pa.schema(_EXCHANGE_FIELDS),
    "orphan_response": pa.schema([*_EXCHANGE_FIELDS, ("orphan_reason", _STR)]),
    "violation": pa.schema(
        [
            ("type", _STR),
            ("association", _INT),
            ("kind", _STR),
            ("code", _STR),
            ("by", _STR),
            ("text", _STR),
            ("cell", _STR),
            ("action", _STR),
            ("frame", _INT),
            ("time", _TIME),
            ("offset", _INT),
        ]
    ),
    "gap": pa.schema(
        [
            ("type", _STR),
            ("association", _INT),
            ("direction", _STR),
            ("offset", _INT),
            ("size", _INT),
            ("frame", _INT),
            ("time", _TIME),
        ]
    ),
    "finding": pa.schema(
        [
            ("type", _STR),
            ("association", _INT),
            ("code", _STR),
            ("severity", _STR),
            ("title", _STR),
            ("explanation", _STR),
            ("hint", _STR),
            (
                "evidence",
                _struct(frames=pa.list_(_INT), time=_TIME, direction=_STR, detail=_STR),
            ),
        ]
    ),
    "link": pa.schema(
        [
            ("type", _STR),
            ("kind", _STR),
            ("association", _INT),
            ("exchange", _INT),
            ("to", _REFERENCE),
            ("how", _STR),
            ("reason", _STR),
            ("time", _TIME),
        ]
    ),
    "error": pa.schema([("type", _STR), ("sources", pa.list_(_STR)), ("message", _STR)]),
    "summary": pa.schema(
        [
            ("type", _STR),
            ("associations", _INT),
            ("exchanges", _INT),
            ("packets", _INT),
            ("tcp_segments", _INT),
            ("first_packet", _TIME),
            ("last_packet", _TIME),
            ("truncated", pa.list_(_STR)),
            ("warnings", pa.list_(_STR)),
            (
                "unlisted_connections",
                pa.list_(
                    _struct(
                        server=_ENDPOINT,
                        connections=_INT,
                        first=_TIME,
                        last=_TIME,
                        frames=_struct(first=_INT, last=_INT),
                        findings=pa.list_(
                            _struct(code=_STR, severity=_STR, title=_STR, count=_INT)
                        ),
                    )
                ),
            ),
        ]
    ),
}
"""The Arrow schema of each record type's table (the file is ``DIR/<type>.parquet``)."""

# --- times: ISO 8601 text in the records, timestamps in the tables --------------------------

Path = tuple[str, ...]
"""Field names from the top of a record; ``*`` steps into every item of a list."""

_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")
"""The time form Arrow parses (an expanded year, past 9999, is not)."""


def _as_text(t: pa.DataType) -> pa.DataType:
    """``t`` with every timestamp replaced by a string (what the records hold)."""
    if t == _TIME:
        return _STR
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(_as_text(f.type)) for f in t])
    if pa.types.is_list(t):
        return pa.list_(_as_text(t.value_type))
    return t


def _time_paths(t: pa.DataType, path: Path) -> Iterator[Path]:
    if t == _TIME:
        yield path
    elif pa.types.is_struct(t):
        for f in t:
            yield from _time_paths(f.type, (*path, f.name))
    elif pa.types.is_list(t):
        yield from _time_paths(t.value_type, (*path, "*"))


def _clear_times(node: Any, path: Path) -> None:
    """Set to null each time at ``path`` under ``node`` that is not in the form Arrow parses
    (an expanded year: the JSON Lines keep it, a timestamp column cannot)."""
    if not path:
        return
    key, rest = path[0], path[1:]
    if key == "*":
        if isinstance(node, list):
            for item in node:
                _clear_times(item, rest)
    elif isinstance(node, dict):
        if rest:
            _clear_times(node.get(key), rest)
        elif isinstance(node.get(key), str) and not _ISO.match(node[key]):
            node[key] = None


class _Table:
    """One record type's file: rows buffered, written a batch at a time."""

    def __init__(self, directory: str, kind: str, schema: pa.Schema, batch_rows: int) -> None:
        self.path = os.path.join(directory, f"{kind}.parquet")
        self.partial = os.path.join(directory, f".{kind}.parquet.partial")
        self.schema = schema
        self.text_schema = pa.schema([f.with_type(_as_text(f.type)) for f in schema])
        self.time_paths = [p for f in schema for p in _time_paths(f.type, (f.name,))]
        self.names = frozenset(schema.names)
        self.rows: list[dict[str, Any]] = []
        self.batch_rows = batch_rows
        self.writer = pq.ParquetWriter(self.partial, schema)

    def add(self, record: dict[str, Any]) -> None:
        self.rows.append(record)
        if len(self.rows) >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        batch = pa.RecordBatch.from_pylist(self.rows, schema=self.text_schema)
        try:
            typed = batch.cast(self.schema)
        except pa.ArrowInvalid:  # a time outside what a timestamp holds: that one is null
            for row in self.rows:
                for path in self.time_paths:
                    _clear_times(row, path)
            batch = pa.RecordBatch.from_pylist(self.rows, schema=self.text_schema)
            typed = batch.cast(self.schema)
        self.writer.write_batch(typed)
        self.rows.clear()


class ParquetWriter:
    """Writes records into ``directory`` (created if missing), one table per record type.

    Use as a context manager, or call :meth:`close` (which puts the tables in place) or
    :meth:`abort` (which removes them). :attr:`skipped` counts records whose type has no
    table, and :attr:`unknown_fields` names fields no column holds (neither should happen:
    :data:`SCHEMAS` follows the JSON Lines schema).
    """

    def __init__(self, directory: str | os.PathLike[str], batch_rows: int = BATCH_ROWS) -> None:
        self.directory = os.fspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.skipped: dict[str, int] = {}
        self.unknown_fields: set[str] = set()
        self._tables: dict[str, _Table] = {}
        try:
            for kind, schema in SCHEMAS.items():
                self._tables[kind] = _Table(self.directory, kind, schema, batch_rows)
        except BaseException:
            self.abort()
            raise

    def write(self, record: dict[str, Any]) -> None:
        """Add one record (a dict of :mod:`analyzer.reports.jsonl`) to its table."""
        kind = record.get("type")
        table = self._tables.get(kind) if isinstance(kind, str) else None
        if table is None:
            name = str(kind)
            self.skipped[name] = self.skipped.get(name, 0) + 1
            return
        if not table.names.issuperset(record):
            self.unknown_fields.update(f"{kind}.{k}" for k in record if k not in table.names)
        table.add(record)

    def close(self) -> None:
        """Write what is buffered and put every table in place."""
        for table in self._tables.values():
            table.flush()
            table.writer.close()
        for table in self._tables.values():
            os.replace(table.partial, table.path)
        self._tables.clear()

    def abort(self) -> None:
        """Remove the tables being written; nothing is put in place."""
        for table in self._tables.values():
            table.writer.close()
            if os.path.exists(table.partial):
                os.remove(table.partial)
        self._tables.clear()

    def __enter__(self) -> ParquetWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write(records: Iterable[dict[str, Any]], directory: str | os.PathLike[str]) -> ParquetWriter:
    """Write ``records`` into ``directory``; the closed writer tells what had no column."""
    with ParquetWriter(directory) as writer:
        for record in records:
            writer.write(record)
    return writer
