"""Messages the app sends to its screens."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from tui.core import Update


@dataclass
class StoreUpdated(Message):
    """A batch of store changes was applied to the index (sent to every screen)."""

    update: Update


@dataclass
class IngestProgress(Message):
    """How far the ingest worker got; only the newest waits in a queue."""

    done: int
    total: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, IngestProgress)


@dataclass
class IngestFinished(Message):
    """The ingest worker returned (``error`` says why it stopped, if it failed)."""

    error: str | None = None
