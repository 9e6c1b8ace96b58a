"""``dicomtap analyze --jobs N``: one capture's TCP connections shared out among processes.

Every job reads the whole capture (the same files, in the same order) and numbers its TCP
segments; each connection belongs to one job (:func:`shard_of`, the same for both
directions), which reassembles and dissects it with a flow table of its own. What a job
sends back is the dissectors' events, each tagged with the number of the segment that
caused it, and a note of each connection it opened. This process merges the jobs' streams
in segment order, numbers the connections in the order they opened (as one flow table
numbers them) and feeds the events to the one model builder: the builder sees the events
one process would have given it, in the same order, so the store, and every output made
from it (association ids, links between associations, findings, any format, ``--filter``,
``--redact``), is exactly one process's.

The merge is of events, not of records: links and findings that span connections (a C-MOVE
and the association that carried its sub-operations, a storage commitment report on a
reverse association) are made once, by the builder, whichever jobs their connections went
to. What the jobs do in parallel is the reassembly and the dissection, the bulk of the work;
reading the packets is done by every job.

Differences can remain where a flow table acts across connections, since a job's table
sees only its share: it remembers the last 4096 closed connections (so that a late packet
does not open a new one), a job's further back; it releases the connections idle for long
(an hour, or 180 s without data) when it checks, every 10 s of capture time, at a segment of
its own, so a job may release one later than one process would; and it holds at most
20,000 connections at once, a job that many of its share.
"""

from __future__ import annotations

import heapq
import multiprocessing
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from multiprocessing.connection import Connection
from operator import itemgetter
from typing import Any

from analyzer.builder import ModelBuilder, Rules
from analyzer.errors import DicomtapError, InputError
from analyzer.pipeline import Progress, read_files
from analyzer.store import SourceInfo, Store
from dissectors import DimseMessageObserved, DissectorEvent, FlowTable, Segment
from dissectors.observer import DEFAULT_KEEP

BATCH = 4096
"""Items a job sends at a time."""

# Not sent: the model builder passes over them (messages reach the model in their
# exchange), and they are a sixth of the events. The tests compare the outputs.
_UNUSED = DimseMessageObserved

_OPENED = 0
_EVENT = 1

Item = tuple[int, int, int, Any]
"""(segment number, job, :data:`_OPENED` or :data:`_EVENT`, connection number or event)."""


def shard_of(seg: Segment, jobs: int) -> int:
    """The job of ``seg``'s connection: the same for both directions."""
    return (seg.sport + seg.dport + seg.src[-1] + seg.dst[-1]) % jobs


class _Share:
    """One job's share of a capture: a :class:`~analyzer.pipeline.Sink` that reassembles
    and dissects the connections of job ``job`` and sends their events down ``out``."""

    def __init__(
        self, job: int, jobs: int, out: Connection, *, ports: Iterable[int], keep: int
    ) -> None:
        self.job = job
        self.jobs = jobs
        self._out = out
        self._events: list[DissectorEvent] = []
        self._table = FlowTable(self._events.append, server_ports=frozenset(ports), keep=keep)
        self._items: list[Item] = []
        self._number = 0
        self._last: Segment | None = None

    def feed_all(self, segments: Iterable[Segment], frame_base: int = 0) -> None:
        job, jobs, table, events, items = (
            self.job,
            self.jobs,
            self._table,
            self._events,
            self._items,
        )
        number = self._number
        seg: Segment | None = None
        for seg in segments:
            number += 1
            if shard_of(seg, jobs) != job:
                continue
            if frame_base:
                seg = seg._replace(frame=(seg.frame or 0) + frame_base)
            opened = table.connections_opened
            table.feed(seg)
            if table.connections_opened != opened:
                items.append((number, job, _OPENED, table.connections_opened))
            if events:
                for event in events:
                    if type(event) is not _UNUSED:
                        items.append((number, job, _EVENT, event))
                events.clear()
                if len(items) >= BATCH:
                    self._send()
        if seg is not None:  # the capture's last segment, whichever job it belongs to
            self._last = seg._replace(frame=(seg.frame or 0) + frame_base)
        self._number = number

    def finish(self) -> None:
        """Flush, then end the connections still open, as at the end of the capture."""
        self._send()
        if self._last is not None:
            self._table.last_ts = self._last.ts
            self._table.last_frame = self._last.frame
        self._table.finish()
        self._out.send(("finish", self._events[:]))
        self._events.clear()

    def progress(self, done: int, total: int) -> None:
        self._out.send(("progress", done, total))

    def _send(self) -> None:
        if self._items:
            self._out.send(("items", self._items))  # pickled here: the list can be reused
            self._items.clear()


