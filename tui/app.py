"""The dicomtap terminal UI: an app over a store, optionally filled by an ingest worker.

The app does not know where records come from. :func:`run` (and :class:`DicomtapApp`) take
a :class:`~analyzer.store.Store` and, optionally, an *ingest* callable that fills it (read
capture files, follow a live capture, relay a proxy) and is run in a worker thread. The
screens react to store changes only: a listener queues them, and every quarter second the
app applies the batch to the index and tells each screen what changed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.worker import Worker, get_current_worker

from analyzer.pipeline import Progress
from analyzer.store import Store
from tui.core import StoreIndex, Update
from tui.messages import IngestFinished, IngestProgress, StoreUpdated
from tui.safe import printable
from tui.save import KEEP_CAPTURE, FrameSource
from tui.screens.findings import FindingsScreen
from tui.screens.help import HelpScreen
from tui.screens.main import MainScreen

Ingest = Callable[[Store, Progress], None]
"""Fills the store; called in a worker thread with a progress callback ``(done, total)``.
The callback raises :class:`IngestCancelled` once the app is closing: let it propagate."""

FLUSH_EVERY = 0.25
"""Seconds between two batches of store changes reaching the screens."""


class IngestCancelled(Exception):
    """Raised in the ingest thread (from its progress callback) when the app is closing."""


class DicomtapApp(App[None]):
    """Association list, association and exchange views, findings, over one store."""

    CSS_PATH = "dicomtap.tcss"
    TITLE = "dicomtap"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("f", "findings", "Findings"),
    ]

    def __init__(
        self,
        store: Store,
        ingest: Ingest | None = None,
        *,
        source: str = "",
        flush_every: float = FLUSH_EVERY,
        cursor_blink: bool = True,
        initial_filter: str = "",
        stop_grace: float | None = None,
        frames: FrameSource | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.source = source
        self.initial_filter = initial_filter
        """Filter expression the association list starts with (``--filter``)."""
        self.index = StoreIndex(store)
        self.ingest = ingest
        self.flush_every = flush_every
        self.cursor_blink = cursor_blink
        self.progress: tuple[int, int] | None = None
        self.ingest_error: str | None = None
        self._progress_seen: tuple[int, int] | None = None
        self._closing = False
        self._stopping = False
        self.stop_grace = stop_grace
        """Seconds a live source gives open associations once told to stop (the proxy's
        ``--grace``), for the countdown; None when it does not say."""
        self._ingest_worker: Worker[None] | None = None
        self.frames = frames
        """Where a running source's frames are read again to save them (None: the store's
        capture files)."""

    def get_default_screen(self) -> Screen[None]:
        return MainScreen()

    def on_mount(self) -> None:
        self.flush()  # whatever the store already holds shows at once
        self.set_interval(self.flush_every, self.flush)
        if self.ingest is not None:
            self._ingest_worker = self.run_ingest()

    def on_unmount(self) -> None:
        self._closing = True
        self.index.close()

    # --- ingestion (worker thread) ---------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="ingest")
    def run_ingest(self) -> None:
        """Run the ingest callable; report how it ended."""
        assert self.ingest is not None
        worker = get_current_worker()

        def progress(done: int, total: int) -> None:
            if self._closing or self._stopping or worker.is_cancelled:
                raise IngestCancelled
            self.post_message(IngestProgress(done, total))

        try:
            self.ingest(self.store, progress)
        except IngestCancelled:
            return
        except Exception as exc:  # shown to the user, not a traceback (toolong's way)
            self.post_message(IngestFinished(str(exc) or type(exc).__name__))
            return
        self.post_message(IngestFinished(None))

    def on_ingest_progress(self, message: IngestProgress) -> None:
        self.progress = (message.done, message.total)

    def on_ingest_finished(self, message: IngestFinished) -> None:
        if message.error:
            self.ingest_error = message.error
            self.notify(
                printable(message.error),
                title="Reading stopped",
                severity="error",
                timeout=15,
                markup=False,
            )
        self.flush()

    # --- batches of store changes (UI thread) ----------------------------------------------

    def flush(self) -> None:
        """Apply queued store changes to the index and tell every screen."""
        update = self.index.drain()
        if self.progress != self._progress_seen:
            self._progress_seen = self.progress
            update = update or Update()  # the progress shown changed
        if update is None:
            return
        for screen in self.screen_stack:
            screen.post_message(StoreUpdated(update))

    # --- quitting ------------------------------------------------------------------------------

    def ingest_running(self) -> bool:
        """Whether the ingest worker is still filling the store."""
        worker = self._ingest_worker
        return worker is not None and not worker.is_finished

    def is_live(self) -> bool:
        """A source with no end of its own (a proxy, a live capture) is running."""
        progress = self.progress
        return self.ingest_running() and progress is not None and progress[1] < 0

    def stop_ingest(self) -> None:
        """Tell the ingest worker to stop (its next progress call raises)."""
        self._stopping = True

    async def action_quit(self) -> None:
        """Quit; a live source is asked about first (see :class:`ConfirmQuitScreen`)."""
        from tui.screens.quit import ConfirmQuitScreen

        if not self.is_live():
            self.exit()
            return
        if not isinstance(self.screen, ConfirmQuitScreen):
            name = self.source.split(" on ")[0] if self.source else "source"
            what = "the capture" if name.startswith("live") else f"the {name}"
            self.push_screen(ConfirmQuitScreen(what, self.stop_grace))

    # --- app-wide actions --------------------------------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_findings(self) -> None:
        if not isinstance(self.screen, FindingsScreen):
            self.push_screen(FindingsScreen())


def run(
    store: Store,
    ingest: Ingest | None = None,
    *,
    source: str = "",
    initial_filter: str = "",
    stop_grace: float | None = None,
    capture: Callable[[], Sequence[str]] | None = None,
    capture_name: str = "",
    no_capture: str = "",
) -> None:
    """Run the terminal UI until the user quits (``initial_filter``: the list's filter;
    ``stop_grace``: seconds a live source takes at most to stop, for the countdown).

    A running source says where its frames can be read again to save them: ``capture``
    returns the capture files it writes, readable up to what the store shows
    (``capture_name``: the file name given); without a capture, ``no_capture`` says which
    option keeps one."""
    frames = None
    if capture is not None or no_capture:
        frames = FrameSource(capture, no_capture or KEEP_CAPTURE, capture_name)
    DicomtapApp(
        store,
        ingest,
        source=source,
        initial_filter=initial_filter,
        stop_grace=stop_grace,
        frames=frames,
    ).run()
