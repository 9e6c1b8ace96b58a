"""Recording after relaying, on the relay's thread: what the proxy relayed is written down
and observed when the relay has nothing to do. (The proxy records in a process of its own,
:mod:`.recproc`, but for the terminal UI, which reads the store this fills; the recording
process records with a :class:`Recorder` without a loop: at once.)

Relaying a chunk is one ``write``; recording it (packets for the pcapng, the flow table, the
observer, the model, the live log and the JSON Lines) costs several times more. So the relay
only notes what to record, with the time it happened, and the :class:`Recorder` runs those
jobs in order *while the relay is quiet*: once nothing was relayed for :data:`QUIET` seconds,
or for a while after bytes were sent to the upstream (its reply is expected: a C-ECHO's
response is forwarded before its request is observed, so the observation of an exchange does
not stand between a request and its response). That while is :data:`REPLY_MARGIN` times as
long as the upstream has been taking to answer (an average from the last bytes sent to it to
the next bytes sent to the client), at least :data:`REPLY_WAIT` and at most
:data:`REPLY_WAIT_LIMIT`: a loaded upstream, or one that takes longer to answer, is waited
for as long as it usually takes. And then one
job at a time, stopping as soon as a socket is readable (a request that arrives meanwhile
waits for one job, not for the whole backlog). After an answer to the client, the relay is
quiet at once if clients pause after an answer (the recorder keeps an average of the time
from an answer to the next bytes sent upstream): recording then runs in that pause rather
than at its end, when the next request comes; clients that send their next request at once
(back to back) leave no pause, and recording waits for a quiet moment or the longest delay.

A relay that is never quiet (a bulk transfer, requests back to back) is recorded anyway:
once the oldest job waiting is :data:`MAX_DELAY` seconds old, or :data:`OVERDUE_BYTES` wait
(a bulk transfer: its memory stays small), recording runs in slices of :data:`SLICE_NS`, each
after the sockets that are ready have been served (``call_later(0)`` callbacks run after the
I/O callbacks of the same loop iteration), until it has caught up. So the live log and the
records lag what was relayed by at most about that much while recording keeps up.

The backlog is bounded (:data:`BACKLOG_LIMIT` bytes not yet recorded): past
it, recording catches up at once, so memory stays flat when recording cannot keep up with
relaying. :meth:`Recorder.drain` catches up on demand (before a decision that depends on what
was recorded, such as where PDUs end).
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections import deque
from collections.abc import Callable

__all__ = [
    "BACKLOG_LIMIT",
    "JOB_BYTES",
    "MAX_DELAY",
    "PAUSE",
    "QUIET",
    "REPLY_MARGIN",
    "REPLY_WAIT",
    "REPLY_WAIT_LIMIT",
    "SLICE_NS",
    "Recorder",
]

#: Bytes waiting to be recorded (relayed bytes, and :data:`JOB_BYTES` for each job) before
#: recording catches up at once.
BACKLOG_LIMIT = 32 << 20
#: Bytes waiting from which recording no longer waits for a quiet moment.
OVERDUE_BYTES = 4 << 20
#: What a job costs in memory besides the relayed bytes it holds (its closure, its entry):
#: many small jobs are bounded too.
JOB_BYTES = 256
#: Seconds without a job added after which the relay counts as quiet (the event loop's timers
#: wait in whole milliseconds: one is the shortest wait there is).
QUIET = 0.001
#: Seconds the relay counts as busy, at least, after a job that awaits a reply (bytes sent to
#: the upstream, which answers a request within about a millisecond on a LAN).
REPLY_WAIT = 0.01
#: How many times the upstream's usual time to answer the relay waits for its reply.
REPLY_MARGIN = 3.0
#: Seconds the relay counts as busy, at most, after a job that awaits a reply (an upstream
#: that takes longer, such as one storing a large object, is not waited for).
REPLY_WAIT_LIMIT = 0.05
#: Seconds a client pauses after an answer, on average, from which recording starts right
#: after an answer rather than after a quiet moment.
PAUSE = 0.0005
#: Weight of the last sample in a moving average (a client's pause, the upstream's time to
#: answer).
_WEIGHT = 0.25
#: Seconds the oldest job may wait for a quiet moment before recording runs anyway.
MAX_DELAY = 0.1
#: Nanoseconds of recording per slice before the loop serves the sockets again, once
#: recording no longer waits for a quiet moment: recording has fallen behind, and a few long
#: slices delay a few exchanges where many short ones would delay most.
SLICE_NS = 2_000_000

Job = Callable[[], object]


def _selector(loop: asyncio.AbstractEventLoop | None) -> selectors.BaseSelector | None:
    """The selector of a selector event loop, asked whether a socket is readable. It is not
    part of asyncio's public interface: without it (another loop), recording runs in slices."""
    selector = getattr(loop, "_selector", None)
    return selector if isinstance(selector, selectors.BaseSelector) else None


def _averaged(average: float | None, sample: float) -> float:
    """A moving average with this sample (the first sample starts it)."""
    if average is None:
        return sample
    return average + (sample - average) * _WEIGHT


