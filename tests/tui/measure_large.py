"""Measure the TUI on a large generated capture (a measurement, not a test: no pass/fail).

::

    python -m tests.tui.capture_gen /tmp/big.pcap --associations 10000 --stores 2 --fragments 46
    python -m tests.tui.measure_large /tmp/big.pcap
    python -m tests.tui.measure_large /tmp/big20k.pcap --filter 'cmd=C-STORE and latency>1ms'

Runs the app headless (Textual's Pilot) with the same ingest as ``dicomtap tui`` and
reports: time to the first rows, how long keys take to act while the capture is read, the
time to read everything, and the peak memory of the process. With ``--filter``: how long a
key takes in the filter box (typing does not filter), and the time from Enter to the
filtered list on screen, the first time (what the filter tests is derived then) and again.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import statistics
import time

from textual import events
from textual.pilot import Pilot
from textual.widgets import Input

from analyzer.findings import Diagnosis
from analyzer.pipeline import Progress, analyze_files
from analyzer.store import Store
from tui.app import DicomtapApp
from tui.screens.main import FILTER_DELAY, MainScreen
from tui.widgets.associations import AssociationTable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture")
    parser.add_argument("--full-records", action="store_true", help="PduRecord objects")
    parser.add_argument("--filter", action="append", default=[], help="filter to time")
    args = parser.parse_args()
    store = Store(keep_pdus=True, compact_pdus=not args.full_records)

    def ingest(store: Store, progress: Progress) -> None:
        analyze_files([args.capture], store, rules=Diagnosis(), progress=progress)

    async def run() -> None:
        app = DicomtapApp(store, ingest, cursor_blink=False)
        started = time.monotonic()
        async with app.run_test(size=(100, 30)) as pilot:
            table = app.screen.query_one(AssociationTable)
            while not table.ids:
                await pilot.pause(0.01)
            first = time.monotonic() - started
            print(f"first rows after {first:.2f} s ({len(table.ids)} rows)")
            lags = []
            while not store.source.finished:
                # a key as the terminal driver delivers it (Pilot.press would also wait for
                # the process to go idle, which it never does while the worker reads)
                t = time.monotonic()
                before = table.cursor
                app.post_message(events.Key("down", None))
                while table.cursor == before:
                    await asyncio.sleep(0.005)
                lags.append(time.monotonic() - t)
                await asyncio.sleep(0.5)
            while len(table.ids) < len(store):
                await pilot.pause(0.1)
            total = time.monotonic() - started
            if lags:
                print(
                    f"key to cursor move while reading: median {statistics.median(lags) * 1000:.0f}"
                    f" ms, max {max(lags) * 1000:.0f} ms ({len(lags)} presses)"
                )
            pdus = sum(a.requestor_pdus.total + a.acceptor_pdus.total for a in store)
            print(f"all {len(store)} associations, {pdus} PDUs, after {total:.1f} s")
            for expression in args.filter:
                await filter_list(pilot, table, expression)
            await pilot.press("end")
            t = time.monotonic()
            await pilot.press("enter")
            await pilot.pause()
            print(f"open the last association: {(time.monotonic() - t) * 1000:.0f} ms")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        print(f"peak memory {rss} MiB")

    asyncio.run(run())


collecting: list[float] = []
"""CPU seconds of each garbage collection since the last clear()."""
_gc_started = [0.0]


def _on_gc(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc_started[0] = time.process_time()
    else:
        collecting.append(time.process_time() - _gc_started[0])


gc.callbacks.append(_on_gc)


async def filter_list(pilot: Pilot[None], table: AssociationTable, expression: str) -> None:
    """Type ``expression`` in the filter box, press Enter, and time it (twice)."""
    screen = pilot.app.screen
    assert isinstance(screen, MainScreen)
    screen.filter_delay = 3600  # typing here is slow: no pause may filter before Enter
    box = screen.query_one("#filter", Input)
    for attempt in ("first", "again"):
        await pilot.press("slash")
        box.value = ""
        keys = []
        for ch in expression:
            t = time.monotonic()
            await pilot.press(ch)
            keys.append(time.monotonic() - t)
        collecting.clear()
        t, cpu = time.monotonic(), time.process_time()
        await pilot.press("enter")
        await pilot.pause()
        took, cpu = time.monotonic() - t, time.process_time() - cpu
        print(
            f"filter {expression!r} ({attempt}): {took * 1000:.0f} ms ({cpu * 1000:.0f} ms of "
            f"CPU, {sum(collecting) * 1000:.0f} ms of it collecting garbage) from Enter to "
            f"{len(table.ids)} rows shown; a key in the box: median "
            f"{statistics.median(keys) * 1000:.0f} ms, max {max(keys) * 1000:.0f} ms"
        )
        await pilot.press("escape")  # the list has the focus: escape clears the box
        await pilot.pause()
    screen.filter_delay = FILTER_DELAY


if __name__ == "__main__":
    main()
