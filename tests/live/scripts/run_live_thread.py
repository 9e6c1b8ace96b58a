"""``run_live`` in-process, in a background thread, as the terminal UI would use it.

Run inside the test's network namespace: ``run_live_thread.py ECHOSCU PORT CAPTURE``.
Two captures on ``lo``, each with a DCMTK echoscu association made while it runs:

1. stopped with a ``threading.Event`` once the store shows the association released;
2. stopped by the progress callback raising (as the UI's does when it quits): run_live
   must finish the store and raise that exception again.

Prints one JSON object with what the store and the results said.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import Any

from analyzer.findings import Diagnosis
from analyzer.model import Association
from analyzer.sources.live import LiveCapture, LiveOptions, LiveResult, run_live
from analyzer.store import Change, Store

WAIT = 30.0


class Cancelled(Exception):
    """What the UI's progress callback raises when it closes."""


def echo(echoscu: str, port: str) -> int:
    return subprocess.run(
        [echoscu, "-aec", "ARCHIVE", "127.0.0.1", port], capture_output=True, timeout=WAIT
    ).returncode


def stopped_by_event(echoscu: str, port: str, capture: str) -> dict[str, Any]:
    store = Store()
    stop = threading.Event()
    started = threading.Event()
    released = threading.Event()
    threads: set[str] = set()
    results: list[LiveResult] = []

    def listener(change: Change) -> None:
        threads.add(threading.current_thread().name)
        record = change.record
        if isinstance(record, Association) and record.outcome == "released":
            released.set()

    store.subscribe(listener)

    def ingest() -> None:
        results.append(
            run_live(
                LiveOptions("lo", write=capture),
                store,
                rules=Diagnosis(),
                stop=stop,
                started=lambda _capture: started.set(),
            )
        )

    worker = threading.Thread(target=ingest, name="ingest")
    worker.start()
    assert started.wait(WAIT), "capture did not start"
    rc = echo(echoscu, port)
    seen = released.wait(WAIT)
    seen_at = time.monotonic()
    stop.set()
    worker.join(WAIT)
    assert not worker.is_alive(), "run_live did not return after stop"
    result = results[0]
    return {
        "echo": rc,
        "released_seen_live": seen,
        "stop_seconds": time.monotonic() - seen_at,
        "listener_threads": sorted(threads),
        "finished": store.source.finished,
        "outcomes": [str(a.outcome) for a in store.associations()],
        "stopped": result.stopped,
        "error": result.error,
        "files": result.files,
        "packets": result.packets,
    }


def stopped_by_progress(echoscu: str, port: str) -> dict[str, Any]:
    store = Store()
    calls = 0
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def progress(done_bytes: int, total: int) -> None:
        nonlocal calls
        calls += 1
        if done.is_set():
            raise Cancelled

    captures: list[LiveCapture] = []

    def started(capture: LiveCapture) -> None:
        captures.append(capture)
        outcome["echo"] = echo(echoscu, port)
        time.sleep(0.5)  # dumpcap's read timeout: the last packets reach the store
        done.set()

    try:
        run_live(LiveOptions("lo"), store, rules=Diagnosis(), progress=progress, started=started)
        outcome["raised"] = None
    except Cancelled:
        outcome["raised"] = "Cancelled"
    outcome.update(
        error=captures[0].result.error,
        stopped=captures[0].result.stopped,
        progress_calls=calls,
        finished=store.source.finished,
        outcomes=[str(a.outcome) for a in store.associations()],
    )
    return outcome


def main() -> None:
    echoscu, port, capture = sys.argv[1:4]
    print(
        json.dumps(
            {
                "event": stopped_by_event(echoscu, port, capture),
                "progress": stopped_by_progress(echoscu, port),
            }
        )
    )


if __name__ == "__main__":
    main()
