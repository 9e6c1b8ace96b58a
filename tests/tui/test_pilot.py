"""Behaviour of the app, driven by Textual's Pilot at a fixed size, on the bundled samples."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable

import pytest
from rich.console import Console
from textual import events
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, OptionList, Static, TabbedContent, Tree

from analyzer.store import Store
from tui.app import DicomtapApp
from tui.screens.association import AssociationScreen
from tui.screens.exchange import ExchangeScreen
from tui.screens.findings import FindingsScreen
from tui.screens.help import HelpScreen, binding_rows
from tui.screens.main import FILTER_DELAY, MainScreen
from tui.timeline import Kind
from tui.widgets.associations import AssociationTable
from tui.widgets.hexview import HexView
from tui.widgets.timeline import TimelineView

from .conftest import SAMPLES, sample_store, with_findings

SIZE = (100, 30)
Scenario = Callable[[Pilot[None], DicomtapApp], Awaitable[None]]


def run(store: Store, scenario: Scenario, size: tuple[int, int] = SIZE) -> None:
    """Run ``scenario`` against an app over ``store`` (already filled)."""

    async def main() -> None:
        app = DicomtapApp(store, cursor_blink=False)
        app.animation_level = "none"  # tab underlines slide otherwise, and Pilot waits for them
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await scenario(pilot, app)

    asyncio.run(main())


def table(app: DicomtapApp) -> AssociationTable:
    return app.screen.query_one(AssociationTable)


def static_text(app: DicomtapApp, selector: str, width: int = 100) -> str:
    """The text a Static shows (its rich content rendered at ``width``)."""
    console = Console(width=width, file=io.StringIO(), color_system=None)
    with console.capture() as capture:
        console.print(app.screen.query_one(selector, Static).content)
    return capture.get()


def line_text(widget: AssociationTable | TimelineView | HexView, y: int) -> str:
    """What the list shows on its line ``y`` (from the top of the view)."""
    return widget.render_line(y).text


def test_navigation_and_drill_down() -> None:
    store = sample_store("store.pcap", "move_orthanc.pcap")

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        t = table(app)
        assert isinstance(app.screen, MainScreen)
        assert len(t.ids) == 4 and t.cursor == 0
        assert "STORESCU → STORESCP" in line_text(t, 0)
        await pilot.press("down", "down")
        assert t.cursor == 2 and t.current == t.ids[2]
        await pilot.press("end")
        assert t.cursor == 3
        await pilot.press("home", "enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AssociationScreen) and screen.association_id == t.ids[0]
        view = screen.query_one(TimelineView)
        labels = [r.label for r in view.rows]
        assert labels[1] == "A-ASSOCIATE-RQ"
        # drill down from a DIMSE message row to the exchange
        view.move_to(next(i for i, r in enumerate(view.rows) if r.exchange is not None))
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ExchangeScreen)
        assert app.screen.exchange.service == "C-STORE"
        await pilot.press("3")  # the data set tab: decoded when opened
        await pilot.pause()
        tree = app.screen.query_one(Tree)
        node = tree.root.children[0]
        assert node.is_expanded and any("PatientName" in str(c.label) for c in node.children)
        await pilot.press("4")
        await pilot.pause()
        hexview = app.screen.query_one(HexView)
        assert line_text(hexview, 0).startswith("── C-STORE-RQ command set")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, AssociationScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)

    run(store, scenario)


def test_mouse_click_selects_then_opens() -> None:
    store = sample_store("store.pcap")

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        t = table(app)
        await pilot.click(AssociationTable, offset=(10, 1))
        assert t.cursor == 1 and isinstance(app.screen, MainScreen)
        await pilot.click(AssociationTable, offset=(10, 1))
        await pilot.pause()
        assert isinstance(app.screen, AssociationScreen)
        assert app.screen.association_id == t.ids[1]

    run(store, scenario)


def test_filter_box() -> None:
    store = sample_store("store.pcap", "reject_called_ae.pcap", "abort.pcap")

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        t = table(app)
        screen = app.screen
        assert isinstance(screen, MainScreen) and len(t.ids) == 5
        applied: list[str] = []
        apply = screen.apply_filter

        def counted(text: str) -> None:
            applied.append(text)
            apply(text)

        screen.apply_filter = counted  # type: ignore[method-assign]
        await pilot.press("slash")
        box = screen.query_one("#filter", Input)
        assert box.has_focus
        screen.filter_delay = 60  # typing that never pauses (a loaded machine is slow to type)
        await pilot.press(*"outcome=rej")
        await pilot.pause()
        assert len(t.ids) == 5 and applied == []  # typing: not filtered at every key
        screen.filter_delay = FILTER_DELAY
        await pilot.press(*"ected")
        await pilot.pause(FILTER_DELAY * 3)
        assert applied[-1] == "outcome=rejected" and len(applied) <= 5  # when typing paused
        assert [app.index.summaries[i].association.called_ae_title for i in t.ids] == ["WRONGAE"]
        await pilot.press("enter")  # back to the list, filter kept
        assert t.has_focus and len(t.ids) == 1, (box.value, screen.query_filter.text)
        await pilot.press("slash", "ctrl+u", *"calling=STORESCU and not outcome=aborted", "enter")
        await pilot.pause()
        assert len(t.ids) == 2, (box.value, screen.query_filter.text)  # enter applies at once
        assert all(app.index.summaries[i].association.calling_ae_title == "STORESCU" for i in t.ids)
        # a mistake: the list stays as it was; a caret under the box says what and where
        await pilot.press("slash", "end", *" and latency>fast")
        await pilot.pause(FILTER_DELAY * 2)
        assert len(t.ids) == 2
        assert "filter not applied" in static_text(app, "#status", width=160)
        caret = static_text(app, "#filter-error", width=160).rstrip()
        start = len("calling=STORESCU and not outcome=aborted and latency>")
        message = "latency: 'fast' is not a duration with a unit (500ms, 2s, 1.5min, 250us)"
        assert caret == " " * start + "^^^^  " + message
        await pilot.press("backspace")  # editing: the caret goes until the box is read again
        assert not screen.query_one("#filter-error").has_class("shown")
        await pilot.pause(FILTER_DELAY * 2)
        assert screen.query_one("#filter-error").has_class("shown")
        await pilot.press("backspace", "backspace", "backspace", *"2s")
        await pilot.press("enter")
        await pilot.pause()
        assert t.ids == [] and "filter not" not in static_text(app, "#status", width=160)
        assert not screen.query_one("#filter-error").has_class("shown")
        await pilot.press("escape")  # clears the filter
        await pilot.pause()
        assert box.value == "" and len(t.ids) == 5

    run(store, scenario)


def test_a_stale_filter_timer_does_not_undo_the_filter_applied() -> None:
    """A timer stopped after its callback was queued (a loaded machine) fires anyway: the
    text it was about must not replace the filter applied with enter after it."""
    store = sample_store("store.pcap", "reject_called_ae.pcap", "abort.pcap")

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        t = table(app)
        screen = app.screen
        assert isinstance(screen, MainScreen)
        screen.filter_delay = 60
        due: list[Callable[[], object]] = []
        set_timer = screen.set_timer

        def kept(delay: float, callback: Callable[[], object]) -> object:
            due.append(callback)  # what the loop would run had the timer fired
            return set_timer(delay, callback)

        screen.set_timer = kept  # type: ignore[assignment]
        await pilot.press("slash", *"calling=STORESC")
        await pilot.pause()
        await pilot.press(*"U", "enter")
        await pilot.pause()
        assert len(t.ids) == 3 and len(due) >= 2
        due[-2]()  # "calling=STORESC" matches nothing
        await pilot.pause()
        assert len(t.ids) == 3

    run(store, scenario)


def test_keys_typed_right_after_slash_go_to_the_filter_box() -> None:
    """Keys already queued behind / (fast typing, a busy machine) are not lost to the list."""
    store = sample_store("store.pcap", "reject_called_ae.pcap")

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        driver = app._driver
        assert driver is not None
        for key, char in (("slash", "/"), ("o", "o"), ("u", "u")):
            event = events.Key(key, char)
            event.set_sender(app)
            driver.send_message(event)  # all three queued at once, as a terminal can
        await pilot.pause()
        box = app.screen.query_one("#filter", Input)
        assert box.value == "ou"
        await pilot.press("slash", "8")  # in the box, / is a character
        assert box.value == "ou/8"

    run(store, scenario)


def test_filter_given_on_the_command_line() -> None:
    store = sample_store("store.pcap", "reject_called_ae.pcap", "abort.pcap")

    async def main() -> None:
        app = DicomtapApp(
            store, cursor_blink=False, initial_filter="cmd=C-STORE and status=pending"
        )
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert app.screen.query_one("#filter", Input).value == "cmd=C-STORE and status=pending"
            ids = table(app).ids
            assert [app.index.summaries[i].association.calling_ae_title for i in ids] == [
                "STORESCU"
            ]
            assert app.index.summaries[ids[0]].association.outcome == "aborted"

    asyncio.run(main())


def test_sort_keys_and_header_click() -> None:
    store = sample_store("store.pcap", "move_orthanc.pcap")

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        t, screen = table(app), app.screen
        assert isinstance(screen, MainScreen)
        by_start = list(t.ids)
        await pilot.press("r")
        assert t.ids == by_start[::-1]
        await pilot.click("#columns", offset=(1, 0))  # the "#" title: sort by id
        await pilot.pause()
        assert screen.sort_key.value == "id" and t.ids == sorted(t.ids)

    run(store, scenario)


def test_help_lists_every_binding() -> None:
    store = sample_store("echo.pcap")

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        shown = static_text(app, "#help-text", width=200)
        for _, _keys, what in binding_rows():
            assert what in shown
        for needed in ("Quit", "Help", "Filter", "Next finding", "Previous finding", "Back",
                       "Search", "Open"):  # fmt: skip
            assert needed in [what for _, _, what in binding_rows()]
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)

    run(store, scenario)


def test_search_in_the_timeline() -> None:
    store = sample_store("store.pcap")

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AssociationScreen)
        view = screen.query_one(TimelineView)
        await pilot.press("slash")
        box = screen.query_one("#search", Input)
        bar = screen.query_one("#search-bar")
        assert bar.has_class("shown") and bar.region.height == 1 and box.has_focus
        await pilot.press(*"c-store-rq")
        await pilot.pause()
        assert view.rows[view.cursor].label.startswith("C-STORE-RQ #1")
        assert static_text(app, "#search-count").startswith("1/4")  # four C-STOREs
        await pilot.press("enter")
        assert view.rows[view.cursor].label.startswith("C-STORE-RQ #2")
        await pilot.press("down")
        await pilot.pause()
        assert view.rows[view.cursor].label.startswith("C-STORE-RQ #3")
        assert static_text(app, "#search-count").startswith("3/4")
        await pilot.press("up", "up", "up")  # wraps round to the last
        await pilot.pause()
        assert view.rows[view.cursor].label.startswith("C-STORE-RQ #4")
        # every match is highlighted, not only the one under the cursor
        match = view.style("timeline--match").bgcolor
        first = view.matches[0]
        assert match is not None
        assert any(seg.style and seg.style.bgcolor == match for seg in view.render_row(first, 90))
        others = [i for i in range(len(view.rows)) if i not in view.matches]
        assert not any(
            seg.style and seg.style.bgcolor == match for seg in view.render_row(others[0], 90)
        )
        await pilot.press("escape")  # closes the search, stays on the screen
        await pilot.pause()
        assert not bar.has_class("shown") and isinstance(app.screen, AssociationScreen)
        await pilot.press("greater_than_sign")  # the matches stay: > steps on from the view
        await pilot.pause()
        assert view.rows[view.cursor].label.startswith("C-STORE-RQ #1")
        await pilot.press("n")  # "next finding" is still n: no clash
        await pilot.pause()
        assert view.rows[view.cursor].label.startswith("C-STORE-RQ #1")

    run(store, scenario)


def test_next_finding_everywhere() -> None:
    store = with_findings(sample_store("store.pcap", "reject_called_ae.pcap", "abort.pcap"))

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        t = table(app)
        ids = [i for i in t.ids if app.index.summaries[i].findings]
        assert len(ids) == 4 and t.ids[0] == ids[0]  # the made-up warning is on the first
        for expected in [*ids[1:], ids[0]]:  # n goes down the list and wraps around
            await pilot.press("n")
            assert t.current == expected
        await pilot.press("N")
        assert t.current == ids[-1]
        # in an association: n jumps to the finding's row on the timeline
        rejected = next(i for i in t.ids if app.index.summaries[i].association.reject)
        t.move_to(t.ids.index(rejected))
        await pilot.press("enter")
        await pilot.pause()
        view = app.screen.query_one(TimelineView)
        await pilot.press("n")
        row = view.rows[view.cursor]
        assert row.kind is Kind.FINDING and row.finding is not None
        assert row.finding.code == "association-rejected"
        assert "Hint for association-rejected" in static_text(app, "#row-detail")
        await pilot.press("4")
        await pilot.pause()
        options = app.screen.query_one(OptionList)
        assert options.option_count == 1
        await pilot.press("escape")
        await pilot.pause()
        # the findings view, and a jump to the evidence
        await pilot.press("f")
        await pilot.pause()
        assert isinstance(app.screen, FindingsScreen)
        findings = app.screen.findings
        assert len(findings) == 4 and findings[-1].code == "slow-response"  # worst first
        grid = app.screen.query_one(DataTable)
        await pilot.press("n", "n")
        assert grid.cursor_row == 2
        target = findings[2]
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AssociationScreen)
        assert screen.association_id == target.evidence.association
        view = screen.query_one(TimelineView)
        assert view.rows[view.cursor].finding is target
        assert screen.query_one(TabbedContent).active == "timeline"

    run(store, scenario)


def test_negotiation_tab_marks_rejected_contexts() -> None:
    store = sample_store("reject_context.pcap")

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("2")
        await pilot.pause()
        text = static_text(app, "#contexts", width=200)
        assert "transfer-syntaxes-not-supported" in text and "abstract-syntax-not-supported" in text

    run(store, scenario)


def test_quit() -> None:
    store = sample_store("echo.pcap")

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code == 0 and not app.is_running

    run(store, scenario)


def test_readable_at_80_by_24() -> None:
    store = with_findings(sample_store("reject_called_ae.pcap"))

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        row = line_text(table(app), 0)
        assert len(row) == table(app).scrollable_content_region.width >= 79
        assert "ECHOSCU → WRONGAE" in row and "rejected" in row and "✖ associati" in row
        await pilot.press("enter")
        await pilot.pause()
        view = app.screen.query_one(TimelineView)
        assert view.size.height >= 10
        assert "A-ASSOCIATE-RJ" in "".join(line_text(view, y) for y in range(view.size.height))

    run(store, scenario, size=(80, 24))


ALL_SAMPLES = sorted(p.name for p in SAMPLES.glob("*.pcap*"))


@pytest.mark.slow
@pytest.mark.parametrize("sample", ALL_SAMPLES)
def test_every_view_of_every_sample_opens(sample: str) -> None:
    """Each association opens, with each tab; its first exchange opens, with each tab."""
    store = sample_store(sample)
    assert len(store) > 0

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        for association in store.associations():
            screen = AssociationScreen(association.id)
            await app.push_screen(screen)
            for tab in ("negotiation", "exchanges", "findings", "timeline"):
                screen.action_tab(tab)
                await pilot.pause()
            exchanges = store.exchanges(association.id)
            if exchanges:
                view = ExchangeScreen(exchanges[0])
                await app.push_screen(view)
                for tab in ("command", "dataset", "hex", "summary"):
                    view.action_tab(tab)
                    await pilot.pause()
                app.pop_screen()
            app.pop_screen()
            await pilot.pause()
            assert isinstance(app.screen, MainScreen)

    run(store, scenario)


def test_an_empty_capture() -> None:
    store = Store(keep_pdus=True)
    store.finish()

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        t = table(app)
        assert t.ids == []
        await pilot.press("enter", "n", "down", "f")
        await pilot.pause()
        assert isinstance(app.screen, FindingsScreen)
        await pilot.press("enter", "escape")
        await pilot.pause()
        assert isinstance(app.screen, MainScreen)

    run(store, scenario)
