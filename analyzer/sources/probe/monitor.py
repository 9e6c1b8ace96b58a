"""Running probes for the command line: once, or every N seconds printing only changes."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import IO

from analyzer.reports.common import iso_time
from analyzer.reports.jsonl import json_line

from . import baseline as baselines
from . import jsonout, openmetrics, text, watch
from .options import Health
from .result import ProbeResult
from .runner import Session, probe

__all__ = ["OutputFormat", "run"]


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    OPENMETRICS = "openmetrics"


def _write(result: ProbeResult, fmt: OutputFormat, out: IO[str]) -> None:
    match fmt:
        case OutputFormat.TEXT:
            text.write(result, out)
        case OutputFormat.JSON:
            out.write(json_line(jsonout.document(result)))
        case OutputFormat.OPENMETRICS:
            out.write(openmetrics.exposition(result))


def _save_baseline(result: ProbeResult, path: Path) -> None:
    if result.scan is None:
        return
    stamp = datetime.fromtimestamp(result.started_ts / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    baselines.save(
        path,
        result.scan,
        target=result.options.target,
        called_ae=result.options.called_ae,
        created=stamp,
    )


def run(
    session: Session,
    fmt: OutputFormat,
    out: IO[str],
    *,
    watch_every: float | None = None,
    count: int | None = None,
    save_baseline: Path | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Health:
    """Probe once, or every ``watch_every`` seconds (``count`` times, or until interrupted):
    the first result in full, then only what changed. Returns the last state.

    A baseline is saved after a scan whose associations were all answered (an incomplete
    scan would make every later comparison report losses).
    """
    previous: watch.State | None = None
    health = Health.UNKNOWN
    done = 0
    try:
        while True:
            started = time.monotonic()
            result = probe(session)
            health = result.health
            done += 1
            scan = result.scan
            if save_baseline is not None and scan is not None and not scan.failed_associations:
                _save_baseline(result, save_baseline)
            current = watch.state(result)
            if previous is None:
                _write(result, fmt, out)
            else:
                lines = watch.changes(previous, current)
                if lines:
                    if fmt == OutputFormat.JSON:
                        out.write(json_line(jsonout.document(result, lines)))
                    else:
                        out.write(f"{iso_time(result.started_ts)} {result.summary}\n")
                        out.write("".join(f"  {line}\n" for line in lines))
            out.flush()
            previous = current
            if watch_every is None or (count is not None and done >= count):
                return health
            sleep(max(0.0, watch_every - (time.monotonic() - started)))
    except KeyboardInterrupt:
        return health
