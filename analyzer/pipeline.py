"""Glue: a source of TCP segments → the flow table → the model builder → the store.

:class:`Pipeline` is the one path every capture source takes (a file, several files, a live
capture); :func:`analyze_files` drives it from capture files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

from dissectors import DissectorEvent, FlowTable, Segment
from dissectors.observer import DEFAULT_KEEP, PayloadTap

from .builder import ModelBuilder, Rules
from .sources.pcap import CaptureFile, CaptureStats, Shard, in_time_order
from .store import Store

Progress = Callable[[int, int], None]
"""Called with (bytes read so far, total bytes) while reading."""

_PROGRESS_EVERY = 1 << 14  # segments between progress callbacks


class Pipeline:
    """Reassembles, dissects and models the segments it is fed, into ``store``.

    ``ports`` are ports to treat as DICOM (see ``dicomtap analyze --port``); ``rules`` the
    findings rules (e.g. :class:`analyzer.findings.Diagnosis`); ``keep`` the bytes kept from
    the start of each data set; ``payload`` a tap on the framed bytes (see
    :mod:`dissectors.observer`). Feed segments in capture order, then call :meth:`finish`.
    """

    def __init__(
        self,
        store: Store,
        *,
        ports: Iterable[int] = (),
        rules: Rules | None = None,
        keep: int = DEFAULT_KEEP,
        payload: PayloadTap | None = None,
    ) -> None:
        ports = frozenset(ports)
        self.store = store
        self._events: list[DissectorEvent] = []
        self._builder = ModelBuilder(store, dicom_ports=ports, rules=rules)
        self._table = FlowTable(self._events.append, server_ports=ports, keep=keep, payload=payload)
        self.segments = 0

    @property
    def flows(self) -> FlowTable:
        """The flow table the segments go through (a tool that places segments in their
        streams reads it)."""
        return self._table

    def feed(self, seg: Segment) -> None:
        """One TCP segment, in capture order."""
        self._table.feed(seg)
        self.segments += 1
        events = self._events
        if events:
            handle = self._builder.handle
            for event in events:
                handle(event)
            events.clear()

    def feed_all(self, segments: Iterable[Segment], frame_base: int = 0) -> None:
        """Every segment of an iterable; ``frame_base`` is added to their frame numbers."""
        # :meth:`feed`, inline: this loop runs once per packet of a capture.
        feed = self._table.feed
        events = self._events
        handle = self._builder.handle
        count = 0
        try:
            for seg in segments:
                if frame_base:
                    seg = seg._replace(frame=(seg.frame or 0) + frame_base)
                feed(seg)
                count += 1
                if events:
                    for event in events:
                        handle(event)
                    events.clear()
        finally:
            self.segments += count

    @property
    def open_connections(self) -> int:
        return self._table.open_connections

    def finish(self) -> None:
        """The source ended: close what is open, run the capture-wide rules, mark the store done."""
        self._table.finish()
        for event in self._events:
            self._builder.handle(event)
        self._events.clear()
        self._builder.finish()
        self.store.finish()


class Sink(Protocol):
    """Where :func:`read_files` sends the segments: a :class:`Pipeline`, or one job's
    share of the connections (:mod:`analyzer.scale.jobs`)."""

    def feed_all(self, segments: Iterable[Segment], frame_base: int = 0) -> None: ...

    def finish(self) -> None: ...


def analyze_files(
    paths: Sequence[str | os.PathLike[str]],
    store: Store,
    *,
    ports: Iterable[int] = (),
    rules: Rules | None = None,
    keep: int = DEFAULT_KEEP,
    progress: Progress | None = None,
    payload: PayloadTap | None = None,
) -> None:
    """Read capture files, as one capture, into ``store`` (see :func:`read_files`)."""
    pipeline = Pipeline(store, ports=ports, rules=rules, keep=keep, payload=payload)
    read_files(paths, store, pipeline, progress)


def read_files(
    paths: Sequence[str | os.PathLike[str]],
    store: Store,
    sink: Sink,
    progress: Progress | None = None,
    shard: Shard | None = None,
) -> None:
    """Read capture files, as one capture: their segments to ``sink``, what is known of
    the files to ``store.source``.

    Several files are read as consecutive parts of one capture (a ring buffer, a capture
    split by size), so a connection may continue from one file into the next; they are read
    in the order of their first packets (a note in ``store.source.warnings`` says so when
    that is not the order given), and frame numbers continue across files. A truncated file
    is read up to its cut and noted in ``store.source.truncated``. Raises
    :class:`~analyzer.errors.InputError` for a file that cannot be read as a capture
    (nothing is analysed then). With ``shard``, only its share of the connections goes to
    ``sink`` (see :meth:`CaptureFile.segments`).
    """
    captures = [CaptureFile(p) for p in paths]  # open all first: fail before any output
    captures, reordered = in_time_order(captures)
    source = store.source
    source.files = [c.path for c in captures]
    if reordered:
        source.warnings.append(reordered)
    total = sum(c.stats.file_size or 0 for c in captures)
    source.total_bytes = total or None
    done_bytes = 0
    frame_base = 0
    try:
        for capture in captures:
            stats = capture.stats
            segments: Iterable[Segment] = capture.segments(shard)
            if progress is not None:
                segments = _reporting(segments, progress, done_bytes, stats, total)
            source.frame_bases.append(frame_base)
            sink.feed_all(segments, frame_base)
            frame_base += stats.packets
            done_bytes += stats.bytes_read
            source.packets += stats.packets
            source.tcp_segments += stats.tcp_segments
            source.bytes_read += stats.bytes_read
            if stats.first_ts is not None and source.first_ts is None:
                source.first_ts = stats.first_ts
            if stats.last_ts is not None:
                source.last_ts = stats.last_ts
            if stats.truncated:
                source.truncated.append(f"{capture.path}: {stats.truncation}")
            source.warnings.extend(f"{capture.path}: {w}" for w in stats.warnings())
            for linktype, count in stats.unsupported_linktypes.items():
                skipped = source.unsupported_link_types
                skipped[linktype] = skipped.get(linktype, 0) + count
            capture.close()
            if progress is not None:
                progress(done_bytes, total)
        sink.finish()
    finally:
        for capture in captures:
            capture.close()


def _reporting(
    segments: Iterable[Segment], progress: Progress, done: int, stats: CaptureStats, total: int
) -> Iterator[Segment]:
    """``segments``, calling ``progress`` every so often after one has been fed."""
    for count, seg in enumerate(segments, 1):
        yield seg
        if count % _PROGRESS_EVERY == 0:
            progress(done + stats.bytes_read, total)
