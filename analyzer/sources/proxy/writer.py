"""File and terminal output on a thread of its own, so that a slow disk or terminal never
holds up relaying.

Everything the proxy writes (the pcapng, the live log on stdout and in ``--log``, the JSON
Lines) is handed to a :class:`BackgroundWriter`, run in order on its thread. The event loop
only formats and gathers: lines and packets go into a :class:`Batch` (a lock and an append),
and each batch is handed over as one job. The thread wakes every :data:`PERIOD` seconds, or
at once when :data:`WAKE_AT` bytes are waiting, and writes what gathered in one go: it takes
the interpreter lock a few dozen times a second rather than once per line or packet, and
spends its time in ``write`` system calls, which release it, so relaying goes on meanwhile.

The queue is bounded in bytes. When the disk cannot keep up, :meth:`BackgroundWriter.submit`
waits for room (the relay slows to the disk's pace rather than holding an unbounded backlog);
a writer made with ``drop=True`` (the terminal) drops instead and counts what it dropped
(:attr:`BackgroundWriter.dropped`): a terminal nobody reads must never stall relaying, and
the files keep the full record. A job that fails
with :class:`OSError` (a full disk, a closed terminal) is reported once per message through
``report`` and the others go on.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["PERIOD", "QUEUE_LIMIT", "BackgroundWriter", "Batch"]

#: Bytes queued for writing before :meth:`BackgroundWriter.submit` waits for the thread.
QUEUE_LIMIT = 64 << 20
#: Bytes queued that wake the thread at once.
WAKE_AT = 1 << 20
#: Seconds between two rounds of the thread when nothing woke it.
PERIOD = 0.02

Job = Callable[[], None]
T = TypeVar("T")


class BackgroundWriter:
    """Runs write jobs in order on one thread. ``report`` gets a one-line message for each
    distinct write error (it is called on the writer thread)."""

    def __init__(
        self,
        report: Callable[[str], None],
        *,
        limit: int = QUEUE_LIMIT,
        drop: bool = False,
        name: str = "output",
    ) -> None:
        self._report = report
        self._limit = limit
        self._drop = drop
        self.dropped = 0
        """Jobs dropped because the queue was full (``drop=True`` only)."""
        self._jobs: deque[tuple[Job, int]] = deque()
        self._queued = 0
        self._busy = False
        self._closed = False
        self._said: set[str] = set()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"dicomtap-{name}", daemon=True)
        self._thread.start()

    def submit(self, job: Job, size: int = 0) -> None:
        """Run ``job`` on the writer thread, after every job submitted before it. ``size``
        (bytes) counts against the queue limit; the call waits while the queue is over it."""
        if threading.current_thread() is self._thread:
            self._call(job)  # a job that writes more (rotation headers ...): in order already
            return
        with self._cond:
            if self._closed:
                return
            if self._drop and self._queued > self._limit:
                self.dropped += 1
                return
            while self._queued > self._limit and self._thread.is_alive():
                self._cond.wait(0.1)
            self._jobs.append((job, size))
            self._queued += size
            if self._queued >= WAKE_AT:
                self._cond.notify_all()

    @property
    def drop(self) -> bool:
        """Whether this writer drops what does not fit (the terminal)."""
        return self._drop

    @property
    def limit(self) -> int:
        """Bytes that may wait for the thread."""
        return self._limit

    def wake(self) -> None:
        """Have the thread write what waits now, without waiting for its next round."""
        with self._cond:
            self._cond.notify_all()

    def wait(self) -> None:
        """Return once every job submitted so far has run."""
        with self._cond:
            self._cond.notify_all()
            while (self._jobs or self._busy) and self._thread.is_alive():
                self._cond.wait(0.1)

    def close(self, timeout: float | None = None) -> None:
        """Run what is queued, then stop the thread; with a ``timeout``, give up waiting after
        that many seconds (a terminal that blocks forever must not keep the process alive)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def _call(self, job: Job) -> None:
        try:
            job()
        except OSError as exc:
            where = f" {exc.filename}" if exc.filename else ""
            text = f"cannot write{where}: {exc.strerror or exc}"
            if text not in self._said:
                self._said.add(text)
                self._report(text)
        except Exception as exc:  # a bug in a job must not stop every output
            text = f"output failed: {type(exc).__name__}: {exc}"
            if text not in self._said:
                self._said.add(text)
                self._report(text)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closed:
                    self._cond.wait(PERIOD)  # jobs gather meanwhile (submit seldom wakes it)
                if not self._jobs:
                    self._cond.notify_all()
                    return
                batch = list(self._jobs)
                self._jobs.clear()
                self._busy = True
            for job, _ in batch:
                self._call(job)
            with self._cond:
                self._queued -= sum(size for _, size in batch)
                self._busy = False
                self._cond.notify_all()


class Batch(Generic[T]):
    """Items gathered where they happen and written together on ``writer``'s thread by
    ``write`` (in the order added). Adding costs a lock and an append; the first item after a
    hand-over submits the one job that will take every item gathered by the time it runs.
    Past the writer's limit, :meth:`add` drops the item (a dropping writer, counted in its
    ``dropped``) or waits until the batch is written."""

    def __init__(self, writer: BackgroundWriter, write: Callable[[list[T]], None]) -> None:
        self._writer = writer
        self._write = write
        self._items: list[T] = []
        self._size = 0
        self._queued = False
        self._lock = threading.Lock()

    def add(self, item: T, size: int) -> None:
        """Write ``item`` (``size`` bytes) with the others."""
        writer = self._writer
        while self._size > writer.limit:
            if writer.drop:
                writer.dropped += 1
                return
            writer.wait()
        with self._lock:
            self._items.append(item)
            before = self._size
            self._size += size
            submit = not self._queued
            self._queued = True
        if submit:
            writer.submit(self._flush)
        if before < WAKE_AT <= before + size:
            writer.wake()  # a burst: no need to wait for the thread's next round

    def _flush(self) -> None:
        with self._lock:
            items, self._items = self._items, []
            self._size = 0
            self._queued = False
        if items:
            self._write(items)
