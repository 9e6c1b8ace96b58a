"""Watching a live capture: is the analysis keeping up, and the chores of a side thread.

:class:`Backlog` wraps the pipe from dumpcap and looks, at every read, at how much waits in
it. The analysis is behind when the pipe stays (nearly) full for :data:`FULL_FOR`
seconds: at a high rate the buffers fill long before any delay shows, dumpcap blocks on the
pipe and the kernel drops what it captures meanwhile (a moment of full pipe is only a
scheduling hiccup that the kernel's buffer absorbs); or when the packets it analyses had
waited more than ``lag_warning`` seconds: at a low rate, with room to wait, packets fall
further and further behind the wall clock. Falling behind and catching up are said at
once (notices for stderr) and totalled for the ``capture-lag`` finding. One ioctl per read
(a read takes up to a MiB); per packet, only :attr:`Backlog.last_ts`, which the analysis
sets.

:class:`Monitor` is a side thread that, every :data:`TICK`, brings the store's source
counters up to date, calls the caller's progress callback, and kills a dumpcap that was
asked to stop and has said nothing for :data:`STOP_TIMEOUT` seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import BinaryIO

from analyzer.pipeline import Progress
from analyzer.sources.pcap import CaptureStats
from analyzer.store import SourceInfo

from .process import DumpcapProcess, pending_bytes

__all__ = ["STOP_TIMEOUT", "TICK", "Backlog", "Monitor"]

TICK = 0.5
"""Seconds between two progress calls."""
STOP_TIMEOUT = 10.0
"""Seconds without a byte from dumpcap, after it was asked to stop, before it is killed."""
FULL_FOR = 1.0
"""Seconds the pipe must stay full to count as falling behind."""
NOTICE_EVERY = 10.0
"""Seconds between two "behind" notices (a rate near the limit goes back and forth)."""
_FULL = 0.85  # of the pipe's capacity: dumpcap is (about to be) blocked


class Backlog:
    """A reader of the pipe from dumpcap that notes, at each read, how far behind the
    analysis is (see the module docstring)."""

    def __init__(
        self,
        raw: BinaryIO,
        fd: int,
        pipe_size: int,
        *,
        lag_warning: float,
        notice: Callable[[str], None],
    ) -> None:
        """``raw``: the pipe (or a reader of it), ``fd`` its descriptor, ``pipe_size`` its
        capacity."""
        self._read = raw.read
        self._fd = fd
        self._size = pipe_size
        self.last_ts: int | None = None
        """Capture time of the last packet analysed (set by whoever analyses them)."""
        self._threshold = int(lag_warning * 1e9)
        self._notice = notice
        self.episodes = 0
        """Times the analysis fell behind (0: it always kept up)."""
        self.max_lag_ns = 0
        """Largest delay between a packet's capture and its analysis, while behind."""
        self.behind_ns = 0
        """Time spent behind."""
        self.first_behind_ts: int | None = None
        """Capture time of the last packet analysed when the analysis first fell behind."""
        self._behind_since: int | None = None
        self._full_since: int | None = None
        self._backlogged = False  # the last read took bytes that had waited
        self._said_behind = False
        self._last_notice = -NOTICE_EVERY

    def read(self, size: int = -1) -> bytes:
        """What one read of the pipe returns (at most ``size`` bytes)."""
        before = time.time_ns()
        pending = pending_bytes(self._fd)
        last = self.last_ts
        # The packets analysed since the last read came from a backlog if bytes wait now or
        # the last read took bytes that had waited: their age, now that they are done, is
        # the delay. Otherwise (an idle link) the last packet is merely old.
        lag = before - last if (pending or self._backlogged) and last is not None else 0
        if not pending and self._behind_since is not None and lag < self._threshold // 4:
            self._caught_up(before)  # the pipe is empty: about to wait for dumpcap
        chunk = self._read(size) or b""
        # A read that was blocked (or frozen) returns what piled up meanwhile: as much a
        # sign of the pipe backing up as bytes waiting before it.
        self.look(pending, len(chunk), lag, time.time_ns())
        return chunk

    def look(self, pending: int, got: int, lag: int, now: int) -> None:
        """Take note of a read that found ``pending`` bytes waiting and returned ``got``
        bytes, at wall time ``now``, the packets analysed before it having waited ``lag``
        ns."""
        full = bool(self._size) and max(pending, got) >= self._size * _FULL
        self._backlogged = full or pending > 0
        if full:
            self._full_since = self._full_since or now
        else:
            self._full_since = None
        stuck = self._full_since is not None and now - self._full_since >= FULL_FOR * 1e9
        if lag > self._threshold or stuck:
            self.max_lag_ns = max(self.max_lag_ns, lag)
            if self._behind_since is None:
                last = self.last_ts
                self._fell_behind(self._full_since or now, last, max(pending, got), lag, stuck)
        elif self._behind_since is not None and lag < self._threshold // 4 and not full:
            self._caught_up(now)

    def _fell_behind(self, now: int, last: int | None, waiting: int, lag: int, full: bool) -> None:
        self._behind_since = now
        self.episodes += 1
        if self.first_behind_ts is None:
            self.first_behind_ts = last
        if time.monotonic() - self._last_notice < NOTICE_EVERY:
            return
        self._last_notice = time.monotonic()
        self._said_behind = True
        why = (
            f"the pipe from dumpcap has stayed full ({waiting >> 10} KiB) for {FULL_FOR:.0f} s"
            if full
            else f"packets wait {lag / 1e9:.1f} s before they are analysed"
        )
        self._notice(
            f"warning: analysis is falling behind the capture ({why}); if this goes on, the "
            "kernel will drop packets"
        )

    def _caught_up(self, now: int) -> None:
        assert self._behind_since is not None
        self.behind_ns += now - self._behind_since
        if self._said_behind:
            self._said_behind = False
            self._notice(
                "note: analysis caught up with the capture after "
                f"{(now - self._behind_since) / 1e9:.1f} s"
            )
        self._behind_since = None

    def finish(self) -> None:
        """The stream has ended."""
        if self._behind_since is not None:
            self.behind_ns += time.time_ns() - self._behind_since
            self._behind_since = None


