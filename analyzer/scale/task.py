"""What a worker runs: looking at a capture file, and analysing one capture point.

Both are plain functions of picklable arguments returning picklable results, so that any
executor can run them: this process, a Dask worker on this machine or on another one.
Neither raises for bad input: an error is part of the result, so that one broken file never
costs the others their analysis.
"""

from __future__ import annotations

import pickle
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from analyzer.errors import DicomtapError
from analyzer.filter import Filter, select
from analyzer.findings import Diagnosis
from analyzer.pipeline import analyze_files
from analyzer.reports import jsonl
from analyzer.sources.pcapinfo import CaptureInfo, probe
from analyzer.store import Store
from dissectors.observer import DEFAULT_KEEP

CHUNK_RECORDS = 1000
"""Records per compressed chunk of a result."""

Record = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Settings:
    """How to analyse, as ``dicomtap analyze`` is told (``--port``, ``--keep``,
    ``--filter``)."""

    ports: tuple[int, ...] = ()
    keep: int = DEFAULT_KEEP
    generator: str = "dicomtap"
    filter: Filter | None = None
    """Associations to keep. A capture point's associations are its own, so filtering
    each capture point keeps what filtering the whole output keeps."""


@dataclass(frozen=True, slots=True)
class Probed:
    """A file looked at: what it says about itself, or why it cannot be read."""

    path: str
    info: CaptureInfo | None
    error: str | None = None
    not_a_capture: bool = False
    """The file could be read, and is no capture at all (empty, text, a script): in a
    folder of captures, a file to pass over rather than an error."""


@dataclass(frozen=True, slots=True)
class GroupResult:
    """One capture point's analysis: its JSON Lines records between the header and the
    summary (compressed, :meth:`records` gives them back), its summary, and what the merge
    needs to know; or the error that stopped it."""

    files: tuple[str, ...]
    chunks: tuple[bytes, ...] = ()
    summary: Record | None = None
    first_ts: int | None = None
    last_ts: int | None = None
    max_id: int = 0
    """The highest association id used (ids of later capture points come after it)."""
    error: str | None = None

    def records(self) -> Iterator[Record]:
        """The records, in order; fresh dicts, which the caller may change."""
        for chunk in self.chunks:
            yield from pickle.loads(zlib.decompress(chunk))


def probe_file(path: str) -> Probed:
    """:func:`analyzer.sources.pcapinfo.probe`, its error kept as a result."""
    try:
        return Probed(path, probe(path))
    except DicomtapError as exc:
        return Probed(path, None, str(exc), _readable(path))
    except OSError as exc:
        return Probed(path, None, f"{path}: cannot read ({exc.strerror or exc})")


def _readable(path: str) -> bool:
    """Whether ``path`` opens: then the reader refused its content, not its access."""
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False


def analyze_group(files: Sequence[str], settings: Settings) -> GroupResult:
    """Analyse the files of one capture point as one capture, as ``dicomtap analyze`` does.

    The store is dropped once its records are packed: the result holds them compressed
    (about a tenth of their JSON size), a chunk of :data:`CHUNK_RECORDS` at a time.
    """
    names = tuple(files)
    store = Store()
    try:
        analyze_files(names, store, ports=settings.ports, keep=settings.keep, rules=Diagnosis())
    except DicomtapError as exc:
        return GroupResult(names, error=str(exc))
    except Exception as exc:  # a defect must not cost the other capture points theirs
        return GroupResult(
            names,
            error=f"{', '.join(names)}: analysis failed ({type(exc).__name__}: {exc}); this "
            "is a defect of dicomtap: please report it with the capture",
        )
    ids = [a.id for a in store.associations()]  # ids of the associations filtered out too
    shown = store if settings.filter is None else select(store, settings.filter)
    chunks: list[bytes] = []
    pending: list[Record] = []
    summary: Record | None = None
    for record in jsonl.records(shown, settings.generator):
        kind = record["type"]
        if kind == "header":
            continue
        if kind == "summary":
            summary = record
            continue
        pending.append(record)
        if len(pending) >= CHUNK_RECORDS:
            chunks.append(_pack(pending))
            pending = []
    if pending:
        chunks.append(_pack(pending))
    return GroupResult(
        names,
        tuple(chunks),
        summary,
        store.source.first_ts,
        store.source.last_ts,
        max(ids, default=0),
    )


def _pack(records: list[Record]) -> bytes:
    return zlib.compress(pickle.dumps(records, pickle.HIGHEST_PROTOCOL), 1)