class Recorder:
    """Runs recording jobs in order, when the relay is quiet. Without a loop (tests), at
    once. ``failed`` is told about a job that raised (it never stops the others)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None,
        failed: Callable[[Exception], None],
        *,
        backlog_limit: int = BACKLOG_LIMIT,
        overdue_bytes: int = OVERDUE_BYTES,
        quiet: float = QUIET,
        reply_wait: float = REPLY_WAIT,
        reply_wait_limit: float = REPLY_WAIT_LIMIT,
        max_delay: float = MAX_DELAY,
    ) -> None:
        self._loop = loop
        self._failed = failed
        self._limit = backlog_limit
        self._overdue_bytes = overdue_bytes
        self._at_once = False
        """The timer runs at the next round of the loop."""
        self._quiet = quiet
        self._reply_wait = reply_wait
        self._reply_wait_limit = max(reply_wait, reply_wait_limit)
        self._busy_for = quiet
        """How long the relay counts as busy after the last job added."""
        self._max_delay = max_delay
        self._selector = _selector(loop)
        self._jobs: deque[tuple[Job, int]] = deque()
        self._backlog = 0
        self._timer: asyncio.TimerHandle | None = None
        self._running = False
        self._last_added = 0.0
        self._oldest = 0.0
        """When the oldest job waiting was added (loop time)."""
        self._answered: float | None = None
        """When bytes last went to the client (loop time), until bytes go upstream."""
        self._pause: float | None = None
        """How long clients pause after an answer (seconds, a moving average; None until
        a client sent a request after an answer)."""
        self._asked: float | None = None
        """When bytes last went upstream (loop time), until bytes go to the client."""
        self._reply: float | None = None
        """How long the upstream takes to answer (seconds, a moving average from the last
        bytes sent to it to the next bytes sent to the client; None until it answered)."""

    @property
    def backlog(self) -> int:
        """Bytes not recorded yet (relayed bytes, and :data:`JOB_BYTES` a job)."""
        return self._backlog

    @property
    def waiting(self) -> int:
        """Jobs not run yet."""
        return len(self._jobs)

    def add(self, job: Job, size: int = 0, *, reply_due: bool = False) -> None:
        """Record something (``size``: the relayed bytes it holds on to; ``reply_due``: they
        went to a peer that is expected to answer)."""
        cost = size + JOB_BYTES
        self._jobs.append((job, cost))
        self._backlog += cost
        loop = self._loop
        if loop is None or self._backlog > self._limit:
            self.drain()
            return
        now = loop.time()
        if len(self._jobs) == 1:
            self._oldest = now
        self._last_added = now
        if reply_due:
            self._asked = now
            self._busy_for = self._reply_wait_now()
            if self._answered is not None:
                self._pause = _averaged(self._pause, now - self._answered)
                self._answered = None
        else:
            if self._asked is not None:
                self._reply = _averaged(self._reply, now - self._asked)
                self._asked = None
            self._answered = now
            back_to_back = self._pause is not None and self._pause < PAUSE
            self._busy_for = self._quiet if back_to_back else 0.0
        if self._running:
            return
        if self._at_once:
            return
        if self._busy_for == 0.0 or self._backlog >= self._overdue_bytes:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_later(0, self._due)
            self._at_once = True
        elif self._timer is None:
            self._timer = loop.call_later(self._quiet, self._due)

    def _reply_wait_now(self) -> float:
        """How long to wait for the upstream's reply."""
        if self._reply is None:
            return self._reply_wait
        wait = self._reply * REPLY_MARGIN
        return min(max(wait, self._reply_wait), self._reply_wait_limit)

    def drain(self) -> None:
        """Run every job now (a job that calls this just goes on in order)."""
        if self._running:
            return
        self._run(None, yield_after=None)

    def _due(self) -> None:
        """The timer: record if the relay is quiet or the oldest job waited long enough,
        else wait for whichever comes first."""
        self._timer = None
        self._at_once = False
        loop = self._loop
        if not self._jobs or loop is None:
            return
        now = loop.time()
        overdue = now - self._oldest >= self._max_delay or self._backlog >= self._overdue_bytes
        # The loop's timers fire on whole milliseconds: within half of one is as close as
        # they can tell (and waiting for the rest would take another whole one).
        quiet_in = self._last_added + self._busy_for - self._quiet / 2 - now
        if not overdue and quiet_in > 0:
            wait = min(max(quiet_in, self._quiet), self._oldest + self._max_delay - now)
            self._timer = loop.call_later(wait, self._due)
            return
        start = time.perf_counter_ns()
        self._run(start + SLICE_NS, yield_after=None if overdue else start)
        if self._jobs and self._timer is None:
            # Overdue: go on after this round of I/O. Quiet but a socket is readable: go on
            # after it was served (if that relays more, after the next quiet moment).
            self._timer = loop.call_later(0, self._due)
            self._at_once = True

    def _readable(self) -> bool:
        selector = self._selector
        if selector is None:
            return False
        try:
            return bool(selector.select(0))
        except (OSError, ValueError):  # a closed selector (shutdown)
            return False

    def _run(self, until: int | None, *, yield_after: int | None) -> None:
        """Run jobs in order until ``until`` (None: all), stopping after ``yield_after``
        (None: never) as soon as a socket is readable."""
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
                if until is None:
                    continue
                now = time.perf_counter_ns()
                if now >= until:
                    break
                if yield_after is not None and now >= yield_after and jobs and self._readable():
                    break
        finally:
            self._running = False
