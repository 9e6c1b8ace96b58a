"""Glue: a capture source → the flow table → the model builder → the store."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence

from dissectors import DissectorEvent, FlowTable
from dissectors.observer import DEFAULT_KEEP

from .builder import ModelBuilder, Rules
from .sources.pcap import CaptureFile
from .store import Store

Progress = Callable[[int, int], None]
"""Called with (bytes read so far, total bytes) while reading."""

_PROGRESS_EVERY = 1 << 14  # segments between progress callbacks


def analyze_files(
    paths: Sequence[str | os.PathLike[str]],
    store: Store,
    *,
    ports: Iterable[int] = (),
    rules: Rules | None = None,
    keep: int = DEFAULT_KEEP,
    progress: Progress | None = None,
) -> None:
    """Read capture files in order, as one capture, into ``store``.

    Several files are read as consecutive parts of one capture (a ring buffer, a capture
    split by size), so a connection may continue from one file into the next; frame numbers
    continue across files. A truncated file is read up to its cut and noted in
    ``store.source.truncated``. Raises :class:`~analyzer.errors.InputError` for a file
    that cannot be read as a capture (nothing is analysed then).
    """
    ports = frozenset(ports)
    captures = [CaptureFile(p) for p in paths]  # open all first: fail before any output
    builder = ModelBuilder(store, dicom_ports=ports, rules=rules)
    events: list[DissectorEvent] = []
    table = FlowTable(events.append, server_ports=ports, keep=keep)
    source = store.source
    source.files = [str(p) for p in paths]
    total = sum(c.stats.file_size or 0 for c in captures)
    source.total_bytes = total or None
    done_bytes = 0
    frame_base = 0
    handle = builder.handle
    try:
        for capture in captures:
            for count, seg in enumerate(capture.segments(), 1):
                if frame_base:
                    seg = seg._replace(frame=(seg.frame or 0) + frame_base)
                table.feed(seg)
                if events:
                    for event in events:
                        handle(event)
                    events.clear()
                if progress is not None and count % _PROGRESS_EVERY == 0:
                    progress(done_bytes + capture.stats.bytes_read, total)
            stats = capture.stats
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
            capture.close()
            if progress is not None:
                progress(done_bytes, total)
        table.finish()
        for event in events:
            handle(event)
        events.clear()
        builder.finish()
    finally:
        for capture in captures:
            capture.close()
    store.finish()
