"""Workflow links in the terminal UI: the association header names them, ``l`` follows a
C-MOVE to its sub-association and back, and a storage commitment request to its report."""

from __future__ import annotations

from textual.pilot import Pilot

from analyzer.findings import Diagnosis
from analyzer.pipeline import analyze_files
from analyzer.store import Store
from tui.app import DicomtapApp
from tui.screens.association import AssociationScreen
from tui.screens.exchange import ExchangeScreen

from .conftest import SAMPLES
from .test_pilot import run, static_text


def linked_store(name: str) -> Store:
    """As ``dicomtap tui`` fills it: with the rules, so with the linker."""
    store = Store(keep_pdus=True, compact_pdus=True)
    analyze_files([SAMPLES / name], store, rules=Diagnosis())
    return store


def test_from_a_move_to_its_sub_association_and_back() -> None:
    store = linked_store("move_orthanc.pcap")

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        await pilot.press("enter")  # association 1: MOVESCU → ORTHANC
        await pilot.pause()
        assert isinstance(app.screen, AssociationScreen) and app.screen.association_id == 1
        assert "workflow: C-MOVE 1 → #2" in static_text(app, "#assoc-title")
        await pilot.press("3", "enter")  # the C-MOVE exchange
        await pilot.pause()
        assert isinstance(app.screen, ExchangeScreen) and app.screen.exchange.service == "C-MOVE"
        await pilot.press("l")
        await pilot.pause()
        sub = app.screen
        assert isinstance(sub, AssociationScreen) and sub.association_id == 2
        assert "opened for C-MOVE 1 of #1" in static_text(app, "#assoc-title")
        await pilot.press("l")  # and back to the C-MOVE
        await pilot.pause()
        back = app.screen
        assert isinstance(back, ExchangeScreen)
        assert (back.exchange.association, back.exchange.service) == (1, "C-MOVE")

    run(store, scenario)


def test_from_a_commitment_request_to_the_reverse_association() -> None:
    store = linked_store("commitment_reverse_orthanc.pcap")

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        await pilot.press("enter")
        await pilot.pause()
        assert "workflow: N-ACTION 1 → #2" in static_text(app, "#assoc-title")
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, AssociationScreen) and app.screen.association_id == 2
        assert "opened for N-ACTION 1 of #1" in static_text(app, "#assoc-title")

    run(store, scenario)


def test_without_links_nothing_changes() -> None:
    store = linked_store("echo.pcap")

    async def scenario(pilot: Pilot[None], app: DicomtapApp) -> None:
        await pilot.press("enter")
        await pilot.pause()
        assert "workflow" not in static_text(app, "#assoc-title")
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, AssociationScreen) and app.screen.association_id == 1

    run(store, scenario)


def test_a_link_made_while_the_app_runs_refreshes_both_ends() -> None:
    from tui.core import StoreIndex

    whole = linked_store("move_orthanc.pcap")
    store = Store()
    for a in whole.associations():
        store.put_association(a)
    index = StoreIndex(store)
    index.drain()
    (link,) = whole.links(1)
    store.add_link(link)
    update = index.drain()
    assert update is not None and update.touches(1) and update.touches(2)
