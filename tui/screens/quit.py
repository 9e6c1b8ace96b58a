"""Quitting a live source (a proxy, a live capture): asked first, then a countdown while it
stops, so the relay or the capture never ends by a stray key and never behind a blank
screen."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

if TYPE_CHECKING:
    from tui.app import DicomtapApp

GRACE_UNKNOWN = 30.0
"""Seconds to wait for a source that did not say how long it takes to stop."""
PAST_GRACE = 10.0
"""Seconds the UI waits past the grace period before it leaves anyway."""


class ConfirmQuitScreen(ModalScreen[None]):
    """ "Stop and quit?"; once answered yes, how long the source has left to stop."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter,q", "stop", "Stop and quit", key_display="y"),
        Binding("n,escape", "keep", "Keep running", key_display="n"),
    ]

    def __init__(self, what: str, grace: float | None) -> None:
        super().__init__()
        self.what = what
        self.grace = grace
        self.stopping_since: float | None = None

    @property
    def dicomtap(self) -> DicomtapApp:
        return cast("DicomtapApp", self.app)

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-box"):
            yield Static(
                Text.assemble(("Stop ", "bold"), (self.what, "bold"), (" and quit?", "bold")),
                id="quit-question",
            )
            yield Static(Text("y: stop and quit · n: keep running", style="italic"), id="quit-hint")

    def action_stop(self) -> None:
        if self.stopping_since is not None:
            return
        self.stopping_since = time.monotonic()
        self.dicomtap.stop_ingest()
        self.tick()
        self.set_interval(0.5, self.tick)

    def action_keep(self) -> None:
        if self.stopping_since is None:
            self.dismiss(None)

    def tick(self) -> None:
        """Show the time left; leave once the source has stopped (or long past its grace)."""
        assert self.stopping_since is not None
        elapsed = time.monotonic() - self.stopping_since
        grace = self.grace if self.grace is not None else GRACE_UNKNOWN
        if not self.dicomtap.ingest_running() or elapsed > grace + PAST_GRACE:
            self.app.exit()
            return
        left = max(0, round(grace - elapsed))
        open_now = sum(
            1 for s in self.dicomtap.index.summaries.values() if s.association.outcome is None
        )
        question = Text(f"Stopping {self.what}…", style="bold")
        if self.grace is not None:
            question.append(f"  {left} s left", style="bold yellow")
        else:
            question.append(f"  {round(elapsed)} s", style="bold yellow")
        self.query_one("#quit-question", Static).update(question)
        hint = (
            f"{open_now} association{'s' if open_now != 1 else ''} still open: "
            "they are given the grace period to finish, then aborted"
            if open_now
            else "no association open: closing"
        )
        self.query_one("#quit-hint", Static).update(Text(hint, style="italic"))
