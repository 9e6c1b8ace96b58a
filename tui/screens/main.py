"""The first screen: every association, filtered and sorted, updated as the store grows."""

from __future__ import annotations

import os
from typing import ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.timer import Timer
from textual.widgets import Footer, Input, Static

from analyzer.filter import FilterError
from analyzer.reports.common import outcome_text, plural, size_text
from tui import wireshark
from tui.core import Look, SortKey
from tui.messages import StoreUpdated
from tui.query import Query, parse
from tui.screens.base import BaseScreen, QueryInput, Throttle
from tui.widgets.associations import AssociationTable, ColumnHeader

_SORT_ORDER = list(SortKey)
FILTER_HINT = "filter (/): called=PACS* and cmd=C-STORE and latency>2s · ? lists the fields"
FILTER_DELAY = 0.2
"""Seconds the filter box waits for typing to pause before filtering the list again."""


class MainScreen(BaseScreen):
    """The association list with its filter box."""

    BINDINGS: ClassVar[list[BindingType]] = [
        # priority: decided as the key arrives, so keys typed right after / reach the box
        Binding("slash", "filter", "Filter", key_display="/", priority=True),
        Binding("escape", "back", "Clear filter", show=False),
        Binding("n", "next_finding(1)", "Next finding"),
        Binding("N", "next_finding(-1)", "Previous finding", show=False),
        Binding("s", "sort", "Sort"),
        Binding("r", "reverse", "Reverse sort", show=False),
        Binding("w", "save_shown", "Save"),
        Binding("W", "save_current", "Save the highlighted association", show=False),
        Binding("y", "copy_filter", "Copy a Wireshark filter of the association", show=False),
        Binding("Y", "copy_ids", "Copy its AE titles", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.query_filter: Query = Query()
        """The filter applied (the last valid text of the box)."""
        self.filter_error: FilterError | None = None
        """What is wrong with the box's text, if anything (the list keeps the last filter)."""
        self._filter_timer: Timer | None = None
        self._filter_typed = 0  # counts edits and applies: a timer knows whether it is stale
        self.filter_delay = FILTER_DELAY
        self.sort_key = SortKey.START
        self.reverse = False
        self._throttle = Throttle(self, self.refresh_rows)
        self._shown: dict[str, Text] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="title", classes="title-bar")
        yield QueryInput(placeholder=FILTER_HINT, id="filter", classes="query")
        yield Static(id="filter-error", classes="filter-error")
        yield ColumnHeader(id="columns")
        yield AssociationTable(self.index, id="associations")
        yield Static(id="status", classes="status-bar")
        yield Footer()

    @property
    def table(self) -> AssociationTable:
        return self.query_one(AssociationTable)

    def on_mount(self) -> None:
        self.table.focus()
        initial = self.dicomtap.initial_filter
        if initial:
            self.query_one("#filter", Input).value = initial
            self.apply_filter(initial)
        else:
            self.refresh_rows()

    def on_resize(self, event: events.Resize) -> None:
        self.call_after_refresh(self._show_header)

    # --- keeping up with the store -------------------------------------------------------

    @on(StoreUpdated)
    def store_updated(self, message: StoreUpdated) -> None:
        update = message.update
        if update.associations or update.new_associations or update.findings:
            self._throttle.request()  # a filtered or re-sorted list of many rows costs more
        else:
            self._show_title()

    def refresh_rows(self) -> None:
        """Filter and sort again (the index keeps what that needs; rows draw lazily)."""
        table = self.table
        table.set_ids(self.index.rows(self.query_filter, self.sort_key, self.reverse))
        table.refresh()
        self._show_header()
        self._show_title()
        self._show_status()

    def _show_header(self) -> None:
        self.query_one(ColumnHeader).show(
            self.sort_key, self.reverse, self.table.scrollable_content_region.width
        )

    def _show_title(self) -> None:
        app, index, source = self.dicomtap, self.index, self.store.source
        title = Text.assemble(("dicomtap", "bold"), "  ", no_wrap=True, overflow="ellipsis")
        if app.ingest_error:
            title.append("stopped  ", style="bold red")
        elif not source.finished and app.progress is not None:
            done, total = app.progress
            if total < 0:  # a live source (proxy, live capture): nothing to measure
                title.append("live  ", style="bold green")
            else:
                title.append(
                    f"reading {100 * done // total}%  "
                    if total
                    else f"reading {size_text(done)}  ",
                    style="bold",
                )
        elif not source.finished and app.ingest is not None:
            title.append("reading…  ", style="bold")
        counts = index.counts()
        title.append(plural(len(index.summaries), "association"))
        unlisted = self.store.unlisted.connections
        if unlisted:  # a flood or a scan: counted, not listed (``dicomtap analyze`` says where)
            title.append(f" · {unlisted} connections without DICOM not listed", style="dim")
        for look in (Look.FAILED, Look.WARNING, Look.OPEN):
            if counts[look]:
                title.append(" · ")
                title.append(f"{counts[look]} {look.value}", style=_LOOK_STYLE[look])
        title.append(f" · {plural(len(index.findings), 'finding')}  ")
        name = app.source or " ".join(os.path.basename(f) for f in source.files)
        title.append(name, style="dim")
        self._show("#title", title)

    def _show_status(self) -> None:
        table = self.table
        status = Text(f"{len(table.ids)} of {len(self.index.summaries)} shown", no_wrap=True)
        if self.filter_error is not None:
            status.append("  filter not applied (see ^ under it)", style="bold red")
        current = table.current
        if current is not None:
            a = self.index.summaries[current].association
            status.append(f"  #{a.id} {a.client} → {a.server} · {outcome_text(a)}")
        self._show("#status", status)

    def _show(self, bar: str, text: Text) -> None:
        """Put ``text`` in a one-line bar, unless it is there already. The bar's size does
        not depend on its text: no layout of the screen (that repaints every widget, several
        times a second while a capture is read)."""
        if self._shown.get(bar) != text:
            self._shown[bar] = text
            self.query_one(bar, Static).update(text, layout=False)

    # --- the list ---------------------------------------------------------------------------

    @on(AssociationTable.Highlighted)
    def highlighted(self) -> None:
        self._show_status()

    @on(AssociationTable.Selected)
    def selected(self, message: AssociationTable.Selected) -> None:
        from tui.screens.association import AssociationScreen

        association_id = self.table.ids[message.index]
        self.app.push_screen(AssociationScreen(association_id))

    @on(ColumnHeader.SortRequested)
    def sort_requested(self, message: ColumnHeader.SortRequested) -> None:
        if message.key == self.sort_key:
            self.reverse = not self.reverse
        else:
            self.sort_key, self.reverse = message.key, False
        self.refresh_rows()

    def action_sort(self) -> None:
        self.sort_key = _SORT_ORDER[(_SORT_ORDER.index(self.sort_key) + 1) % len(_SORT_ORDER)]
        self.refresh_rows()
        self.notify(f"sorted by {self.sort_key.value}", timeout=1.5)

    def action_reverse(self) -> None:
        self.reverse = not self.reverse
        self.refresh_rows()

    def action_next_finding(self, step: int) -> None:
        table = self.table
        ids = table.ids
        for k in range(1, len(ids) + 1):
            i = (table.cursor + step * k) % len(ids)
            if self.index.summaries[ids[i]].findings:
                table.move_to(i)
                return
        self.notify("No association with findings is shown.", timeout=3)

    # --- saving and copying ---------------------------------------------------------------------

    def action_save_shown(self) -> None:
        ids = list(self.table.ids)
        what = "the shown associations" if self.query_filter else "every association"
        self.save_associations(ids, f"{what} ({len(ids)})", "selection")

    def action_save_current(self) -> None:
        current = self.table.current
        if current is None:
            self.notify("No association is highlighted.", timeout=3)
            return
        self.save_associations([current], f"association #{current}", f"assoc{current}")

    def action_copy_filter(self) -> None:
        current = self.table.current
        if current is not None:
            a = self.index.summaries[current].association
            self.copy(
                wireshark.display_filter(a, wireshark.frame_names(self.store.source)),
                "Wireshark filter",
            )

    def action_copy_ids(self) -> None:
        current = self.table.current
        if current is not None:
            self.copy(wireshark.identifiers(self.index.summaries[current].association), "AEs")

    # --- the filter ---------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "filter":  # in the box, / is typed (ip=10.0.0.0/8)
            boxes = self.query("#filter")
            return not (boxes and boxes.first().has_focus)
        return True

    def action_filter(self) -> None:
        # at once, not after the keys already queued behind / (Widget.focus waits for them)
        self.set_focus(self.query_one("#filter", Input))

    def action_back(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_focus:
            self.table.focus()
        elif box.value:
            box.value = ""
            self.apply_filter("")

    def apply_filter(self, text: str) -> None:
        """Filter the list with ``text``; if it is not a valid filter, keep the list as it
        is and show what is wrong."""
        if self._filter_timer is not None:
            self._filter_timer.stop()
            self._filter_timer = None
        self._filter_typed += 1  # what a timer still due was about is no longer the filter
        query = parse(text)
        self.filter_error = query.error
        self._show_filter_error()
        if query.error is None and query.text != self.query_filter.text:
            self.query_filter = query
            self.refresh_rows()
        else:
            self._show_status()

    def _show_filter_error(self) -> None:
        """Under the filter box, a caret under the mistake and what it is."""
        line = self.query_one("#filter-error", Static)
        box = self.query_one("#filter", Input)
        error = self.filter_error
        if error is None or error.expression != box.value:
            line.remove_class("shown")
            return
        expression = error.expression
        before = cell_len(expression[: error.position]) - box.scroll_offset.x
        under = max(1, cell_len(expression[error.position : error.end]))
        text = Text(" " * max(0, before) + "^" * under, style="bold red", no_wrap=True)
        text.append(f"  {error.message}", style="red")
        line.update(text)
        line.add_class("shown")

    @on(Input.Changed, "#filter")
    def filter_changed(self, message: Input.Changed) -> None:
        # a list of 20,000 associations is filtered once typing pauses, not at every key
        if self._filter_timer is not None:
            self._filter_timer.stop()
        value = message.value
        self._show_filter_error()  # the caret no longer points at what is in the box
        self._filter_typed += 1
        typed = self._filter_typed
        self._filter_timer = self.set_timer(
            self.filter_delay, lambda: self.typing_paused(typed, value)
        )

    def typing_paused(self, typed: int, value: str) -> None:
        """The filter box's timer: apply ``value`` unless something was typed or applied
        since (a stopped timer whose callback was already queued, on a loaded machine, would
        otherwise put back an older text after the one just applied)."""
        if typed == self._filter_typed:
            self.apply_filter(value)

    @on(Input.Submitted, "#filter")
    def filter_submitted(self, message: Input.Submitted) -> None:
        self.apply_filter(message.value)
        self.table.focus()


_LOOK_STYLE = {Look.FAILED: "bold red", Look.WARNING: "yellow", Look.OK: "green", Look.OPEN: "cyan"}
