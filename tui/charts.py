"""Numbers behind the pictures: throughput over time and the latency distribution
(headless: no Textual here)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from analyzer.model import Association, Exchange, PduRecord
from analyzer.reports.common import duration_text, size_text


@dataclass(frozen=True, slots=True)
class Series:
    """Values for a sparkline, and a caption that says what they are."""

    values: list[float]
    caption: str
    low: str = ""
    """What the left end of the picture stands for (an axis' first label)."""
    high: str = ""
    """What the right end stands for."""


def throughput(
    a: Association, pdus: Sequence[PduRecord], exchanges: Sequence[Exchange], buckets: int
) -> Series:
    """Bytes per time bucket over the association's life (both directions).

    A PDU counts where its last byte arrived. Without PDU records the data sets of the
    exchanges stand in (at the time their message ended).
    """
    buckets = max(1, buckets)
    points: list[tuple[int, int]] = [(p.end_ts, p.size) for p in pdus]
    if not points:
        for e in exchanges:
            for msg in (e.request, e.final):
                if msg is not None:
                    points.append(
                        (
                            msg.end_ts,
                            len(msg.command.raw) + (msg.dataset.length if msg.dataset else 0),
                        )
                    )
    start = a.start_ts
    end = a.end_ts if a.end_ts is not None else max((t for t, _ in points), default=start)
    span = max(1, end - start)
    values = [0.0] * buckets
    for ts, size in points:
        i = min(buckets - 1, max(0, (ts - start) * buckets // span))
        values[i] += size
    total = sum(size for _, size in points)
    peak = size_text(peak_rate(points, start, span))
    caption = f"{size_text(total)} in {duration_text(span)}, peak {peak}/s"
    return Series(values, caption)


PEAK_WINDOW = 100_000_000
"""The peak rate is the most bytes seen in one window of this many nanoseconds (or of the
whole association when it is shorter): the same figure whatever the terminal's width."""


def peak_rate(points: Sequence[tuple[int, int]], start: int, span: int) -> int:
    """Bytes per second in the busiest :data:`PEAK_WINDOW` of ``points`` (time, size)."""
    window = max(1, min(PEAK_WINDOW, span))
    per: dict[int, int] = {}
    for ts, size in points:
        key = max(0, ts - start) // window
        per[key] = per.get(key, 0) + size
    return int(max(per.values(), default=0) * 1e9 / window)


def latency_distribution(exchanges: Sequence[Exchange], buckets: int) -> Series:
    """How many exchanges answered within each latency band: a histogram on a log scale,
    fastest left; :attr:`Series.low` and :attr:`Series.high` label its two ends."""
    buckets = max(1, buckets)
    latencies = sorted(e.latency_ns for e in exchanges if e.latency_ns is not None)
    if not latencies:
        return Series([], "no answered exchanges")
    low = math.log10(max(1, latencies[0]))
    high = math.log10(max(1, latencies[-1]))
    width = (high - low) / buckets or 1.0
    values = [0.0] * buckets
    for ns in latencies:
        i = min(buckets - 1, int((math.log10(max(1, ns)) - low) / width))
        values[i] += 1
    median = latencies[len(latencies) // 2]
    caption = f"{len(latencies)} answered, median {duration_text(median)} (log scale)"
    return Series(values, caption, duration_text(latencies[0]), duration_text(latencies[-1]))
