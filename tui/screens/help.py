"""The help screen: every key binding of every screen, and the filter's query syntax."""

from __future__ import annotations

from typing import ClassVar

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui import query


def binding_rows() -> list[tuple[str, str, str]]:
    """``(where, keys, what)`` for every binding the app defines, in screen order."""
    from tui.app import DicomtapApp
    from tui.screens.association import AssociationScreen
    from tui.screens.exchange import ExchangeScreen
    from tui.screens.findings import FindingsScreen
    from tui.screens.main import MainScreen
    from tui.widgets.linelist import LineList

    places: list[tuple[str, list[BindingType]]] = [
        ("everywhere", DicomtapApp.BINDINGS),
        ("lists", LineList.BINDINGS),
        ("association list", MainScreen.BINDINGS),
        ("association", AssociationScreen.BINDINGS),
        ("exchange", ExchangeScreen.BINDINGS),
        ("findings", FindingsScreen.BINDINGS),
        ("help", HelpScreen.BINDINGS),
    ]
    rows = []
    for where, bindings in places:
        for b in bindings:
            assert isinstance(b, Binding)
            keys = b.key_display or ", ".join(k.strip() for k in b.key.split(","))
            rows.append((where, keys, b.description))
    return rows


class HelpScreen(ModalScreen[None]):
    """Keys and the query syntax; any of escape, q or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close help", key_display="esc, q, ?"),
    ]

    def compose(self) -> ComposeResult:
        keys = Table(title="Keys", title_justify="left", box=box.SIMPLE_HEAD)
        keys.add_column("Where", style="dim", no_wrap=True)
        keys.add_column("Key", style="bold", no_wrap=True)
        keys.add_column("Does")
        last = ""
        for where, key, what in binding_rows():
            keys.add_row(where if where != last else "", key, what)
            last = where
        syntax = Table(
            title="Filter (/ on the association list)", title_justify="left", box=box.SIMPLE_HEAD
        )
        syntax.add_column("Example", style="bold", no_wrap=True)
        syntax.add_column("Matches")
        for example, what in query.KEYS.items():
            syntax.add_row(example, what)
        syntax.add_row("word", "any text of the association (AE, address, SOP class, code ...)")
        syntax.add_row("a and b, a b", "both; or, not, && || !, ( ) as usual")
        notes = Text(
            f"{query.SYNTAX}. Exchange fields joined by and/or hold for one exchange: "
            "cmd=C-STORE and latency>2s is a slow C-STORE. "
            "The mouse works too: click a row to select it, click it again to open it, "
            "click a column title to sort.",
            style="italic",
        )
        with VerticalScroll(id="help-body"):
            yield Static(Group(keys, syntax, notes), id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)
