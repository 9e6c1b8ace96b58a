"""The negotiation tab's tables: presentation contexts and user information, side by side."""

from __future__ import annotations

from collections.abc import Callable

from rich import box
from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text

from analyzer.model import Association
from analyzer.names import uid_name
from tui import details
from tui.safe import safe_text

LookStyle = Callable[[str], Style]
"""Gives the colours of a timeline look (``timeline--failed`` ...) from the stylesheet."""


def contexts(a: Association, look: LookStyle) -> RenderableType:
    """Application context, then the presentation-context matrix; mismatches coloured."""
    version = a.protocol_version if a.protocol_version is not None else "-"
    parts: list[RenderableType] = [
        safe_text(
            f"Application context {uid_name(a.application_context)} · protocol version {version}"
        )
    ]
    rows = details.context_rows(a)
    if not rows:
        parts.append(Text("No presentation contexts were seen.", style="italic"))
        return Group(*parts)
    table = Table(
        title="Presentation contexts", title_justify="left", box=box.SIMPLE_HEAD, expand=True
    )
    # one line per syntax: a long transfer syntax name is cut, not wrapped over three
    # lines (at 80 columns); the result keeps every word (it says why)
    table.add_column("ID", no_wrap=True)
    for name in ("Abstract syntax", "Proposed"):
        table.add_column(name, no_wrap=True, overflow="ellipsis", ratio=3, min_width=10)
    table.add_column("Result", overflow="fold", ratio=5)
    table.add_column("Accepted", no_wrap=True, overflow="ellipsis", ratio=3)
    table.add_column("Roles", no_wrap=True, overflow="ellipsis", ratio=1, min_width=5)
    for r in rows:
        style = look(f"timeline--{r.look}") if r.look != "ok" else None
        result = r.result + (f" ({r.why})" if r.why and r.why != "rejected" else "")
        proposed = Text("\n").join(safe_text(p) for p in r.proposed)
        table.add_row(
            str(r.id),
            safe_text(r.abstract_syntax),
            proposed,
            *(safe_text(cell) for cell in (result, r.accepted)),
            r.roles,
            style=style,
        )
    parts.append(table)
    return Group(*parts)


def user_info(a: Association, look: LookStyle) -> RenderableType:
    """What each side said in its user information item (never a passcode)."""
    rows = details.user_info_rows(a)
    if not rows:
        return Text("")
    table = Table(title="User information", title_justify="left", box=box.SIMPLE_HEAD, expand=True)
    for name in ("Item", "Requestor", "Acceptor"):
        table.add_column(name, overflow="fold")
    for r in rows:
        table.add_row(
            *(safe_text(cell) for cell in (r.field, r.requestor, r.acceptor)),
            style=look(f"timeline--{r.look}") if r.look else None,
        )
    return table
