"""A store that keeps growing: associations appear and update as they happen; a large
capture shows its first rows long before it has been read."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from analyzer.pipeline import Progress, analyze_files
from analyzer.store import Store
from tui.app import DicomtapApp
from tui.screens.association import THREAD_ABOVE, AssociationScreen
from tui.timeline import Kind
from tui.widgets.associations import AssociationTable
from tui.widgets.timeline import TimelineView

from .capture_gen import Shape, write_capture
from .conftest import finding, sample_store

WAIT = 30.0
"""Longest wait for anything the UI should do by itself (bounded, never forever)."""


async def until(pilot: Pilot[None], condition: object, timeout: float = WAIT) -> float:
    """Pause until ``condition()`` holds; returns the seconds it took. Fails on timeout."""
    assert callable(condition)
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {condition}")
        await pilot.pause(0.05)
    return time.monotonic() - start


def test_associations_appear_and_update_while_a_thread_writes() -> None:
    source = sample_store("store.pcap")
    first, second = sorted(source.associations(), key=lambda a: a.id)
    pdus = source.pdus(first.id)
    store = Store(keep_pdus=True, compact_pdus=True)
    step = threading.Event()
    done = threading.Event()

    def writer() -> None:
        # like a proxy relaying: the association opens, PDUs flow, it ends
        store.put_association(dataclasses.replace(first, outcome=None, end_ts=None))
        for p in pdus[:2]:
            store.add_pdu(p)
        step.wait(WAIT)
        for p in pdus[2:]:
            store.add_pdu(p)
        for e in source.exchanges(first.id):
            store.add_exchange(e)
        store.put_association(first)
        store.add_finding(finding(first.id, "live-test", frames=(first.end_frame or 0,)))
        store.put_association(second)
        store.finish()
        done.set()

    async def main() -> None:
        app = DicomtapApp(store, cursor_blink=False, flush_every=0.05)
        async with app.run_test(size=(100, 30)) as pilot:
            table = app.screen.query_one(AssociationTable)
            assert table.ids == []
            thread = threading.Thread(target=writer, daemon=True)
            thread.start()
            await until(pilot, lambda: len(table.ids) == 1)
            assert "…" in table.render_line(0).text  # still in progress
            await pilot.press("enter")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, AssociationScreen)
            view = screen.query_one(TimelineView)
            assert [r.label for r in view.rows if r.kind is Kind.PDU] == [
                "A-ASSOCIATE-RQ",
                "A-ASSOCIATE-AC",
            ]
            step.set()
            await until(pilot, lambda: any(r.kind is Kind.END for r in view.rows))
            assert any(r.kind is Kind.FINDING for r in view.rows)
            assert len([r for r in view.rows if r.kind is Kind.MESSAGE]) == 8
            await pilot.press("escape")
            await until(pilot, lambda: len(table.ids) == 2)
            assert "released" in table.render_line(0).text
            assert "✖ live-test" in table.render_line(0).text
            thread.join(WAIT)
            assert done.is_set()

    asyncio.run(main())


def test_the_bars_follow_a_growing_store_without_a_layout_of_the_screen() -> None:
    """While a capture is read the title and status bars change at every batch; they keep
    their size, so they are redrawn alone: a layout of the screen repaints every widget, and
    doing it several times a second took a large share of the CPU from the reading."""
    source = sample_store("store.pcap", "reject_called_ae.pcap", "abort.pcap")
    store = Store(keep_pdus=True, compact_pdus=True)

    async def main() -> None:
        app = DicomtapApp(store, cursor_blink=False, flush_every=3600)
        async with app.run_test(size=(100, 30)) as pilot:
            table = app.screen.query_one(AssociationTable)
            layouts: list[str] = []
            for bar in ("#title", "#status"):
                widget = app.screen.query_one(bar, Static)
                plain = widget.refresh

                def refresh(*args: Any, _bar: str = bar, _plain: Any = plain, **kw: Any) -> Any:
                    if kw.get("layout"):
                        layouts.append(_bar)
                    return _plain(*args, **kw)

                widget.refresh = refresh  # type: ignore[method-assign]
            for n, a in enumerate(sorted(source.associations(), key=lambda a: a.id), 1):
                store.put_association(a)
                app.flush()
                await until(pilot, lambda n=n: len(table.ids) == n)
                await pilot.pause()
                title = str(app.screen.query_one("#title", Static).content)
                assert f"{n} association" in title
            assert layouts == []

    asyncio.run(main())


def test_a_list_that_grows_under_its_scrollbar_is_not_laid_out_again() -> None:
    """Rows added to a list whose scrollbar is already shown change only the scrollbar's
    thumb: the list does not ask for a layout of the screen at every batch of a capture."""
    (model,) = sample_store("echo.pcap").associations()
    store = Store()

    def add(first: int, count: int) -> None:
        for n in range(first, first + count):
            store.put_association(dataclasses.replace(model, id=n, start_ts=model.start_ts + n))

    async def main() -> None:
        app = DicomtapApp(store, cursor_blink=False, flush_every=3600)
        async with app.run_test(size=(100, 30)) as pilot:
            table = app.screen.query_one(AssociationTable)
            # the scrollbar appears, then the width it leaves is known
            for first, count in ((1, 40), (41, 820)):
                add(first, count)
                app.flush()
                await until(pilot, lambda n=first + count - 1: len(table.ids) == n)
                await pilot.pause()
            assert table.show_vertical_scrollbar
            layouts: list[bool] = []
            plain = table.refresh

            def refresh(*args: Any, **kw: Any) -> Any:
                layouts.append(bool(kw.get("layout")))
                return plain(*args, **kw)

            table.refresh = refresh  # type: ignore[method-assign]
            for first in (861, 881):
                add(first, 20)
                app.flush()
                await until(pilot, lambda first=first: len(table.ids) == first + 19)
                await pilot.pause()
            assert layouts and not any(layouts)  # redrawn, never laid out
            assert table.virtual_size.height == 900
            assert table.vertical_scrollbar.window_virtual_size == 900
            await pilot.press("end")
            assert table.cursor == 899 and table.scroll_offset.y == table.max_scroll_y > 0
            assert table.render_line(table.size.height - 1).text.lstrip().startswith("900 ")

    asyncio.run(main())


@pytest.mark.slow
def test_large_capture_shows_rows_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "many.pcap"
    count = 5000
    with path.open("wb") as f:
        write_capture(f, count, Shape(echoes=1, stores=1, fragments=20))
    store = Store(keep_pdus=True, compact_pdus=True)

    def ingest(store: Store, progress: Progress) -> None:
        analyze_files([path], store, progress=progress)

    async def main() -> None:
        app = DicomtapApp(store, ingest, cursor_blink=False)
        started = time.monotonic()
        async with app.run_test(size=(100, 30)) as pilot:
            table = app.screen.query_one(AssociationTable)
            first_rows = await until(pilot, lambda: len(table.ids) > 0)
            assert not store.source.finished, "the whole capture was read before any row showed"
            shown_early = len(table.ids)
            assert shown_early < count
            assert "MOD01 → PACS" in table.render_line(0).text
            # the UI answers keys while the worker reads
            await until(pilot, lambda: len(table.ids) > 3)
            await pilot.press("down", "down")
            assert table.cursor == 2 and not store.source.finished
            await until(pilot, lambda: store.source.finished, timeout=600)
            await until(pilot, lambda: len(table.ids) == count)
            total = time.monotonic() - started
            print(f"\n{count} associations: first rows after {first_rows:.2f} s "
                  f"({shown_early} shown), all {count} after {total:.1f} s")  # fmt: skip
            assert table.cursor == 2  # live updates did not move the cursor
            await pilot.press("end")
            assert table.cursor == count - 1

    asyncio.run(main())


@pytest.mark.slow
def test_a_long_association_is_read_in_a_worker(tmp_path: Path) -> None:
    path = tmp_path / "long.pcap"
    with path.open("wb") as f:
        write_capture(f, 1, Shape(echoes=0, stores=1, fragments=THREAD_ABOVE + 5, fragment_size=8))
    store = Store(keep_pdus=True, compact_pdus=True)
    analyze_files([path], store)

    async def main() -> None:
        app = DicomtapApp(store, cursor_blink=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("enter")
            screen = app.screen
            assert isinstance(screen, AssociationScreen)
            view = screen.query_one(TimelineView)
            await until(pilot, lambda: len(view.rows) > 0)
            data = [r for r in view.rows if r.kind is Kind.MESSAGE and r.from_requestor]
            assert len(data) == 1 and data[0].pdus == THREAD_ABOVE + 6  # command + fragments
            assert data[0].label.startswith("C-STORE-RQ #1")

    asyncio.run(main())


def test_a_failing_ingest_is_reported_not_raised() -> None:
    source = sample_store("echo.pcap")

    def ingest(store: Store, progress: Progress) -> None:
        for a in source.associations():
            store.put_association(a)
        progress(10, 100)
        raise OSError("the capture pipe closed")

    async def main() -> None:
        store = Store()
        app = DicomtapApp(store, ingest, cursor_blink=False, flush_every=0.05)
        async with app.run_test(size=(100, 30)) as pilot:
            table = app.screen.query_one(AssociationTable)
            await until(pilot, lambda: app.ingest_error is not None)
            assert app.ingest_error == "the capture pipe closed"
            await until(pilot, lambda: len(table.ids) == 1)  # what was read is still shown
            messages = [n.message for n in app._notifications]
            assert "the capture pipe closed" in messages
            title = app.screen.query_one("#title", Static).content
            assert "stopped" in str(title)

    asyncio.run(main())


def test_quitting_a_live_source_asks_then_counts_down_while_it_stops() -> None:
    source = sample_store("store.pcap")
    first = min(source.associations(), key=lambda a: a.id)
    told_to_stop = threading.Event()
    finished = threading.Event()

    def ingest(store: Store, progress: Progress) -> None:
        # a relay: one association still open when asked to stop, which then ends
        store.put_association(dataclasses.replace(first, outcome=None, end_ts=None))
        try:
            while True:
                progress(0, -1)
                time.sleep(0.02)
        except BaseException:
            told_to_stop.set()
            time.sleep(1.0)  # the grace period: the open association finishes
            store.put_association(first)
            finished.set()
            raise

    async def main() -> None:
        from tui.screens.quit import ConfirmQuitScreen

        store = Store()
        app = DicomtapApp(store, ingest, cursor_blink=False, flush_every=0.05, stop_grace=5)
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, app.is_live)
            await pilot.press("q")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmQuitScreen) and app.is_running
            assert "Stop the source and quit?" in str(
                app.screen.query_one("#quit-question", Static).content
            )
            await pilot.press("n")  # keep running
            await pilot.pause(0.2)
            assert not isinstance(app.screen, ConfirmQuitScreen)
            assert app.is_running and not told_to_stop.is_set()
            await pilot.press("q", "y")
            await until(pilot, told_to_stop.is_set)
            assert app.is_running  # not a blank screen: the countdown shows
            question = str(app.screen.query_one("#quit-question", Static).content)
            assert "Stopping" in question and "s left" in question
            hint = str(app.screen.query_one("#quit-hint", Static).content)
            assert "1 association still open" in hint
            await until(pilot, lambda: not app.is_running)
        assert finished.is_set()

    asyncio.run(main())
