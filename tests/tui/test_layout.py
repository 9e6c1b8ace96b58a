"""How the screens use a small terminal, and what the colours say."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import Label, Static, TabbedContent

from tui.app import DicomtapApp
from tui.core import outcome_look
from tui.rows import layout
from tui.screens.association import AssociationScreen
from tui.widgets.associations import AssociationTable
from tui.widgets.timeline import TimelineView

from .conftest import sample_store, with_findings
from .test_pilot import run, static_text

SMALL = (80, 24)


def test_association_header_is_compact_at_80_by_24() -> None:
    store = sample_store("store.pcap")

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AssociationScreen) and screen.has_class("compact")
        view = screen.query_one(TimelineView)
        # title, charts and tabs above the timeline: 4 rows, and the timeline gets the rest
        assert view.region.y - screen.query_one("#assoc-title", Static).region.y <= 5
        assert view.region.height >= 14
        title = screen.query_one("#assoc-title", Static)
        assert title.region.height == 1
        assert "released normally" in static_text(app, "#assoc-title", 200)
        await pilot.press("2")
        await pilot.pause()
        assert screen.query_one(TabbedContent).active == "negotiation"

    run(store, scenario, SMALL)


def test_wide_terminals_keep_the_full_header() -> None:
    store = sample_store("store.pcap")

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert not screen.has_class("compact")
        text = static_text(app, "#assoc-title", 160)
        assert "127.0.0.1:50718 → 127.0.0.1:11112" in text and "317.9 KiB" in text
        assert "peak" in str(screen.query_one("#throughput-caption", Label).content)

    run(store, scenario, (160, 48))


def test_transfer_syntax_names_take_one_line_each_at_80_columns() -> None:
    from rich.console import Console

    from tui.screens import negotiation

    store = sample_store("reject_context.pcap")
    a = store.associations()[0]
    console = Console(width=78, color_system=None)
    with console.capture() as capture:
        console.print(negotiation.contexts(a, lambda name: console.get_style("none")))
    lines = capture.get().splitlines()
    proposing = [
        c
        for c in a.contexts
        if any("1.2.840.10008.1.2.4" in t for t in c.proposed_transfer_syntaxes)
    ]
    jpeg = [line for line in lines if "JPEG" in line]
    # one line per proposed JPEG syntax, cut with an ellipsis, not folded over several lines
    assert len(jpeg) == len(proposing) and all("…" in line for line in jpeg)
    assert not any("Prediction" in line or "Non-Hierarchi" in line for line in lines)


def test_outcome_colour_follows_the_outcome_not_the_findings() -> None:
    store = with_findings(sample_store("fail_dimse_status.pcap"))
    a = store.associations()[0]
    assert str(a.outcome) == "released"

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        table = app.screen.query_one(AssociationTable)
        summary = app.index.summaries[a.id]
        assert summary.look.value == "failed"  # a failed C-STORE: the row's number is red
        strip = table.render_row(0, 100)
        outcome = next(seg for seg in strip if seg.text.strip() == "released")
        assert outcome.style == table.style(f"assoc--{outcome_look(a.outcome).value}")
        assert outcome.style == table.style("assoc--ok")
        number = next(seg for seg in strip if seg.text.strip() == str(a.id))
        assert number.style == table.style("assoc--failed")

    run(store, scenario)


def test_the_finding_column_is_readable_at_80_columns() -> None:
    store = with_findings(sample_store("reject_called_ae.pcap"))

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        table = app.screen.query_one(AssociationTable)
        assert "association-rejected" in table.render_line(0).text
        assert any(c.key.value == "finding" for c, _ in layout(table.size.width))

    run(store, scenario, SMALL)
