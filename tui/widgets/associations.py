"""The association list: a virtual table over the index, with a clickable column header."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.text import Text
from textual import events
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from analyzer.model import Severity
from tui.core import Look, SortKey, StoreIndex, outcome_look
from tui.rows import GAP, cells, header, layout

from .linelist import LineList


class AssociationTable(LineList):
    """One row per association, in the order the screen decides (filter and sort)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        *LineList.COMPONENT_CLASSES,
        *(f"assoc--{look.value}" for look in Look),
        *(f"assoc--sev-{severity.label}" for severity in Severity),
        "assoc--dim",
    }

    def __init__(self, index: StoreIndex, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.index = index
        self.ids: list[int] = []

    @property
    def current(self) -> int | None:
        """The association under the cursor."""
        return self.ids[self.cursor] if 0 <= self.cursor < len(self.ids) else None

    def set_ids(self, ids: list[int]) -> None:
        """Show these associations; the cursor stays on its association if still shown."""
        current = self.current
        self.ids = ids
        self.rows_changed(ids.index(current) if current in ids else None)

    def row_count(self) -> int:
        return len(self.ids)

    def row_key(self, index: int) -> Hashable:
        summary = self.index.summaries[self.ids[index]]
        return (summary.id, summary.version)

    def render_row(self, index: int, width: int) -> Strip:
        summary = self.index.summaries[self.ids[index]]
        look = self.style(f"assoc--{summary.look.value}")
        dim = self.style("assoc--dim")
        segments: list[Segment] = []
        worst = summary.worst
        for i, (key, text) in enumerate(cells(summary, layout(width))):
            if i:
                segments.append(Segment(" " * GAP))
            if key is SortKey.OUTCOME:
                outcome = outcome_look(summary.association.outcome)
                segments.append(Segment(text, self.style(f"assoc--{outcome.value}")))
            elif key is SortKey.ID:
                segments.append(Segment(text, look))
            elif key is SortKey.FINDING and worst is not None:
                segments.append(Segment(text, self.style(f"assoc--sev-{worst.severity.label}")))
            elif key in (SortKey.START, SortKey.PEERS):
                segments.append(Segment(text, dim))
            else:
                segments.append(Segment(text))
        return Strip(segments)


class ColumnHeader(Widget):
    """Column titles over the list; a click on one sorts by it."""

    @dataclass
    class SortRequested(Message):
        """Sort by ``key`` (a click on its title)."""

        header: ColumnHeader
        key: SortKey

        @property
        def control(self) -> ColumnHeader:
            return self.header

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.key = SortKey.START
        self.reverse = False
        self.width_for = 80

    def show(self, key: SortKey, reverse: bool, width: int) -> None:
        self.key, self.reverse, self.width_for = key, reverse, width
        self.refresh()

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="crop")
        for i, (_, title) in enumerate(header(layout(self.width_for), self.key, self.reverse)):
            text.append(" " * GAP if i else "")
            text.append(title)
        return text

    def on_click(self, event: events.Click) -> None:
        x = 0
        for col, width in layout(self.width_for):
            if x <= event.x < x + width + GAP:
                self.post_message(self.SortRequested(self, col.key))
                return
            x += width + GAP