class Monitor:
    """The side thread of a live capture (see the module docstring)."""

    def __init__(
        self,
        process: DumpcapProcess,
        stats: CaptureStats,
        source: SourceInfo,
        progress: Progress | None = None,
        *,
        stop: Callable[[], None],
    ) -> None:
        """``stop`` ends the capture cleanly (when the progress callback raises)."""
        self._process = process
        self._stats = stats
        self._source = source
        self._progress = progress
        self._stop = stop
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="live-monitor", daemon=True)
        self.raised: BaseException | None = None
        """What the progress callback raised (the capture was stopped then)."""
        self._last_bytes = -1
        self._quiet_since = time.monotonic()

    def start(self) -> None:
        self._thread.start()

    def finish(self) -> None:
        """Stop (the stream has ended)."""
        self._done.set()
        self._thread.join(5)

    def _loop(self) -> None:
        while not self._done.wait(TICK):
            try:
                self.tick()
            except BaseException as exc:  # the progress callback asked to stop (the UI quit)
                if self.raised is None:
                    self.raised = exc
                self._stop()

    def tick(self) -> None:
        """Counters, progress, and a dumpcap that does not stop."""
        stats = self._stats
        process = self._process
        # plain counters for whoever shows the source (the terminal UI's title); no store
        # notification, so that no store listener ever runs in this thread
        self._source.packets = stats.packets
        self._source.bytes_read = stats.bytes_read
        if stats.bytes_read != self._last_bytes:
            self._last_bytes = stats.bytes_read
            self._quiet_since = time.monotonic()
        elif (
            process.stop_sent_at is not None
            and time.monotonic() - max(self._quiet_since, process.stop_sent_at) > STOP_TIMEOUT
        ):
            process.kill()  # asked to stop, silent since: it will not stop by itself
        if self._progress is not None:
            self._progress(stats.bytes_read, 0)
