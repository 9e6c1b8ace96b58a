"""What every dicomtap screen shares: typed access to the app, the store and the index."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from textual.screen import Screen
from textual.widgets import Input

from analyzer.store import Store
from tui.core import StoreIndex

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
