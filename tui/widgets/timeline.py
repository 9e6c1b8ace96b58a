"""The timeline of one association as a virtual, searchable sequence diagram."""

from __future__ import annotations

import bisect
from collections.abc import Hashable
from typing import ClassVar

from rich.segment import Segment
from rich.text import Text
from textual.strip import Strip
from textual.widget import Widget

from analyzer.model import Association
from tui.diagram import header, line, plain
from tui.frames import FrameNames
from tui.timeline import Kind, Row

from .linelist import LineList

LOOKS = ("pdu", "assoc", "dimse", "pending", "ok", "warning", "failed", "info", "muted")
"""Style names a timeline row can carry (see :mod:`tui.timeline`)."""
PARTS = ("time", "lane", "frame", "title", "match")


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
        self.needle = ""
        """What the search looks for (lower case); rows holding it are highlighted."""
        self.matches: list[int] = []
        """Rows holding the needle, in order."""
        self._matched: set[int] = set()
        self.frames = FrameNames()
        """How frames are numbered (in their own file, when the capture is several)."""

    def set_rows(self, association: Association, rows: list[Row]) -> None:
        """Show new rows (a rebuilt timeline); the cursor stays on the same line number."""
        self.association = association
        self.rows = rows
        self.generation += 1
        self._match()
        self.rows_changed()

    def row_count(self) -> int:
        return len(self.rows)

    def row_key(self, index: int) -> Hashable:
        return (self.generation, index)

    def render_row(self, index: int, width: int) -> Strip:
        pieces = line(self.rows[index], self.association, width, self.frames)
        strip = Strip([Segment(text, self.style(f"timeline--{name}")) for text, name in pieces])
        if self.needle and index in self._matched:
            look = self.style("timeline--match")
            strip = Strip(list(Segment.apply_style(strip, post_style=look)))
        return strip

    def search(self, needle: str) -> None:
        """Highlight the rows holding ``needle`` (blank: none)."""
        self.needle = needle.lower()
        self.generation += 1  # every row may look different now
        self._match()
        self.refresh()

    def _match(self) -> None:
        needle = self.needle
        self.matches = (
            [i for i in range(len(self.rows)) if needle in self.text_of(i)] if needle else []
        )
        self._matched = set(self.matches)

    def match_position(self) -> int | None:
        """Which match (from 1) the cursor is on, if it is on one."""
        if self.cursor in self._matched:
            return bisect.bisect_left(self.matches, self.cursor) + 1
        return None

    def step_match(self, step: int) -> int | None:
        """The next (``step`` 1) or previous (-1) match from the cursor, wrapping."""
        if not self.matches:
            return None
        if step > 0:
            i = bisect.bisect_right(self.matches, self.cursor)
            return self.matches[i % len(self.matches)]
        i = bisect.bisect_left(self.matches, self.cursor) - 1
        return self.matches[i % len(self.matches)]

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
