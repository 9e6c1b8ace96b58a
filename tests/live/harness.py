"""Running ``dicomtap live`` and helper peers inside a test's network namespace.

``dicomtap live`` runs as a real subprocess (``python -c 'from analyzer.cli import main;
main()' live ...``) inside the namespace, stopped with SIGINT by its PID as Ctrl-C would;
its stdout lines are kept with the wall time each arrived at, so that a test can measure how
long an event took to show.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from tests.peers import Net, dicomtap_argv

SCRIPTS = Path(__file__).resolve().parent / "scripts"
WAIT = 30.0
"""Longest wait for anything (bounded, never forever)."""


def script(name: str, *args: str) -> list[str]:
    return [sys.executable, str(SCRIPTS / name), *args]


class Lines:
    """A text stream read line by line in a thread; each line kept with its arrival time."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            now = time.time()
            with self._lock:
                self.lines.append((now, raw.decode("utf-8", "replace").rstrip("\n")))
        stream.close()

    def text(self) -> str:
        with self._lock:
            return "\n".join(line for _, line in self.lines)

    def find(self, pattern: str) -> tuple[float, re.Match[str]] | None:
        with self._lock:
            for t, line in self.lines:
                m = re.search(pattern, line)
                if m:
                    return t, m
        return None

    def join(self, timeout: float = 10) -> None:
        self._thread.join(timeout)


class Live:
    """``dicomtap live ARGS`` running in ``net``."""

    def __init__(self, net: Net, *args: str) -> None:
        self.argv = dicomtap_argv("live", *args)
        self.popen = subprocess.Popen(
            net.wrap(self.argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # a signal to the test's group never reaches it
        )
        assert self.popen.stdout is not None and self.popen.stderr is not None
        self.out = Lines(self.popen.stdout)
        self.err = Lines(self.popen.stderr)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def describe(self) -> str:
        return f"stdout:\n{self.out.text()}\nstderr:\n{self.err.text()}"

    def wait_for(self, pattern: str, *, stderr: bool = False, timeout: float = WAIT) -> float:
        """Wait for a line matching ``pattern``; returns the wall time it arrived."""
        lines = self.err if stderr else self.out
        deadline = time.monotonic() + timeout
        while True:
            found = lines.find(pattern)
            if found is not None:
                return found[0]
            if self.popen.poll() is not None:
                time.sleep(0.2)  # the last lines on their way
                found = lines.find(pattern)
                if found is not None:
                    return found[0]
                raise AssertionError(f"dicomtap live exited before {pattern!r}:\n{self.describe()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} within {timeout} s:\n{self.describe()}")
            time.sleep(0.02)

    def wait_capturing(self) -> None:
        self.wait_for(r"dicomtap: capturing on", stderr=True)

    def count(self, pattern: str) -> int:
        return sum(1 for _, line in self.out.lines if re.search(pattern, line))

    def wait_count(self, pattern: str, n: int, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while self.count(pattern) < n:
            if time.monotonic() > deadline or self.popen.poll() is not None:
                raise AssertionError(f"fewer than {n} lines {pattern!r}:\n{self.describe()}")
            time.sleep(0.05)

    def interrupt(self, timeout: float = 60) -> int:
        """SIGINT, as Ctrl-C; returns the exit status once it has ended."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.popen.pid, signal.SIGINT)
        try:
            rc = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"dicomtap live did not end on SIGINT:\n{self.describe()}"
            ) from None
        self.out.join()
        self.err.join()
        return rc

    def kill(self) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def json_records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for _, line in self.out.lines if line.startswith("{")]


@contextlib.contextmanager
def live(net: Net, *args: str) -> Iterator[Live]:
    """``dicomtap live`` for the duration of a ``with`` block (killed if still running)."""
    proc = Live(net, *args)
    try:
        proc.wait_capturing()
        yield proc
    finally:
        proc.kill()


class HoldScu:
    """The pynetdicom SCU of scripts/hold_scu.py: associates, holds until :meth:`release`."""

    def __init__(self, net: Net, port: int, *args: str) -> None:
        self.popen = subprocess.Popen(
            net.wrap(script("hold_scu.py", "127.0.0.1", str(port), *args)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert self.popen.stdout is not None
        self.out = Lines(self.popen.stdout)

    def wait_for(self, pattern: str, timeout: float = WAIT) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.out.find(pattern)
            if found is not None:
                return found[1]
            if time.monotonic() > deadline or self.popen.poll() is not None:
                time.sleep(0.2)
                found = self.out.find(pattern)
                if found is not None:
                    return found[1]
                raise AssertionError(f"hold_scu: no {pattern!r}:\n{self.out.text()}")
            time.sleep(0.02)

    def sent_at(self) -> float:
        return float(self.wait_for(r"^SENT (\S+)").group(1))

    def release(self) -> None:
        """Close its stdin: it releases the association and exits."""
        assert self.popen.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.popen.stdin.close()
        self.popen.wait(WAIT)

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)


def by_key(recs: Iterable[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Association records by id, exchange records by (association, index), findings by
    (association, code, frames); header and summary left out (their sources differ)."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in recs:
        match r["type"]:
            case "association":
                out[("association", r["id"])] = r
            case "exchange":
                out[("exchange", r["association"], r["index"])] = r
            case "finding":
                key = ("finding", r["association"], r["code"], tuple(r["evidence"]["frames"]))
                out[key] = r
            case "violation" | "gap":
                out[(r["type"], r["association"], r["frame"], r.get("offset"))] = r
            case _:
                pass
    return out
