"""The timeline of one association as a virtual, searchable sequence diagram."""

from __future__ import annotations

from collections.abc import Hashable
from typing import ClassVar

from rich.segment import Segment
from rich.text import Text
from textual.strip import Strip
from textual.widget import Widget

from analyzer.model import Association
from tui.diagram import header, line, plain
from tui.timeline import Kind, Row

from .linelist import LineList

LOOKS = ("pdu", "assoc", "dimse", "pending", "ok", "warning", "failed", "info", "muted")
"""Style names a timeline row can carry (see :mod:`tui.timeline`)."""
PARTS = ("time", "lane", "frame", "title")


class TimelineView(LineList):
    """Rows of :func:`tui.timeline.build`, drawn by :func:`tui.diagram.line`."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        *LineList.COMPONENT_CLASSES,
        *(f"timeline--{name}" for name in LOOKS + PARTS),
    }

    def __init__(self, association: Association, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.association = association
        self.rows: list[Row] = []
        self.generation = 0

    def set_rows(self, association: Association, rows: list[Row]) -> None:
        """Show new rows (a rebuilt timeline); the cursor stays on the same line number."""
        self.association = association
        self.rows = rows
        self.generation += 1
        self.rows_changed()

    def row_count(self) -> int:
        return len(self.rows)

    def row_key(self, index: int) -> Hashable:
        return (self.generation, index)

    def render_row(self, index: int, width: int) -> Strip:
        pieces = line(self.rows[index], self.association, width)
        return Strip([Segment(text, self.style(f"timeline--{name}")) for text, name in pieces])

    def text_of(self, index: int) -> str:
        row = self.rows[index]
        return f"{row.label} {row.detail}".lower()

    def find(self, needle: str, start: int) -> int | None:
        """Index of the next row (from ``start``, wrapping) whose text holds ``needle``."""
        count = len(self.rows)
        needle = needle.lower()
        for k in range(count):
            i = (start + k) % count
            if needle in self.text_of(i):
                return i
        return None

    def next_finding(self, step: int) -> int | None:
        """Index of the next (``step`` 1) or previous (-1) finding row after the cursor."""
        count = len(self.rows)
        for k in range(1, count + 1):
            i = (self.cursor + step * k) % count
            if self.rows[i].kind is Kind.FINDING:
                return i
        return None


class TimelineHeader(Widget):
    """The two AE titles over the edges of the timeline's lane."""

    def __init__(self, association: Association, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.association = association

    def render(self) -> Text:
        return Text(plain(header(self.association, self.size.width)), no_wrap=True)
