"""The proxy's outputs that are not packets: the live log and the JSON Lines records.

Both read the :class:`~analyzer.store.Store` the proxy fills, through its change
notifications, exactly as a report or the TUI would; :class:`LiveLog` also takes the
proxy's own events (routing, refusals, rewrites, timeouts). Lines look like::

    12:00:01.234 #3 connection from 10.0.0.5:51234 on 0.0.0.0:104
    12:00:01.235 #3 relaying to 10.0.0.9:104
    12:00:01.235 #3 started MODALITY → PACS, 10.0.0.5:51234 → 10.0.0.9:104, 3 contexts proposed
    12:00:01.236 #3 accepted 2 of 3 contexts: CT Image Storage, Verification SOP Class
    12:00:01.301 #3 C-STORE CT Image Storage: 0x0000 Success, latency 12.1 ms, 512.0 KiB
    12:00:02.110 #3 released after 876.0 ms: 4 exchanges, 12.3 MiB

``#3`` is the proxy's connection number (``Association.connection``); the association lines
are the same as ``dicomtap live`` prints (:mod:`analyzer.reports.eventlines`). Every line is
escaped with :func:`analyzer.textsafe.printable` on its way out: AE titles, UIDs and error
texts come from the wire and may hold newlines or terminal escapes.

Lines and records are formatted where they happen and written by the
:class:`~.writer.BackgroundWriter` thread, so neither a slow terminal nor a slow disk holds
up relaying.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from analyzer.filter import Filter, StreamFilter
from analyzer.reports.eventlines import EventLines, clock
from analyzer.reports.jsonl import change_record, header_record, json_line, summary_record
from analyzer.store import Change, Store
from analyzer.textsafe import printable

from .writer import BackgroundWriter, Batch

__all__ = ["JsonlSink", "LiveLog", "RotatingFile"]


class RotatingFile:
    """A text file capped at ``max_size`` bytes: ``x.jsonl``, then ``x.1.jsonl``, ``x.2.jsonl``
    ... keeping the newest ``keep``. ``on_open`` writes a header into each new file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_size: int | None = None,
        keep: int = 10,
        on_open: Callable[[], str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.max_size = max_size
        self.keep = keep
        self.files: list[Path] = []
        self._on_open = on_open
        self._index = 0
        self._size = 0
        self._file: IO[str] = self._open(self.path)

    def _open(self, path: Path) -> IO[str]:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        f = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        self.files.append(path)
        self._size = 0
        if self._on_open is not None:
            head = self._on_open()
            f.write(head)
            self._size = len(head.encode())
        return f

    def write(self, text: str) -> None:
        """Append ``text`` (whole lines); rotate first if it would pass the cap. An error
        names the file."""
        try:
            self._write(text)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(self.path)) from None

    def _write(self, text: str) -> None:
        size = len(text.encode())
        if self.max_size is not None and self._size and self._size + size > self.max_size:
            self._file.close()
            self._index += 1
            suffix = self.path.suffix
            stem = self.path.name.removesuffix(suffix)
            self._file = self._open(self.path.with_name(f"{stem}.{self._index}{suffix}"))
            while len(self.files) > self.keep:
                self.files.pop(0).unlink(missing_ok=True)
        self._file.write(text)
        self._size += size

    def flush(self) -> None:
        try:
            if not self._file.closed:
                self._file.flush()
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(self.path)) from None

    def close(self) -> None:
        try:
            if not self._file.closed:
                self._file.close()
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(self.path)) from None


