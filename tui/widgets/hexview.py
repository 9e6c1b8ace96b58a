"""Kept bytes (command sets, data set prefixes) as a virtual hex dump."""

from __future__ import annotations

from collections.abc import Hashable
from typing import ClassVar

from rich.segment import Segment
from textual.strip import Strip

from tui.details import HexSection, hex_doc_line

from .linelist import LineList


class HexView(LineList):
    """A classic hex dump, drawn line by line on demand."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        *LineList.COMPONENT_CLASSES,
        "hex--title",
        "hex--muted",
    }

    def __init__(self, sections: list[HexSection], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.sections = sections
        self._count = sum(s.lines for s in sections)

    def row_count(self) -> int:
        return self._count

    def row_key(self, index: int) -> Hashable:
        return index

    def render_row(self, index: int, width: int) -> Strip:
        found = hex_doc_line(self.sections, index)
        if found is None:
            return Strip([])
        text, look = found
        return Strip([Segment(text, self.style(f"hex--{look}") if look else None)])
