"""Records analysed apart → the records of one output, as one process writes them.

Each capture point is analysed by its own pipeline, whose association ids start at 1. The
output is what one process gives when it analyses the capture points one after the other:
one ``header`` (every file, in the order read), then each capture point's records in turn,
with association ids moved past the highest id of the capture points before it, then one
``summary`` adding theirs up.

Moving ids means changing every field that holds one. They are listed in one table,
:data:`ASSOCIATION_REFERENCES`, by record type; a record of a type the table does not
name is an error, never passed through with stale ids. :func:`renumber` applies any
mapping of ids. (``analyze --jobs``, one capture's connections shared out among processes,
merges their dissector events instead, before the model is built: see
:mod:`analyzer.scale.jobs`.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from analyzer.reports import jsonl
from analyzer.reports.common import iso_time
from analyzer.store import Store

from .task import GroupResult, Record

FieldPath = tuple[str, ...]
"""Field names from the top of a record; ``*`` steps into every item of a list."""

_EXCHANGE: tuple[FieldPath, ...] = (
    ("association",),
    ("sub_associations", "*"),
    ("commitment_reports", "*", "association"),
    ("commitment_request", "association"),
    ("commitment", "reverse_attempts", "*"),
)

ASSOCIATION_REFERENCES: Mapping[str, tuple[FieldPath, ...]] = {
    "association": (("id",), ("initiated_by", "association")),
    "exchange": _EXCHANGE,
    "orphan_response": _EXCHANGE,
    "violation": (("association",),),
    "gap": (("association",),),
    "finding": (("association",),),
    "link": (("association",), ("to", "association")),
    "error": (),
}
"""Every field that holds an association id, by record type (``header`` and ``summary``
hold none). A field missing from a record, or null, is left alone; so is id 0, which
findings about the capture as a whole carry."""

SUMMARY_RULES: Mapping[str, Callable[[Any, Any], Any]] = {
    "type": lambda a, b: a,
    "associations": lambda a, b: a + b,
    "exchanges": lambda a, b: a + b,
    "packets": lambda a, b: a + b,
    "tcp_segments": lambda a, b: a + b,
    "first_packet": lambda a, b: a,  # from the times in ns, see Merge.summary
    "last_packet": lambda a, b: a,
    "truncated": lambda a, b: [*a, *b],
    "warnings": lambda a, b: [*a, *b],
    "unlisted_connections": lambda a, b: [*a, *b],  # each capture point's servers apart
}
"""How each ``summary`` field of the capture points adds up into the output's."""


class MergeError(Exception):
    """A record this module does not know how to merge (a defect: extend the tables)."""


def renumber(record: Record, new_id: Callable[[int], int]) -> None:
    """Replace, in place, every association id ``record`` holds by ``new_id(id)``."""
    kind = record.get("type")
    paths = ASSOCIATION_REFERENCES.get(kind) if isinstance(kind, str) else None
    if paths is None:
        raise MergeError(f"record type {kind!r} is not in ASSOCIATION_REFERENCES")
    for path in paths:
        _renumber(record, path, new_id)


def _renumber(node: Any, path: FieldPath, new_id: Callable[[int], int]) -> None:
    key, rest = path[0], path[1:]
    if key == "*":
        if not isinstance(node, list):
            return
        if rest:
            for item in node:
                _renumber(item, rest, new_id)
        else:
            node[:] = [new_id(i) if isinstance(i, int) and i else i for i in node]
        return
    if not isinstance(node, dict) or key not in node:
        return
    if rest:
        _renumber(node[key], rest, new_id)
    elif isinstance(node[key], int) and node[key]:
        node[key] = new_id(node[key])


def error_record(sources: Sequence[str], message: str) -> Record:
    """An ``error`` record: files that could not be analysed, and why."""
    return {"type": "error", "sources": list(sources), "message": message}


class Merge:
    """Concatenates capture points' results into one output's records.

    ``sources`` are the files of every capture point, in output order (the header's).
    Call :meth:`header`, then :meth:`add` for each result in order, then :meth:`summary`.
    """

    def __init__(self, generator: str, sources: Sequence[str]) -> None:
        self.generator = generator
        self.sources = list(sources)
        self.errors: list[Record] = []
        self._offset = 0
        self._summary = jsonl.summary_record(Store())
        self._first_ts: int | None = None
        self._last_ts: int | None = None

    def header(self) -> Record:
        store = Store()
        store.source.files = list(self.sources)
        return jsonl.header_record(store, self.generator)

    def error(self, sources: Sequence[str], message: str) -> Record:
        record = error_record(sources, message)
        self.errors.append(record)
        return record

    def add(self, result: GroupResult) -> Iterator[Record]:
        """One capture point's records, ids moved past those of the ones before it."""
        if result.error is not None:
            yield self.error(result.files, result.error)
            return
        offset = self._offset

        def moved(i: int) -> int:
            return i + offset

        for record in result.records():
            renumber(record, moved)
            yield record
        self._offset += result.max_id
        if result.summary is not None:
            self._fold(result.summary)
        if result.first_ts is not None:
            ts = self._first_ts
            self._first_ts = result.first_ts if ts is None else min(ts, result.first_ts)
        if result.last_ts is not None:
            ts = self._last_ts
            self._last_ts = result.last_ts if ts is None else max(ts, result.last_ts)

    def _fold(self, summary: Record) -> None:
        merged = self._summary
        for key, value in summary.items():
            rule = SUMMARY_RULES.get(key)
            if rule is None:
                raise MergeError(f"summary field {key!r} is not in SUMMARY_RULES")
            merged[key] = rule(merged[key], value) if key in merged else value

    def summary(self) -> Record:
        """The ``summary`` record of everything added."""
        merged = dict(self._summary)
        merged["first_packet"] = iso_time(self._first_ts)
        merged["last_packet"] = iso_time(self._last_ts)
        return merged
