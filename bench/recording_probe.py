"""Imported by a proxy that :mod:`bench.proxy_bench` runs: times each round of recording on
the relay's thread (``Recorder._due``, the recorder's only callback on the event loop), notes
whether a socket was readable at its end (then data waited for it), and writes the durations
(µs, wall clock and the thread's CPU time) as JSON to the file named by
``PROXY_BENCH_PROBE`` when the proxy exits. The CPU time of a round does not count the time
the machine's other processes took the core (on a shared machine, most of a round trip's
99th percentile)."""

from __future__ import annotations

import atexit
import json
import os
import time
from collections.abc import Callable

from analyzer.sources.proxy import recorder

_wall: list[int] = []
_cpu: list[int] = []
_readable: list[int] = []
_due: Callable[[recorder.Recorder], None] = recorder.Recorder._due


def _timed(self: recorder.Recorder) -> None:
    wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
    _due(self)
    _cpu.append((time.thread_time_ns() - cpu) // 1000)
    _wall.append((time.perf_counter_ns() - wall) // 1000)
    selector = getattr(getattr(self, "_loop", None), "_selector", None)
    _readable.append(int(bool(selector is not None and selector.select(0))))


def _write() -> None:
    with open(os.environ["PROXY_BENCH_PROBE"], "w") as out:
        json.dump({"wall": _wall, "cpu": _cpu, "readable": _readable}, out)


recorder.Recorder._due = _timed  # type: ignore[method-assign]
atexit.register(_write)
