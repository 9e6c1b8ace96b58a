"""Recording after relaying: what the proxy relayed is written down and observed when the
event loop has nothing more urgent to do.

Relaying a chunk is one ``write``; recording it (packets for the pcapng, the flow table, the
observer, the model, the live log and the JSON Lines) costs several times more. So the relay
only notes what to record, with the time it happened, and the :class:`Recorder` runs those
jobs in order in slices scheduled *after* the sockets that are ready have been served
(``call_later(0)`` callbacks run after the I/O callbacks of the same loop iteration): a
message is forwarded first, and at most one slice of recording can stand between a socket
becoming readable and its bytes being forwarded.

The backlog is bounded (:data:`BACKLOG_LIMIT` bytes of relayed data not yet recorded): past
it, recording catches up at once, so memory stays flat when recording cannot keep up with
relaying. :meth:`Recorder.drain` catches up on demand (before a decision that depends on what
was recorded, such as where PDUs end).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

__all__ = ["BACKLOG_LIMIT", "Recorder"]

#: Relayed bytes waiting to be recorded before recording catches up at once.
BACKLOG_LIMIT = 32 << 20
#: Nanoseconds of recording per slice before the loop serves the sockets again.
SLICE_NS = 500_000

Job = Callable[[], object]


class Recorder:
    """Runs recording jobs in order, after relaying. Without a loop (tests), at once.
    ``failed`` is told about a job that raised (it never stops the others)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None,
        failed: Callable[[Exception], None],
        *,
        backlog_limit: int = BACKLOG_LIMIT,
    ) -> None:
        self._loop = loop
        self._failed = failed
        self._limit = backlog_limit
        self._jobs: deque[tuple[Job, int]] = deque()
        self._backlog = 0
        self._timer: asyncio.TimerHandle | None = None
        self._running = False

    @property
    def backlog(self) -> int:
        """Relayed bytes not recorded yet."""
        return self._backlog

    def add(self, job: Job, size: int = 0) -> None:
        """Record something (``size``: the relayed bytes it holds on to)."""
        self._jobs.append((job, size))
        self._backlog += size
        if self._loop is None or self._backlog > self._limit:
            self.drain()
        elif self._timer is None and not self._running:
            self._timer = self._loop.call_later(0, self._slice)

    def drain(self) -> None:
        """Run every job now (a job that calls this just goes on in order)."""
        if self._running:
            return
        self._run(None)

    def _slice(self) -> None:
        self._timer = None
        self._run(time.perf_counter_ns() + SLICE_NS)
        if self._jobs and self._loop is not None and self._timer is None:
            self._timer = self._loop.call_later(0, self._slice)

    def _run(self, until: int | None) -> None:
        self._running = True
        jobs = self._jobs
        try:
            while jobs:
                job, size = jobs.popleft()
                self._backlog -= size
                try:
                    job()
                except Exception as exc:  # recording must never stop relaying
                    self._failed(exc)
                if until is not None and time.perf_counter_ns() >= until:
                    break
        finally:
            self._running = False
