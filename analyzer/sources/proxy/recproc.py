"""Recording in a process of its own: the relay hands what happened to a recording process
through a pipe, and never waits for it (see ``RECORDING.md`` for the why and what).

This module is the relay's end, :class:`ProcessRecording`: each :class:`~.records.Record`
call becomes a small tuple ``(op, connection, *args)`` (:class:`~.recwire.Op`) appended to
a batch; the first of a loop iteration schedules one flush (``call_soon``: after the I/O
callbacks of that iteration, so after the forward), which writes the batch to the pipe as
one frame (:func:`~.recwire.frame`: relayed bytes go beside the pickle, written from the
relay's own buffers with ``writev``). The pipe is written non-blocking; what it does not
take waits here and is written when it becomes writable. Past :data:`BACKLOG_LIMIT` bytes
waiting the relay waits: the rest is written blocking, so memory is flat when recording
cannot keep up. The one question the relay asks (is a direction between PDUs, before an
A-ABORT) is a round trip bounded by :data:`ANSWER_WAIT`. The recording process is
:mod:`.recchild`; the pipe's format, :mod:`.recwire`.

Tests replace :data:`CHILD` to run a recording process of their own (a slow observer).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from enum import StrEnum
from typing import Any

from analyzer import redact
from analyzer.sources import heap
from dissectors import CloseKind

from .config import ConfigError, ProxyConfig
from .records import Endpoint, complain
from .recwire import (
    RELAYED_MMAP_THRESHOLD,
    RELAYED_TRIM_THRESHOLD,
    SAME,
    Op,
    frame,
    grow_pipe,
    payload,
    read_answer,
    write_all,
)

__all__ = ["BACKLOG_LIMIT", "CHILD", "ProcessRecording", "RecordingMode"]

#: Bytes of messages waiting for the pipe before the relay waits for the recording process.
BACKLOG_LIMIT = 32 << 20
#: Seconds the relay waits for an answer of the recording process.
ANSWER_WAIT = 1.0
#: Seconds the recording process may take to start (imports, outputs opened) ...
START_WAIT = 60.0
#: ... and to finish (the summary, the files closed) once the proxy has stopped.
FINISH_WAIT = 60.0
_IOV = 64  # buffers per writev
#: The recording process's command (the pipe's answer descriptor is appended).
CHILD = [
    sys.executable,
    "-c",
    "import sys; from analyzer.sources.proxy.recchild import main; sys.exit(main())",
]


class RecordingMode(StrEnum):
    """Where recording runs."""

    THREAD = "thread"
    """On the relay's thread, after relaying (:mod:`.recorder`)."""
    PROCESS = "process"
    """In a process of its own (this module)."""


class PipedRecord:
    """One connection's :class:`~.records.Record`, as messages to the recording process."""

    __slots__ = ("_ask", "_id", "_send")

    def __init__(
        self,
        send: Callable[[tuple[Any, ...]], None],
        ask: Callable[[int, bool], bool],
        connection: int,
    ) -> None:
        self._send = send
        self._ask = ask
        self._id = connection

    def forwarded(self, to_client: bool, ts: int, sent: bytes, received: bytes | None) -> None:
        # ``received is sent`` but where a rewrite applied: sent once, SAME in its place.
        again = SAME if received is sent else payload(received)
        self._send((Op.FORWARDED, self._id, to_client, ts, payload(sent), again))

    def client_data(self, ts: int, data: bytes) -> None:
        self._send((Op.CLIENT_DATA, self._id, ts, payload(data)))

    def injected(self, to_client: bool, ts: int, pdu: bytes) -> None:
        self._send((Op.INJECTED, self._id, to_client, ts, payload(pdu)))

    def closed(self, from_client: bool, kind: CloseKind, ts: int) -> None:
        self._send((Op.CLOSED, self._id, from_client, kind, ts))

    def upstream_fin(self, from_proxy: bool, ts: int) -> None:
        self._send((Op.UPSTREAM_FIN, self._id, from_proxy, ts))

    def proxy_closed(self, to_client: bool, kind: CloseKind, ts: int) -> None:
        self._send((Op.PROXY_CLOSED, self._id, to_client, kind, ts))

    def reset_both(self, by_client: bool | None, ts: int) -> None:
        self._send((Op.RESET_BOTH, self._id, by_client, ts))

    def discarded(self, size: int) -> None:
        self._send((Op.DISCARDED, self._id, size))

    def acknowledged(self, ts: int) -> None:
        self._send((Op.ACKNOWLEDGED, self._id, ts))

    def upstream_opened(self, local: Endpoint, remote: Endpoint, ts: int, where: str) -> None:
        self._send((Op.UPSTREAM_OPENED, self._id, local, remote, ts, where))

    def ended(self, ts: int) -> None:
        self._send((Op.ENDED, self._id, ts))

    def at_boundary(self, to_client: bool) -> bool:
        return self._ask(self._id, to_client)


