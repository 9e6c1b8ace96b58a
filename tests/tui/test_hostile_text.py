"""Wire text never reaches the terminal raw, nor as markup, on any screen of the UI.

The captures are the crafted ones of tests/data/repros (escape sequences in AE titles, an
OSC sequence in a UID, timestamps past the year 9999) and the hostile association of
tests/hostile.py (escapes, BEL, NUL and Textual markup in every kind of wire string). Each
screen is checked as Textual would draw it (its SVG screenshot holds exactly the text of the
cells sent to the terminal).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from textual.pilot import Pilot

from analyzer.findings import Diagnosis
from analyzer.pipeline import analyze_files
from analyzer.store import Store
from tests.hostile import write_hostile_capture
from tui.app import DicomtapApp
from tui.screens.association import AssociationScreen
from tui.screens.exchange import ExchangeScreen
from tui.screens.findings import FindingsScreen
from tui.widgets.associations import AssociationTable
from tui.widgets.timeline import TimelineView

REPROS = Path(__file__).resolve().parents[1] / "data" / "repros"
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Control characters (newline and tab aside: the SVG's own layout) and bidi controls."""


def _store(tmp_path: Path) -> Store:
    store = Store(keep_pdus=True, compact_pdus=True)
    paths = [
        REPROS / "ae_escape.pcap",
        REPROS / "uid_warning_escape.pcap",
        REPROS / "iso_time_echo.pcapng",  # a C-ECHO in the year 586438: times on every screen
        write_hostile_capture(tmp_path / "hostile.pcap"),
    ]
    analyze_files(paths, store, rules=Diagnosis())
    return store


def test_no_screen_shows_raw_control_characters_or_reads_wire_text_as_markup(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    shown: list[str] = []

    async def look(app: DicomtapApp, pilot: Pilot[None], where: str) -> None:
        await pilot.pause()
        svg = app.export_screenshot()
        raw = RAW_CONTROL.findall(svg)
        assert not raw, (where, raw[:5])
        shown.append(svg.replace("&#160;", " "))

    async def every_tab(app: DicomtapApp, pilot: Pilot[None], where: str) -> None:
        for tab in ("1", "2", "3", "4"):
            await pilot.press(tab)
            await look(app, pilot, f"{where}, tab {tab}")

    async def main() -> None:
        app = DicomtapApp(store, cursor_blink=False)
        app.animation_level = "none"
        async with app.run_test(size=(180, 50)) as pilot:
            await look(app, pilot, "association list")
            count = len(app.screen.query_one(AssociationTable).ids)
            for row in range(count):  # every association: the repros and the hostile one
                app.screen.query_one(AssociationTable).move_to(row)
                await pilot.press("enter")
                await pilot.pause()
                assert isinstance(app.screen, AssociationScreen)
                await every_tab(app, pilot, f"association {row + 1}")
                await pilot.press("1")
                view = app.screen.query_one(TimelineView)
                for i, r in enumerate(view.rows):  # the detail line of every timeline row
                    view.move_to(i)
                    await look(app, pilot, f"association {row + 1}, timeline row {r.label}")
                exchange = next((i for i, r in enumerate(view.rows) if r.exchange), None)
                if exchange is not None:
                    view.move_to(exchange)
                    await pilot.press("enter")
                    await pilot.pause()
                    assert isinstance(app.screen, ExchangeScreen)
                    await every_tab(app, pilot, "exchange")
                    await pilot.press("escape")
                await pilot.press("escape")
                await pilot.pause()
            await pilot.press("f")
            await pilot.pause()
            assert isinstance(app.screen, FindingsScreen)
            for _ in app.screen.findings:
                await look(app, pilot, "findings")
                await pilot.press("down")

    asyncio.run(main())
    everything = "\n".join(shown)
    # the wire text is there, escaped, and its markup is shown as text, not obeyed
    assert "CAL\\x1b[31mLED" in everything  # ae_escape.pcap's called AE title
    assert "1.2.840.\\x1b]0;PWNED\\x07.1" in everything  # uid_warning_escape.pcap's UID
    assert "[b]MOD\\x1b[31mX" in everything  # hostile calling AE title, findings table
    assert "[red]Doe\\x1b]0;PWN\\x07^Jo" in everything  # a data set value, tree label
    assert "[@click=quit]X\\x1b[5m" in everything  # another, with a Textual action
    assert "disk full\\x0a[b]FORGED LINE\\x1b[2J" in everything  # the error comment
    assert "+586438-03-27T03:49:22.812251Z" in everything  # iso_time_echo.pcapng's start
