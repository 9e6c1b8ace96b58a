"""Wire text on screen: escaped, and never read as markup.

Textual and Rich read a plain ``str`` given to a DataTable cell, a Tree label, a Rich
Table cell or a Static as *markup*: an AE title ``[@click=quit]`` would become a link that
runs an action, ``[b]`` would restyle the row. Control characters pass through both to the
terminal. Whatever holds text from the wire (AE titles, UIDs and their names, error
comments, data set values, findings' words) goes to a widget as :func:`safe_text`: escaped
by the one helper, :func:`analyzer.textsafe.printable`, and wrapped in a
:class:`~rich.text.Text`, which is never parsed for markup.
"""

from __future__ import annotations

from rich.style import StyleType
from rich.text import Text

from analyzer.textsafe import printable

__all__ = ["printable", "safe_text"]


def safe_text(value: str, style: StyleType = "") -> Text:
    """``value`` escaped (:func:`~analyzer.textsafe.printable`) as markup-free Rich text."""
    return Text(printable(value), style=style)
