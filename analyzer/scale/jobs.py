"""``dicomtap analyze --jobs N``: one capture's TCP connections shared out among processes.

Every job reads the whole capture (the same files, in the same order); each connection
belongs to one job (:func:`~analyzer.sources.pcap.shard_of`, the same for both directions),
which reassembles and dissects it with a flow table of its own. A job decodes only the
packets of its own connections: the usual frame is placed from a few bytes at fixed offsets
and skipped undecoded when it is another job's (:class:`~analyzer.sources.pcap.Shard`).
What a job sends back is the dissectors' events, each tagged with the frame number of the
segment that caused it, and a note of each connection it opened, pickled in batches
(:mod:`analyzer.scale.pickling`). This process merges the jobs' streams in frame order,
numbers the connections in the order they opened (as one flow table numbers them) and feeds
the events to the one model builder: the builder sees the events one process would have
given it, in the same order, so the store, and every output made from it (association ids,
links between associations, findings, any format, ``--filter``, ``--redact``), is exactly
one process's.

The merge is of events, not of records: links and findings that span connections (a C-MOVE
and the association that carried its sub-operations, a storage commitment report on a
reverse association) are made once, by the builder, whichever jobs their connections went
to. What the jobs do in parallel is the decoding, the reassembly and the dissection, the
bulk of the work; reading the packet records is done by every job, and the model, the
findings and the output by this process. One connection is never shared out: a capture of
one long association (a single C-STORE run) is analysed by one job, the others idle.

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
from multiprocessing.connection import Connection
from operator import itemgetter
from typing import Any

from analyzer.builder import ModelBuilder, Rules
from analyzer.errors import DicomtapError, InputError
from analyzer.pipeline import Progress, read_files
from analyzer.sources.pcap import Shard
from analyzer.store import SourceInfo, Store
from dissectors import DimseMessageObserved, DissectorEvent, FlowTable, Segment
from dissectors.observer import DEFAULT_KEEP

from . import pickling

BATCH = 4096
"""Items a job sends at a time."""

# Not sent: the model builder passes over them (messages reach the model in their
# exchange), and they are a sixth of the events. The tests compare the outputs.
_UNUSED = DimseMessageObserved

_set = object.__setattr__

_OPENED = 0
_EVENT = 1

Item = tuple[int, int, int, Any]
"""(frame number, job, :data:`_OPENED` or :data:`_EVENT`, connection number or event)."""


class _Share:
    """One job's share of a capture: a :class:`~analyzer.pipeline.Sink` that reassembles
    and dissects the connections of ``shard`` and sends their events down ``out``."""

    def __init__(self, shard: Shard, out: Connection, *, ports: Iterable[int], keep: int) -> None:
        self.shard = shard
        self._out = out
        self._events: list[DissectorEvent] = []
        self._table = FlowTable(self._events.append, server_ports=frozenset(ports), keep=keep)
        self._items: list[Item] = []
        self._last: tuple[int, int] | None = None  # (ts, frame) of the capture's last segment

    def feed_all(self, segments: Iterable[Segment], frame_base: int = 0) -> None:
        job, table, events, items = self.shard.index, self._table, self._events, self._items
        seg: Segment | None = None
        for seg in segments:
            # Frame numbers place the segments of every job in capture order: a frame
            # holds one segment at most.
            number = (seg.frame or 0) + frame_base
            if frame_base:
                seg = seg._replace(frame=number)
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
        # The capture's last segment, whichever job it belongs to.
        last = None if seg is None else (seg.ts, seg.frame or 0)
        other = self.shard.last
        if other is not None and (last is None or other[1] + frame_base > last[1]):
            last = (other[0], other[1] + frame_base)
        if last is not None:
            self._last = last

    def finish(self) -> None:
        """Flush, then end the connections still open, as at the end of the capture."""
        self._send()
        if self._last is not None:
            self._table.last_ts, self._table.last_frame = self._last
        self._table.finish()
        self.post(("finish", self._events))
        self._events.clear()

    def progress(self, done: int, total: int) -> None:
        self.post(("progress", done, total))

    def post(self, message: tuple[Any, ...]) -> None:
        """Send ``message`` to the merging process (pickled at once)."""
        self._out.send_bytes(pickling.dumps(message))

    def _send(self) -> None:
        if self._items:
            self.post(("items", self._items))
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
    pickling.register("dissectors")
    shard = Shard(job, jobs)
    share = _Share(shard, out, ports=ports, keep=keep)
    store = Store()
    try:
        read_files(paths, store, share, share.progress if progress else None, shard)
    except DicomtapError as exc:
        share.post(("error", str(exc)))
    except Exception as exc:
        share.post(("error", f"analysis failed ({type(exc).__name__}: {exc}); this is a defect"))
    else:
        share.post(("done", store.source if job == 0 else None))
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
            message = pickling.loads(self.pipe.recv_bytes())
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
        # The event was unpickled here, and nothing else holds it: numbered in place, at a
        # fraction of the cost of dataclasses.replace.
        _set(event, "connection", numbers[job, event.connection])
        return event

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