def _job(
    job: int,
    jobs: int,
    paths: Sequence[str],
    ports: tuple[int, ...],
    keep: int,
    progress: bool,
    out: Connection,
) -> None:
    """A job's process: its share, then ``("done", source)`` or ``("error", message)``."""
    share = _Share(job, jobs, out, ports=ports, keep=keep)
    store = Store()
    try:
        read_files(paths, store, share, share.progress if progress else None)
    except DicomtapError as exc:
        out.send(("error", str(exc)))
    except Exception as exc:
        out.send(("error", f"analysis failed ({type(exc).__name__}: {exc}); this is a defect"))
    else:
        out.send(("done", store.source if job == 0 else None))
    finally:
        out.close()


class _Stream:
    """What one job sends: its items in order, then its closing events."""

    def __init__(self, pipe: Connection, progress: Progress | None) -> None:
        self.pipe = pipe
        self.progress = progress
        self.finishing: list[DissectorEvent] = []
        self.source: SourceInfo | None = None

    def items(self) -> Iterator[Item]:
        while True:
            message = self._receive()
            match message[0]:
                case "items":
                    yield from message[1]
                case "progress":
                    if self.progress is not None:
                        self.progress(message[1], message[2])
                case "finish":
                    self.finishing = message[1]
                    return

    def end(self) -> None:
        """Wait for the job's last word: its source information, or its error."""
        message = self._receive()
        if message[0] == "done":
            self.source = message[1]

    def _receive(self) -> Any:
        try:
            message = self.pipe.recv()
        except EOFError:
            raise DicomtapError("a job of the analysis stopped before its end") from None
        if message[0] == "error":
            raise InputError(message[1])
        return message


def analyze_jobs(
    paths: Sequence[str],
    store: Store,
    *,
    jobs: int,
    ports: Iterable[int] = (),
    rules: Rules | None = None,
    keep: int = DEFAULT_KEEP,
    progress: Progress | None = None,
) -> None:
    """:func:`analyzer.pipeline.analyze_files` with the connections shared out among
    ``jobs`` processes: the same store."""
    ports = tuple(ports)
    # Forked jobs start at once, with what this process has imported.
    context = (
        multiprocessing.get_context("fork")
        if "fork" in multiprocessing.get_all_start_methods()
        else multiprocessing.get_context("spawn")
    )
    processes = []
    streams = []
    try:
        for job in range(jobs):
            receive, send = context.Pipe(duplex=False)
            process = context.Process(
                target=_job,
                args=(job, jobs, list(paths), ports, keep, progress is not None and job == 0, send),
                daemon=True,
            )
            process.start()
            send.close()
            processes.append(process)
            streams.append(_Stream(receive, progress))
        _build(streams, store, ModelBuilder(store, dicom_ports=ports, rules=rules))
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
            process.join()


def _build(streams: list[_Stream], store: Store, builder: ModelBuilder) -> None:
    numbers: dict[tuple[int, int], int] = {}  # (job, its connection number) → the capture's
    handle = builder.handle

    def renamed(job: int, event: DissectorEvent) -> DissectorEvent:
        return replace(event, connection=numbers[job, event.connection])

    merged = heapq.merge(*(s.items() for s in streams), key=itemgetter(0))
    for _, job, kind, what in merged:
        if kind == _OPENED:
            numbers[job, what] = len(numbers) + 1
        else:
            handle(renamed(job, what))
    # The connections still open end in the order they opened, as a flow table ends them.
    closing: Iterable[tuple[int, DissectorEvent]] = heapq.merge(
        *(
            [(numbers[job, e.connection], renamed(job, e)) for e in s.finishing]
            for job, s in enumerate(streams)
        ),
        key=itemgetter(0),
    )
    for _, event in closing:
        handle(event)
    for s in streams:
        s.end()
    source = streams[0].source
    if source is not None:
        store.source = source
    builder.finish()
    store.finish()
