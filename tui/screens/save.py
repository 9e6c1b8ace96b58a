"""Asking where to save: a file name whose extension says the format."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from tui.screens.base import QueryInput

FORMATS = ".pcapng: the frames · .jsonl: analyze's records · .csv: one row per exchange"
"""What the extension of the name chooses."""


class SaveScreen(ModalScreen[str | None]):
    """A file name for ``what``; enter saves, escape gives up (dismissed with None)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, what: str, suggestion: str, hint: str = FORMATS) -> None:
        super().__init__()
        self.what = what
        self.suggestion = suggestion
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(id="save-box"):
            yield Static(Text.assemble(("Save ", "bold"), self.what), id="save-title")
            yield QueryInput(value=self.suggestion, id="save-name", classes="query")
            yield Static(
                Text(f"{self.hint}    enter: save, esc: cancel", style="italic"), id="save-hint"
            )

    def on_mount(self) -> None:
        self.query_one("#save-name", Input).focus()

    @on(Input.Submitted, "#save-name")
    def submitted(self, message: Input.Submitted) -> None:
        self.dismiss(message.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
