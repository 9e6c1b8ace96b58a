"""A virtual list with a cursor: renders only the rows on screen, caches rendered rows.

toolong's technique with Textual's Line API: the widget's virtual height is the row count,
Textual asks :meth:`render_line` for visible lines only, and each rendered row is kept in
an :class:`~textual.cache.LRUCache` under a key that holds everything that changes its
look (the row's own key, the width, whether the cursor is on it). Subclasses say how many
rows there are, what a row's key is, and how to draw one.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip


class LineList(ScrollView, can_focus=True):
    """Base class: a scrolling list of rows with a highlighted cursor row."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown,space", "page(1)", "Page down", show=False),
        Binding("home,g", "first", "First", show=False),
        Binding("end,G", "last", "Last", show=False),
        Binding("enter", "select", "Open", show=True),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {"line-list--cursor", "line-list--cursor-blur"}

    cursor: reactive[int] = reactive(0, init=False, always_update=True)

    @dataclass
    class _RowMessage(Message):
        widget: LineList
        index: int

        @property
        def control(self) -> LineList:
            return self.widget

    class Highlighted(_RowMessage):
        """The cursor moved to row ``index``."""

    class Selected(_RowMessage):
        """Row ``index`` was chosen (enter, or a click on the cursor row)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._cache: LRUCache[tuple[Hashable, int, str], Strip] = LRUCache(1024)

    # --- what subclasses provide -------------------------------------------------------

    def row_count(self) -> int:
        raise NotImplementedError

    def row_key(self, index: int) -> Hashable:
        """Everything, other than width and cursor, that changes how row ``index`` looks."""
        raise NotImplementedError

    def render_row(self, index: int, width: int) -> Strip:
        """Row ``index`` drawn in ``width`` cells, without the cursor."""
        raise NotImplementedError

    def style(self, name: str) -> Style:
        """The colours a stylesheet rule gives a component class (nothing inherited)."""
        return self.get_component_rich_style(name, partial=True)

    # --- rows changed ------------------------------------------------------------------

    def rows_changed(self, keep_cursor: int | None = None) -> None:
        """Call after the rows changed: resizes the virtual space and redraws.

        ``keep_cursor`` moves the cursor to that row (for example where the row that was
        under the cursor went after a re-sort).
        """
        count = self.row_count()
        size = Size(self.scrollable_content_region.width, count)
        before = self.virtual_size
        if self.show_vertical_scrollbar and size.width == before.width and count >= before.height:
            # More rows under a scrollbar that is shown and stays: only the scrollbar's
            # thumb changes. Setting the size would lay the whole screen out again, which a
            # list growing several times a second (a capture being read) cannot afford.
            self.set_reactive(LineList.virtual_size, size)
            self.vertical_scrollbar.window_virtual_size = count
        else:
            self.virtual_size = size
        cursor = self.cursor if keep_cursor is None else keep_cursor
        cursor = max(0, min(cursor, count - 1))
        if cursor != self.cursor:
            self.set_reactive(LineList.cursor, cursor)
            self._scroll_to_cursor()
        self.refresh()

    # --- drawing -----------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        index = y + int(self.scroll_offset.y)
        width = self.scrollable_content_region.width
        if index >= self.row_count() or index < 0:
            return Strip.blank(width, self.rich_style)
        cursor = "" if index != self.cursor else "focus" if self.has_focus else "blur"
        key = (self.row_key(index), width, cursor)
        strip = self._cache.get(key)
        if strip is None:
            strip = self.render_row(index, width).adjust_cell_length(width)
            if cursor:
                look = self.style(f"line-list--cursor{'' if cursor == 'focus' else '-blur'}")
                strip = Strip(list(Segment.apply_style(strip, post_style=look)), width)
            strip = strip.apply_style(self.rich_style)
            self._cache[key] = strip
        return strip

    def on_resize(self, event: events.Resize) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, self.row_count())
        self._scroll_to_cursor()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # --- the cursor ----------------------------------------------------------------------

    def watch_cursor(self, old: int, new: int) -> None:
        self._scroll_to_cursor()
        self.refresh()
        self.post_message(self.Highlighted(self, new))

    def _scroll_to_cursor(self) -> None:
        height = self.scrollable_content_region.height
        top = int(self.scroll_offset.y)
        if height <= 0:
            return
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False)

    def move_to(self, index: int) -> None:
        """Put the cursor on row ``index`` (clamped)."""
        count = self.row_count()
        if count:
            self.cursor = max(0, min(index, count - 1))

    def action_cursor(self, delta: int) -> None:
        self.move_to(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self.move_to(self.cursor + direction * max(1, self.scrollable_content_region.height - 1))

    def action_first(self) -> None:
        self.move_to(0)

    def action_last(self) -> None:
        self.move_to(self.row_count() - 1)

    def action_select(self) -> None:
        if 0 <= self.cursor < self.row_count():
            self.post_message(self.Selected(self, self.cursor))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        index = offset.y + int(self.scroll_offset.y)
        if not 0 <= index < self.row_count():
            return
        if index == self.cursor and (event.chain > 1 or self.has_focus):
            self.post_message(self.Selected(self, index))
        self.focus()
        self.move_to(index)