class LiveLog:
    """One line per proxy event, association event and exchange, on ``out`` (written by the
    ``terminal`` writer's thread) and/or a file (by the ``files`` writer's)."""

    def __init__(
        self,
        store: Store,
        out: IO[str] | None,
        file: RotatingFile | None,
        *,
        terminal: BackgroundWriter,
        files: BackgroundWriter,
        log_filter: Filter | None = None,
    ) -> None:
        """``log_filter``: association lines only for associations that match it (from the
        moment they do); the proxy's own lines (connections, refusals) always."""
        self.store = store
        self._filter = StreamFilter(store, log_filter) if log_filter is not None else None
        self._out = out
        self._file = file
        self._terminal = terminal
        self._files = files
        self._dropped_said = 0
        self._to_out: Batch[str] = Batch(terminal, self._show)
        self._to_file = Batch(files, self._keep) if file is not None else None
        self._upstream: dict[int, str] = {}
        self._lines = EventLines(
            store,
            label=lambda a: f"#{a.connection}",
            where=lambda a: self._upstream.get(a.connection, str(a.server)),
        )
        # Nowhere to write (--quiet, no --log): no line is worth formatting.
        self._unsubscribe = store.subscribe(self._changed) if out or file else lambda: None

    def line(self, text: str, ts: int | None = None) -> None:
        """Write one line, stamped with ``ts`` (ns; now if None)."""
        if self._out is None and self._file is None:
            return
        line = f"{clock(ts)} {printable(text)}\n"
        if self._out is not None:
            self._to_out.add(line, len(line))
        if self._to_file is not None:
            self._to_file.add(line, len(line))

    def _keep(self, lines: list[str]) -> None:
        """Lines to the log file (on the files' writer thread), one by one for its rotation."""
        assert self._file is not None
        for line in lines:
            self._file.write(line)

    def _show(self, lines: list[str]) -> None:
        """Lines to the terminal, in one write (on the terminal's writer thread)."""
        if self._out is not None:
            dropped = self._terminal.dropped - self._dropped_said
            if dropped:
                self._dropped_said += dropped
                note = f"({dropped} lines not shown: the terminal did not keep up)"
                lines.insert(0, f"{clock(None)} {note}\n")
            try:
                self._out.write("".join(lines))
                self._out.flush()
            except (OSError, ValueError):
                self._out = None  # stdout went away: keep the file, keep relaying

    def event(self, connection: int, text: str, ts: int | None = None) -> None:
        """A proxy event on connection ``#connection``."""
        self.line(f"#{connection} {text}", ts)

    def upstream(self, connection: int, where: str) -> None:
        """Remember where a connection was relayed to (shown on its association line)."""
        self._upstream[connection] = where

    def forget(self, connection: int) -> None:
        """The connection is over: drop what was kept for its lines."""
        self._upstream.pop(connection, None)

    def close(self) -> None:
        """Stop listening; the file is closed after what is queued."""
        self._unsubscribe()
        file = self._file
        if file is not None:
            self._files.submit(file.close)

    # --- store changes ---------------------------------------------------------------

    def _changed(self, change: Change) -> None:
        if self._filter is not None and not self._filter.accepts(change):
            return
        for ts, text in self._lines.lines(change):
            self.line(text, ts)


class JsonlSink:
    """The records of ``analyze --format json``, written as they become final: a header
    first (in every rotated file), each exchange, violation, gap and finding as it is
    stored, each association when it ends, and a summary on :meth:`close`."""

    def __init__(
        self,
        store: Store,
        path: str | os.PathLike[str],
        generator: str,
        writer: BackgroundWriter,
        *,
        max_size: int | None = None,
        keep: int = 10,
    ) -> None:
        self.store = store
        self._generator = generator
        self._writer = writer
        self._file = RotatingFile(
            path, max_size=max_size, keep=keep, on_open=lambda: json_line(self._header())
        )
        self._unsubscribe = store.subscribe(self._changed)

    def _header(self) -> dict[str, Any]:
        return header_record(self.store, self._generator)

    def _changed(self, change: Change) -> None:
        out = change_record(change, self.store)
        if out is not None:
            line = json_line(out)
            flush = out["type"] == "association"
            self._writer.submit(lambda: self._write(line, flush), len(line))

    def _write(self, line: str, flush: bool) -> None:
        self._file.write(line)
        if flush:
            self._file.flush()

    def close(self) -> None:
        """Write the summary and close the file (after what is queued)."""
        self._unsubscribe()
        line = json_line(summary_record(self.store))
        self._writer.submit(lambda: self._write(line, False))
        self._writer.submit(self._file.close)
