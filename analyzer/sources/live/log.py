"""What ``dicomtap live`` prints: a compact live log (text) or JSON Lines, as things happen.

Both are store listeners, like a report or the terminal UI: they read the records the
pipeline puts into the :class:`~analyzer.store.Store` and never see a packet. They run in
the thread that feeds the pipeline and flush every line, so a line is out as soon as its
record is in the store. The text log has one line per association event::

    12:00:01.234 #1 started MODALITY → ARCHIVE, 10.0.0.5:51234 → 10.0.0.9:104, 2 contexts proposed
    12:00:01.236 #1 accepted 2 of 2 contexts: CT Image Storage, Verification
    12:00:01.301 #1 C-STORE CT Image Storage: 0x0000 Success, latency 1.2 ms, 512.0 KiB
    12:00:02.110 #1 released after 876.0 ms: 4 exchanges, 2.1 MiB
    12:00:02.110 #1 WARNING Presentation context rejected [context-rejected]

(times are the packets' capture times, local time; ``#1`` is the association's id, as in
``analyze``). JSON Lines are the records of ``analyze --format json``
(analyzer/reports/SCHEMA.md), each written when it is complete: an exchange when its final
response has come, an association when it has ended (its exchanges come before it, its
findings after it), a finding as it is produced; the header carries a ``live`` object, and
the summary the verdict, the exit status and a ``capture`` object (drops, delay, files).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

from analyzer.reports.common import human_text, ms, plural, size_text
from analyzer.reports.diagnosis import exit_status, verdict
from analyzer.reports.eventlines import EventLines, clock
from analyzer.reports.jsonl import change_record, header_record, json_line, summary_record
from analyzer.reports.text import summary_line
from analyzer.store import Change, Store

from .capture import LiveOptions, LiveResult

Accepts = Callable[[Change], bool]
"""Which changes a sink writes (``StreamFilter.accepts`` for ``--filter``)."""

__all__ = ["LiveJsonl", "LiveLog", "capture_record", "summary_lines"]


class _Writer:
    """Writes whole lines to ``out`` and flushes each. If the reader goes away (``| head``)
    or a write fails (a full disk), it stops writing and calls ``closed`` (``dicomtap live``
    then stops the capture); :attr:`error` says why a write failed (None for a reader that
    went away, which is no error)."""

    def __init__(self, out: IO[str], closed: Callable[[], object] | None = None) -> None:
        self._out: IO[str] | None = out
        self._closed = closed
        self.error: str | None = None

    def write(self, text: str) -> None:
        out = self._out
        if out is None:
            return
        try:
            out.write(text)
            out.flush()
        except (OSError, ValueError) as exc:
            if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
                self.error = exc.strerror or str(exc)
            self._out = None
            if self._closed is not None:
                self._closed()

    @property
    def stopped(self) -> bool:
        """Writing stopped: the reader went away or a write failed."""
        return self._out is None


class LiveLog(_Writer):
    """The text live log of a store being filled (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        out: IO[str],
        closed: Callable[[], object] | None = None,
        accepts: Accepts | None = None,
    ) -> None:
        super().__init__(out, closed)
        self.store = store
        self._accepts = accepts
        self._lines = EventLines(store)
        self._unsubscribe = store.subscribe(self._changed)

    def line(self, ts: int | None, text: str) -> None:
        """One line, stamped with the capture time ``ts`` (now if None)."""
        self.write(f"{clock(ts)} {text}\n")

    def close(self, options: LiveOptions, result: LiveResult) -> None:
        """Stop listening; write the summary."""
        self._unsubscribe()
        self.write(human_text(summary_lines(self.store, options, result)))

    def _changed(self, change: Change) -> None:
        if self._accepts is not None and not self._accepts(change):
            return
        for ts, text in self._lines.lines(change):
            self.line(ts, text)


def capture_record(options: LiveOptions, result: LiveResult) -> dict[str, Any]:
    """The ``capture`` object of the live summary record."""
    d = result.drops
    return {
        "interface": options.interface,
        "capture_filter": options.bpf,
        "packets": result.packets,
        "bytes": result.bytes,
        "duration_ms": ms(result.duration_ns),
        "dropped": {
            "total": d.total,
            "kernel": d.kernel,
            "dumpcap": d.dumpcap,
            "interface": d.interface,
            "received": d.received,
        },
        "fell_behind": result.behind,
        "max_delay_ms": ms(result.max_lag_ns),
        "behind_ms": ms(result.behind_ns),
        "files": list(result.files),
        "error": result.error,
        "write_error": result.write_error,
    }


def summary_lines(store: Store, options: LiveOptions, result: LiveResult) -> list[str]:
    """The end of the live log: the verdict (as ``diagnose``), counts, drops, files."""
    seconds = result.duration_ns / 1e9
    d = result.drops
    dropped = "none dropped" if not d.total else f"{plural(d.total, 'packet')} DROPPED"
    lines = [
        "",
        f"Verdict: {verdict(store)}",
        f"Capture: {options.interface}, filter '{options.bpf}', {seconds:.1f} s, "
        f"{plural(result.packets, 'packet')} ({size_text(result.bytes)}), {dropped}.",
        summary_line(store),
    ]
    if result.behind:
        lines.append(
            f"Analysis fell behind the capture {result.behind} time(s), for "
            f"{result.behind_ns / 1e9:.1f} s in all (largest delay "
            f"{result.max_lag_ns / 1e9:.1f} s)."
        )
    if len(result.files) == 1:
        lines.append(f"Capture kept in {result.files[0]}.")
    elif result.files:
        lines.append(
            f"Capture kept in {len(result.files)} files, {result.files[0]} … {result.files[-1]}."
        )
    return lines


class LiveJsonl(_Writer):
    """JSON Lines records of a store being filled (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        out: IO[str],
        generator: str,
        options: LiveOptions,
        closed: Callable[[], object] | None = None,
        accepts: Accepts | None = None,
    ) -> None:
        super().__init__(out, closed)
        self.store = store
        self._accepts = accepts
        header = header_record(store, generator)
        header["live"] = {
            "interface": options.interface,
            "capture_filter": options.bpf,
            "write": options.write,
        }
        self._emit(header)
        self._unsubscribe = store.subscribe(self._changed)

    def _emit(self, record: dict[str, Any]) -> None:
        self.write(json_line(record))

    def _changed(self, change: Change) -> None:
        if self._accepts is not None and not self._accepts(change):
            return
        record = change_record(change, self.store)
        if record is not None:
            self._emit(record)

    def close(self, options: LiveOptions, result: LiveResult) -> None:
        """Stop listening; write the summary record."""
        self._unsubscribe()
        summary = summary_record(self.store)
        summary["verdict"] = verdict(self.store)
        summary["exit_status"] = exit_status(self.store)
        summary["capture"] = capture_record(options, result)
        self._emit(summary)
