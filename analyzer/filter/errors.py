"""The one error a filter expression raises: what is wrong, and where (for a caret)."""

from __future__ import annotations

import unicodedata

from analyzer.errors import DicomtapError

__all__ = ["FilterError"]


class FilterError(DicomtapError):
    """A filter expression that cannot be used.

    ``position`` and ``end`` delimit the offending token in ``expression`` (character
    offsets, ``position == len(expression)`` when the expression ended too early);
    :meth:`caret_lines` draws them.
    """

    def __init__(self, message: str, expression: str, position: int, end: int | None = None):
        position = max(0, min(position, len(expression)))
        end = position + 1 if end is None else max(position + 1, min(end, len(expression)))
        super().__init__(f"{message} (column {position + 1})")
        self.message = message
        self.expression = expression
        self.position = position
        self.end = end

    def caret_lines(self, indent: str = "  ") -> list[str]:
        """The expression and a line of carets under the offending token::

        calling=CT and latency>fast
                               ^^^^
        """
        shown = "".join(_shown(c) for c in self.expression)
        before = sum(_width(c) for c in self.expression[: self.position])
        under = sum(_width(c) for c in self.expression[self.position : self.end])
        return [indent + shown, indent + " " * before + "^" * max(1, under)]


def _shown(ch: str) -> str:
    """One printable character in place of ``ch`` (so the carets stay aligned)."""
    if ch.isprintable():
        return ch
    return " " if ch.isspace() else "?"


def _width(ch: str) -> int:
    """Terminal cells ``ch`` takes once shown."""
    shown = _shown(ch)
    if unicodedata.combining(shown):
        return 0
    return 2 if unicodedata.east_asian_width(shown) in ("W", "F") else 1
