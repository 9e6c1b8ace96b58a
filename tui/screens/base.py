"""What every dicomtap screen shares: typed access to the app, the store and the index."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

from textual import work
from textual.screen import Screen
from textual.widgets import Input

from analyzer.model import Association
from analyzer.store import Store
from tui import save, wireshark
from tui.core import StoreIndex
from tui.safe import printable

if TYPE_CHECKING:
    from tui.app import DicomtapApp


class BaseScreen(Screen[None]):
    """A screen of the dicomtap app."""

    @property
    def dicomtap(self) -> DicomtapApp:
        return cast("DicomtapApp", self.app)

    @property
    def store(self) -> Store:
        return self.dicomtap.store

    @property
    def index(self) -> StoreIndex:
        return self.dicomtap.index

    # --- saving and copying ------------------------------------------------------------

    def save_associations(self, ids: list[int], what: str, name: str) -> None:
        """Ask for a file name, then save the associations ``ids`` there (in a worker:
        a pcapng reads the capture again). ``name`` is the suggested name's middle."""
        from tui.screens.save import SaveScreen

        if not ids:
            self.notify("No association to save.", timeout=3)
            return
        frames = self.dicomtap.frames
        if frames is None:
            files = [f for f in self.store.source.files if Path(f).is_file()]
        else:  # a running source: the name of the capture it keeps, if it keeps one
            files = [frames.name] if frames.name else []
        stem = Path(files[0]).name.split(".")[0] if files else "dicomtap"
        suffix = ".pcapng" if files else ".jsonl"

        def chosen(path: str | None) -> None:
            if path:
                self._save_in_thread(list(ids), path)

        self.app.push_screen(SaveScreen(what, f"{stem}-{name}{suffix}"), chosen)

    @work(thread=True, group="save")
    def _save_in_thread(self, ids: list[int], path: str) -> None:
        try:
            done = save.save(self.store, ids, path, self.dicomtap.frames)
        except save.SaveError as exc:
            message, severity = f"Not saved: {exc}", "error"
        else:
            message, severity = str(done), "information"
        self.app.call_from_thread(
            self.notify, printable(message), severity=severity, timeout=8, markup=False
        )

    def copy_filter(self, a: Association) -> None:
        """Copy a Wireshark display filter for ``a``."""
        names = wireshark.frame_names(self.store.source)
        self.copy(wireshark.display_filter(a, names), "Wireshark filter")

    def copy(self, text: str, what: str) -> None:
        """Put ``text`` on the clipboard (the terminal's, through OSC 52) and show it."""
        self.app.copy_to_clipboard(text)
        self.notify(printable(text), title=f"Copied {what}", timeout=8, markup=False)


class Throttle:
    """Runs a costly refresh at most once per ten times what it last cost, and never drops
    the last request (a store that stops changing still gets its final refresh)."""

    def __init__(self, screen: Screen[None], refresh: Callable[[], None]) -> None:
        self.screen = screen
        self.refresh = refresh
        self._done_at = 0.0
        self._cost = 0.0
        self._pending = False

    def request(self) -> None:
        wait = self._done_at + 10 * self._cost - time.monotonic()
        if wait <= 0:
            self.run()
        elif not self._pending:
            self._pending = True
            self.screen.set_timer(wait, self.run)

    def note_cost(self, seconds: float) -> None:
        """Work the refresh started elsewhere (a worker thread) took."""
        self._cost = max(self._cost, seconds)

    def run(self) -> None:
        self._pending = False
        started = time.monotonic()
        self.refresh()
        self._done_at = time.monotonic()
        self._cost = self._done_at - started


class QueryInput(Input):
    """A one-line input whose cursor blinks unless the app says not to (snapshots)."""

    def on_mount(self) -> None:
        self.cursor_blink = bool(getattr(self.app, "cursor_blink", True))
