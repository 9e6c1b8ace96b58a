"""Screenshots of every screen on sample captures, compared with the accepted ones.

Deterministic: the store is filled before the app starts (no worker), times are shown in
UTC from the capture (never "now"), the input cursor does not blink, and findings are made
by hand. Update after a deliberate change with ``pytest tests/tui --snapshot-update`` and
look at the new SVGs before committing them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from textual.pilot import Pilot

from analyzer.store import Store
from tui.app import DicomtapApp
from tui.widgets.timeline import TimelineView

from .conftest import sample_store, with_findings

Compare = Callable[..., bool]
WIDE = (100, 30)
SMALL = (80, 24)
LARGE = (160, 48)


def app_for(*samples: str, findings: bool = True) -> DicomtapApp:
    store: Store = sample_store(*samples)
    if findings:
        with_findings(store)
    return DicomtapApp(store, cursor_blink=False)


MIXED = ("store.pcap", "move_orthanc.pcap", "reject_called_ae.pcap", "abort.pcap")


class TestAssociationList:
    def test_list(self, snap_compare: Compare) -> None:
        assert snap_compare(app_for(*MIXED), terminal_size=WIDE)

    def test_list_80x24(self, snap_compare: Compare) -> None:
        assert snap_compare(app_for(*MIXED), terminal_size=SMALL)

    def test_list_160x48(self, snap_compare: Compare) -> None:
        assert snap_compare(app_for(*MIXED), terminal_size=LARGE)

    def test_save_dialog_80x24(self, snap_compare: Compare) -> None:
        assert snap_compare(app_for(*MIXED), press=["w"], terminal_size=SMALL)

    def test_filtered(self, snap_compare: Compare) -> None:
        press = ["slash", *"outcome=rejected or code=association-aborted", "enter"]
        assert snap_compare(app_for(*MIXED), press=press, terminal_size=WIDE)

    def test_sorted_by_bytes_descending(self, snap_compare: Compare) -> None:
        async def sort(pilot: Pilot[Any]) -> None:
            screen = pilot.app.screen
            from tui.core import SortKey

            screen.sort_key, screen.reverse = SortKey.BYTES, True  # type: ignore[attr-defined]
            screen.refresh_rows()  # type: ignore[attr-defined]

        assert snap_compare(app_for(*MIXED), run_before=sort, terminal_size=WIDE)


class TestAssociationView:
    def test_timeline_with_finding(self, snap_compare: Compare) -> None:
        # abort.pcap's second association: the acceptor aborts a C-STORE
        assert snap_compare(app_for("abort.pcap"), press=["down", "enter", "n"], terminal_size=WIDE)

    def test_timeline_collapsed_data_set_80x24(self, snap_compare: Compare) -> None:
        assert snap_compare(app_for("store.pcap"), press=["enter"], terminal_size=SMALL)

    def test_timeline_scrolled_to_end(self, snap_compare: Compare) -> None:
        async def to_end(pilot: Pilot[Any]) -> None:
            await pilot.press("enter")
            await pilot.pause()
            pilot.app.screen.query_one(TimelineView).action_last()

        assert snap_compare(app_for("get_orthanc.pcap"), run_before=to_end, terminal_size=WIDE)

    def test_negotiation_rejected_contexts(self, snap_compare: Compare) -> None:
        app = app_for("reject_context.pcap")
        assert snap_compare(app, press=["enter", "2"], terminal_size=WIDE)

    def test_exchanges_tab(self, snap_compare: Compare) -> None:
        assert snap_compare(app_for("store.pcap"), press=["enter", "3"], terminal_size=WIDE)

    def test_findings_tab(self, snap_compare: Compare) -> None:
        app = app_for("reject_called_ae.pcap")
        assert snap_compare(app, press=["enter", "4"], terminal_size=WIDE)

    def test_search(self, snap_compare: Compare) -> None:
        press = ["enter", "slash", *"release"]
        assert snap_compare(app_for("echo.pcap"), press=press, terminal_size=WIDE)

    def test_search_count_80x24(self, snap_compare: Compare) -> None:
        press = ["enter", "slash", *"c-store", "down"]
        assert snap_compare(app_for("store.pcap"), press=press, terminal_size=SMALL)

    def test_timeline_160x48(self, snap_compare: Compare) -> None:
        assert snap_compare(app_for("move_orthanc.pcap"), press=["enter"], terminal_size=LARGE)

    def test_negotiation_80x24(self, snap_compare: Compare) -> None:
        app = app_for("reject_context.pcap")
        assert snap_compare(app, press=["enter", "2"], terminal_size=SMALL)


class TestExchangeView:
    # move_orthanc.pcap: the sub-association ORTHANC → STORESCP, its first C-STORE
    OPEN: ClassVar[list[str]] = ["down", "enter", "3", "enter"]

    def test_summary(self, snap_compare: Compare) -> None:
        assert snap_compare(app_for("move_orthanc.pcap"), press=self.OPEN, terminal_size=WIDE)

    def test_command(self, snap_compare: Compare) -> None:
        press = [*self.OPEN, "2"]
        assert snap_compare(app_for("move_orthanc.pcap"), press=press, terminal_size=WIDE)

    def test_data_set_tree(self, snap_compare: Compare) -> None:
        press = [*self.OPEN, "3"]
        assert snap_compare(app_for("move_orthanc.pcap"), press=press, terminal_size=WIDE)

    def test_data_set_search_80x24(self, snap_compare: Compare) -> None:
        press = [*self.OPEN, "slash", *"patient"]
        assert snap_compare(app_for("move_orthanc.pcap"), press=press, terminal_size=SMALL)

    def test_data_set_tree_160x48(self, snap_compare: Compare) -> None:
        press = [*self.OPEN, "3"]
        assert snap_compare(app_for("move_orthanc.pcap"), press=press, terminal_size=LARGE)

    def test_hex(self, snap_compare: Compare) -> None:
        press = [*self.OPEN, "4"]
        assert snap_compare(app_for("move_orthanc.pcap"), press=press, terminal_size=WIDE)


class TestOtherScreens:
    def test_findings(self, snap_compare: Compare) -> None:
        assert snap_compare(app_for(*MIXED), press=["f"], terminal_size=WIDE)

    def test_no_findings(self, snap_compare: Compare) -> None:
        app = app_for("echo.pcap", findings=False)
        assert snap_compare(app, press=["f"], terminal_size=SMALL)

    def test_help(self, snap_compare: Compare) -> None:
        assert snap_compare(app_for("echo.pcap"), press=["question_mark"], terminal_size=WIDE)
