"""What the pynetdicom peers of samples/ share: serving until told to stop, for a bounded time."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Protocol


class Server(Protocol):
    def shutdown(self) -> None: ...


def serve(server: Server, max_run: float, say: Callable[[str], None] | None = None) -> None:
    """Keep ``server`` (started with ``block=False``) running until SIGTERM or SIGINT, or
    ``max_run`` seconds at most, then shut it down."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    deadline = time.monotonic() + max_run
    while not stop.wait(0.2):
        if time.monotonic() > deadline:
            if say is not None:
                say(f"stopping after {max_run:g} s")
            break
    server.shutdown()