class ProcessRecording:
    """The parent's end: a :class:`~.records.Recording` whose records go to the recording
    process. Use :meth:`start`."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, proc: subprocess.Popen[bytes], out: int, answers: int
    ) -> None:
        self._loop = loop
        self._proc = proc
        self._out = out
        self._answers = answers
        self._batch: list[tuple[Any, ...]] = []
        self._scheduled = False
        self._pending: deque[memoryview] = deque()
        self._size = 0
        """Bytes in ``_pending``."""
        self._writer = False
        self._dead: str | None = None
        self._seq = 0
        self._trimmer: asyncio.Task[None] | None = None
        self.waited = 0
        """Times the relay waited for the recording process (the backlog was full)."""

    @property
    def dead(self) -> str | None:
        """Why recording stopped (None while it runs)."""
        return self._dead

    @property
    def backlog(self) -> int:
        """Bytes of messages not yet in the pipe (batches not flushed excluded)."""
        return self._size

    @classmethod
    async def start(
        cls,
        config: ProxyConfig,
        loop: asyncio.AbstractEventLoop,
        *,
        quiet_out: bool,
        generator: str,
        argv: list[str] | None = None,
    ) -> ProcessRecording:
        """Start the recording process and wait until its outputs are open; raises
        :class:`~.config.ConfigError` if they cannot be. ``argv``: the command (tests); by
        default this module run by this interpreter."""
        # Relayed chunks (up to 256 KiB a read) live here only until the pipe takes them:
        # reused from the heap, not mmapped and faulted in afresh for every read. (Set before
        # any thread starts.)
        heap.steady(RELAYED_MMAP_THRESHOLD, RELAYED_TRIM_THRESHOLD)
        r, w = os.pipe()
        ar, aw = os.pipe()
        grow_pipe(w)
        cmd = argv or CHILD
        try:
            proc = subprocess.Popen([*cmd, str(aw)], stdin=r, pass_fds=(aw,))
        finally:
            os.close(r)
            os.close(aw)
        self = cls(loop, proc, w, ar)
        # A filter holds compiled tests, not picklable: it goes as its text.
        log_filter = config.output.log_filter
        plain = replace(config, output=replace(config.output, log_filter=None))
        source = log_filter.source if log_filter is not None else None
        # ``--redact phi`` is this process's state: the recording process renders the records.
        state = (plain, source, quiet_out, generator, redact.phi_redacted())
        try:
            for piece in frame(state):
                write_all(w, piece)
            answer = await loop.run_in_executor(None, read_answer, ar, START_WAIT)
        except OSError:
            answer = b""
        if answer[:1] != b"K":
            self._close()
            text = answer[1:].decode(errors="replace") or "the recording process did not start"
            raise ConfigError(text)
        os.set_blocking(w, False)
        self._trimmer = asyncio.create_task(self._trim_regularly())
        return self

    @staticmethod
    async def _trim_regularly() -> None:
        """This process's heap trimmed now and then, off the loop's thread (``malloc_trim``
        releases the interpreter lock)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(heap.TRIM_EVERY)
            await loop.run_in_executor(None, heap.trim)

    # --- Recording -------------------------------------------------------------------

    def connection(self, connection: int, peer: Endpoint, local: Endpoint, ts: int) -> PipedRecord:
        self._send((Op.OPEN, connection, peer, local, ts))
        return PipedRecord(self._send, self._boundary, connection)

    def event(self, connection: int, text: str, ts: int) -> None:
        self._send((Op.EVENT, connection, text, ts))

    def line(self, text: str, ts: int | None = None) -> None:
        self._send((Op.LINE, 0, text, ts))

    def drain(self) -> None:
        """Hand what waits to the pipe (the recording process records on its own)."""
        self._flush()

    async def finish(self) -> None:
        """Hand everything over, close the pipe (the recording process finishes on end of
        file) and wait for it to exit."""
        if self._trimmer is not None:
            self._trimmer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._trimmer
        self._flush()
        if self._pending and self._dead is None:
            self._write_blocking()
        self._close()
        loop = self._loop
        try:
            status = await asyncio.wait_for(
                loop.run_in_executor(None, self._proc.wait), FINISH_WAIT
            )
        except TimeoutError:
            self._proc.kill()
            status = await loop.run_in_executor(None, self._proc.wait)
            self._dead = f"the recording process did not finish within {FINISH_WAIT:g} s"
            complain(f"{self._dead}; killed")
            return
        if status != 0 and self._dead is None:
            self._dead = f"the recording process exited with status {status}"
            complain(self._dead)

    # --- the pipe --------------------------------------------------------------------

    def _send(self, message: tuple[Any, ...]) -> None:
        if self._dead is not None:
            return
        self._batch.append(message)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if not self._batch or self._dead is not None:
            self._batch.clear()
            return
        waiting = bool(self._pending)
        for piece in frame(self._batch):
            self._pending.append(piece)
            self._size += len(piece)
        self._batch = []
        if not waiting:  # straight into the pipe
            try:
                self._write_some()
            except BlockingIOError:
                pass
            except OSError as exc:
                self._died(exc)
                return
        if self._size > BACKLOG_LIMIT:
            self.waited += 1
            self._write_blocking()  # the relay waits: memory stays flat
        elif self._pending and not self._writer:
            self._writer = True
            self._loop.add_writer(self._out, self._writable)

    def _write_some(self) -> None:
        """Write what waits until the pipe is full (BlockingIOError) or all is written."""
        pending = self._pending
        while pending:
            done = os.writev(self._out, list(itertools.islice(pending, _IOV)))
            self._size -= done
            while done:
                first = pending[0]
                if done < len(first):
                    pending[0] = first[done:]
                    break
                done -= len(first)
                pending.popleft()

    def _writable(self) -> None:
        try:
            self._write_some()
        except BlockingIOError:
            return
        except OSError as exc:
            self._died(exc)
            return
        self._stop_writer()

    def _stop_writer(self) -> None:
        if self._writer:
            self._writer = False
            self._loop.remove_writer(self._out)

    def _write_blocking(self) -> None:
        self._stop_writer()
        try:
            os.set_blocking(self._out, True)
            self._write_some()
            os.set_blocking(self._out, False)
        except OSError as exc:
            self._died(exc)
        self._pending.clear()
        self._size = 0

    def _died(self, exc: OSError) -> None:
        if self._dead is None:
            status = self._proc.poll()
            how = f"exited with status {status}" if status is not None else str(exc)
            self._dead = f"the recording process {how}"
            complain(f"recording stopped ({self._dead}); relaying goes on")
        self._stop_writer()
        self._pending.clear()
        self._size = 0
        self._batch.clear()

    def _boundary(self, connection: int, to_client: bool) -> bool:
        """Ask the recording process whether a direction is between PDUs (bounded wait; no
        answer: not, which leaves the side closed without an A-ABORT)."""
        if self._dead is not None:
            return False
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        seq = self._seq
        self._send((Op.BOUNDARY, connection, to_client, seq))
        self._flush()
        if self._pending:
            self._write_blocking()
        deadline = time.monotonic() + ANSWER_WAIT
        while (left := deadline - time.monotonic()) > 0:
            answer = read_answer(self._answers, left, size=5)
            if len(answer) < 5:
                return False
            if int.from_bytes(answer[:4], "big") == seq:
                return answer[4:] == b"\x01"
        return False

    def _close(self) -> None:
        self._stop_writer()
        for fd in (self._out, self._answers):
            with contextlib.suppress(OSError):
                os.close(fd)
