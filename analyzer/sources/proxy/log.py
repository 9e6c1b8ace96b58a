"""The proxy's outputs that are not packets: the live log and the JSON Lines records.

Both read the :class:`~analyzer.store.Store` the proxy fills, through its change
notifications, exactly as a report or the TUI would; :class:`LiveLog` also takes the
proxy's own events (routing, refusals, rewrites, timeouts). Lines look like::

    12:00:01.234 #3 connection from 10.0.0.5:51234
    12:00:01.236 #3 MODALITY→PACS 10.0.0.5:51234 → 10.0.0.9:104 accepted 2/3 contexts
    12:00:01.301 #3 C-STORE CT Image Storage 1.2.3.4… 0x0000 Success 12.1 ms
    12:00:02.110 #3 released (4 exchanges, 12.3 MiB)

``#3`` is the proxy's connection number (``Association.connection``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from analyzer.model import Association, Exchange
from analyzer.names import uid_name
from analyzer.reports.common import duration_text, outcome_text, side, size_text
from analyzer.reports.jsonl import change_record, header_record, summary_record
from analyzer.store import Change, ChangeKind, Store

__all__ = ["JsonlSink", "LiveLog", "RotatingFile"]

#: Violation lines printed per connection before the rest are only counted.
_VIOLATION_LINES = 5


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
        """Append ``text`` (whole lines); rotate first if it would pass the cap."""
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
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def _clock(ts_ns: int | None = None) -> str:
    ts = time.time_ns() if ts_ns is None else ts_ns
    seconds, ns = divmod(ts, 1_000_000_000)
    return time.strftime("%H:%M:%S", time.localtime(seconds)) + f".{ns // 1_000_000:03d}"


def _short_uid(uid: str | None) -> str:
    if not uid:
        return "-"
    return uid if len(uid) <= 24 else uid[:23] + "…"


class LiveLog:
    """One line per proxy event, association event and exchange, on ``out`` and/or a file."""

    def __init__(self, store: Store, out: IO[str] | None, file: RotatingFile | None = None) -> None:
        self.store = store
        self._out = out
        self._file = file
        self._upstream: dict[int, str] = {}
        self._said: dict[int, set[str]] = {}
        self._violations: dict[int, int] = {}
        self._unsubscribe = store.subscribe(self._changed)

    def line(self, text: str) -> None:
        """Write one line, time-stamped."""
        line = f"{_clock()} {text}\n"
        if self._out is not None:
            try:
                self._out.write(line)
                self._out.flush()
            except (BrokenPipeError, ValueError):
                self._out = None  # stdout went away: keep the file, keep relaying
        if self._file is not None:
            self._file.write(line)

    def event(self, connection: int, text: str) -> None:
        """A proxy event on connection ``#connection``."""
        self.line(f"#{connection} {text}")

    def upstream(self, connection: int, where: str) -> None:
        """Remember where a connection was relayed to (shown on its association line)."""
        self._upstream[connection] = where

    def forget(self, connection: int) -> None:
        """The connection is over: drop what was kept for its lines."""
        self._upstream.pop(connection, None)
        self._said.pop(connection, None)
        self._violations.pop(connection, None)

    def close(self) -> None:
        self._unsubscribe()
        if self._file is not None:
            self._file.close()

    # --- store changes ---------------------------------------------------------------

    def _changed(self, change: Change) -> None:
        record = change.record
        if change.kind == ChangeKind.ASSOCIATION and isinstance(record, Association):
            self._association(record)
        elif change.kind == ChangeKind.EXCHANGE and isinstance(record, Exchange):
            a = self.store.association(record.association)
            if a is not None:
                self.event(a.connection, _exchange_text(record))
        elif change.kind == ChangeKind.VIOLATION and record is not None:
            a = self.store.association(getattr(record, "association", -1))
            if a is None:
                return
            n = self._violations.get(a.connection, 0) + 1
            self._violations[a.connection] = n
            if n <= _VIOLATION_LINES:
                by = side(getattr(record, "from_requestor", None))
                self.event(a.connection, f"violation by the {by}: {getattr(record, 'text', '')}")
            elif n == _VIOLATION_LINES + 1:
                self.event(a.connection, "more violations (see the JSON Lines log)")
        elif change.kind == ChangeKind.FINDING and record is not None:
            evidence = getattr(record, "evidence", None)
            a = self.store.association(getattr(evidence, "association", -1))
            if a is not None:
                self.event(a.connection, f"finding: {getattr(record, 'title', '')}")

    def _association(self, a: Association) -> None:
        said = self._said.setdefault(a.connection, set())
        titles = f"{a.calling_ae_title or '?'}→{a.called_ae_title or '?'}"
        where = f"{a.client} → {self._upstream.get(a.connection, str(a.server))}"
        if a.ac_ts is not None and "ac" not in said:
            said.add("ac")
            accepted = sum(1 for c in a.contexts if c.accepted)
            self.event(
                a.connection, f"{titles} {where} accepted {accepted}/{len(a.contexts)} contexts"
            )
        if a.outcome is None or "end" in said:
            return
        said.add("end")
        moved = a.requestor_pdus.bytes + a.acceptor_pdus.bytes
        if a.outcome == "released":
            text = f"released ({a.exchanges} exchanges, {size_text(moved)})"
        elif a.outcome == "rejected":
            text = f"{titles} {where} {outcome_text(a)}"
        elif a.outcome == "never-associated":
            text = f"{a.client} → {a.server}: {outcome_text(a)}"
        else:
            text = f"{outcome_text(a)} ({a.exchanges} exchanges, {size_text(moved)})"
        self.event(a.connection, f"{text} after {duration_text(a.duration_ns)}")


def _exchange_text(e: Exchange) -> str:
    what = uid_name(e.sop_class) if e.sop_class else "-"
    status = "no response" if e.final is None else f"0x{e.status or 0:04X} {e.status_meaning}"
    if e.pending:
        status += f" (+{e.pending} pending)"
    return (
        f"{e.service} {what} {_short_uid(e.sop_instance)} {status} {duration_text(e.duration_ns)}"
    )


class JsonlSink:
    """The records of ``analyze --format json``, written as they become final: a header
    first (in every rotated file), each exchange, violation, gap and finding as it is
    stored, each association when it ends, and a summary on :meth:`close`."""

    def __init__(
        self,
        store: Store,
        path: str | os.PathLike[str],
        generator: str,
        *,
        max_size: int | None = None,
        keep: int = 10,
    ) -> None:
        self.store = store
        self._generator = generator
        self._file = RotatingFile(
            path, max_size=max_size, keep=keep, on_open=lambda: self._dump(self._header())
        )
        self._unsubscribe = store.subscribe(self._changed)

    @property
    def files(self) -> list[Path]:
        return self._file.files

    def _header(self) -> dict[str, Any]:
        return header_record(self.store, self._generator)

    @staticmethod
    def _dump(record: dict[str, Any]) -> str:
        return json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"

    def _changed(self, change: Change) -> None:
        out = change_record(change)
        if out is not None:
            self._file.write(self._dump(out))
            if out["type"] == "association":
                self._file.flush()

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        """Write the summary and close the file."""
        self._unsubscribe()
        self._file.write(self._dump(summary_record(self.store)))
        self._file.close()
