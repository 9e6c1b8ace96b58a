"""Recording in a process of its own: the relay hands what happened to a recording process
through a pipe, and never waits for it (see ``RECORDING.md`` for the why and what).

Parent side, :class:`ProcessRecording`: each :class:`~.records.Record` call becomes a small
tuple ``(op, connection, *args)`` appended to a batch; the first of a loop iteration
schedules one flush (``call_soon``: after the I/O callbacks of that iteration, so after the
forward), which pickles the batch and writes it to the pipe as one frame (:func:`_frame`: a
head, the pickle, then the relayed bytes of 1 KiB or more *beside* the pickle, written from
the relay's own buffers with ``writev`` and read into ``bytes`` of their own by the
recording process: a relayed chunk is not copied by pickling on either side). The pipe is
written non-blocking; what it does not take waits in the parent and is written when it
becomes writable. Past :data:`BACKLOG_LIMIT` bytes waiting the relay waits: the rest is
written blocking, so memory is flat when recording cannot keep up. The one question the
relay asks (is a direction between PDUs, before an A-ABORT) is a round trip bounded by
:data:`ANSWER_WAIT`.

Child side, :func:`main` (``python -c '...recproc import main ...' FD``): reads the
configuration, opens the outputs (answering ``K``, or ``E`` and the error), then applies
every message in order to a :class:`~.records.LocalRecording` that records at once, and
answers boundary questions on ``FD``. It ends at end of file on its stdin, which the
kernel gives it however the proxy ends (no orphan): it then finishes the observation,
writes the summary and closes its files. It ignores SIGINT and SIGTERM, which a terminal or
a service manager send to the whole group: it must finish after the proxy's last message.

Tests replace :data:`CHILD` to run a recording process of their own (a slow observer).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import replace
from enum import IntEnum, StrEnum
from typing import Any

from analyzer import redact
from analyzer.filter import Filter
from analyzer.sources import heap
from analyzer.store import Retention, Store
from dissectors import CloseKind

from .config import ConfigError, ProxyConfig
from .records import FLUSH_EVERY, Endpoint, LocalRecord, LocalRecording, complain, open_recording

__all__ = ["BACKLOG_LIMIT", "ProcessRecording", "RecordingMode", "main"]

#: Bytes of messages waiting for the pipe before the relay waits for the recording process.
BACKLOG_LIMIT = 32 << 20
#: Bytes the pipe itself is asked to hold (Linux: ``F_SETPIPE_SZ``; best effort).
PIPE_SIZE = 1 << 20
#: Seconds the relay waits for an answer of the recording process.
ANSWER_WAIT = 1.0
#: Seconds the recording process may take to start (imports, outputs opened) ...
START_WAIT = 60.0
#: ... and to finish (the summary, the files closed) once the proxy has stopped.
FINISH_WAIT = 60.0
_F_SETPIPE_SZ = 1031
_FRAME = struct.Struct(">II")
#: Relayed bytes from this size on go beside the pickle (see :func:`_payload`).
OUT_OF_BAND = 1024
#: Both processes' allocators: buffers of relayed bytes under this many bytes come from the
#: heap ...
RELAYED_MMAP_THRESHOLD = 1 << 20
#: ... which keeps this many free bytes at its top for reuse.
RELAYED_TRIM_THRESHOLD = 16 << 20
#: Bytes asked of the pipe by one read of the recording process (more when a payload is).
_READ = 1 << 16
_IOV = 64  # buffers per writev
#: The recording process's command (the pipe's answer descriptor is appended).
CHILD = [sys.executable, "-c", f"import sys; from {__name__} import main; sys.exit(main())"]


class RecordingMode(StrEnum):
    """Where recording runs."""

    THREAD = "thread"
    """On the relay's thread, after relaying (:mod:`.recorder`)."""
    PROCESS = "process"
    """In a process of its own (this module)."""


class Op(IntEnum):
    """A message to the recording process; the ones up to :attr:`ENDED` are
    :class:`~.records.Record` calls of the same name."""

    FORWARDED = 1
    CLIENT_DATA = 2
    INJECTED = 3
    CLOSED = 4
    UPSTREAM_FIN = 5
    PROXY_CLOSED = 6
    RESET_BOTH = 7
    DISCARDED = 8
    ACKNOWLEDGED = 9
    UPSTREAM_OPENED = 10
    ENDED = 11
    OPEN = 20
    BOUNDARY = 21
    EVENT = 22
    LINE = 23


#: Stands for "the same bytes as ``sent``" in a ``FORWARDED`` message.
SAME = True


def _payload(data: bytes | None) -> Any:
    """Relayed bytes as they go into a message: from :data:`OUT_OF_BAND` bytes on, beside the
    pickle (written from the relay's own buffer, read into a ``bytes`` of its own: no copy
    by pickling on either side)."""
    if data is not None and len(data) >= OUT_OF_BAND:
        return pickle.PickleBuffer(data)
    return data


def _frame(batch: object) -> list[memoryview]:
    """A frame of the pipe: its head (the pickle's length, the number of buffers beside it
    and their lengths), the pickle, then those buffers as they are."""
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(batch, protocol=5, buffer_callback=buffers.append)
    views = [b.raw() for b in buffers]
    head = _FRAME.pack(len(data), len(views))
    if views:
        head += struct.pack(f">{len(views)}I", *(len(v) for v in views))
    return [memoryview(head), memoryview(data), *views]


def _grow_pipe(fd: int) -> None:
    # Over /proc/sys/fs/pipe-max-size, or not Linux: the default size.
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_SIZE)


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
        again = SAME if received is sent else _payload(received)
        self._send((Op.FORWARDED, self._id, to_client, ts, _payload(sent), again))

    def client_data(self, ts: int, data: bytes) -> None:
        self._send((Op.CLIENT_DATA, self._id, ts, _payload(data)))

    def injected(self, to_client: bool, ts: int, pdu: bytes) -> None:
        self._send((Op.INJECTED, self._id, to_client, ts, _payload(pdu)))

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
        r, w = os.pipe()
        ar, aw = os.pipe()
        _grow_pipe(w)
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
            for piece in _frame(state):
                _write_all(w, piece)
            answer = await loop.run_in_executor(None, _read_answer, ar, START_WAIT)
        except OSError:
            answer = b""
        if answer[:1] != b"K":
            self._close()
            text = answer[1:].decode(errors="replace") or "the recording process did not start"
            raise ConfigError(text)
        os.set_blocking(w, False)
        # Relayed chunks (up to 256 KiB a read) live here only until the pipe takes them:
        # reused from the heap, not mmapped and faulted in afresh for every read.
        heap.steady(RELAYED_MMAP_THRESHOLD, RELAYED_TRIM_THRESHOLD)
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
        for piece in _frame(self._batch):
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
            answer = _read_answer(self._answers, left, size=5)
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


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_answer(fd: int, timeout: float, size: int = 0) -> bytes:
    """An answer of the recording process: ``size`` bytes (0: what one read gives), or what
    came before ``timeout`` seconds or the end of the pipe."""
    deadline = time.monotonic() + timeout
    got = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return got
        chunk = os.read(fd, (size - len(got)) if size else 4096)
        if not chunk:
            return got
        got += chunk
        if not size or len(got) >= size:
            return got


# --- the recording process ---------------------------------------------------------------


class _Child:
    """The recording process: messages applied in order to a local recording."""

    def __init__(self, rec: LocalRecording, answers: int) -> None:
        self.rec = rec
        self.answers = answers
        self.records: dict[int, LocalRecord] = {}

    def apply(self, message: tuple[Any, ...]) -> None:
        op, connection, *args = message
        rec = self.rec
        if op == Op.OPEN:
            self.records[connection] = rec.connection(connection, *args)
        elif op == Op.EVENT:
            rec.event(connection, *args)
        elif op == Op.LINE:
            rec.line(*args)
        elif op == Op.BOUNDARY:
            to_client, seq = args
            record = self.records.get(connection)
            at = record is not None and record.at_boundary(to_client)
            _write_all(self.answers, seq.to_bytes(4, "big") + (b"\x01" if at else b"\x00"))
        else:
            record = self.records.get(connection)
            if record is None:
                return
            kind = Op(op)
            if kind == Op.FORWARDED and args[3] is SAME:
                args[3] = args[2]
            getattr(record, kind.name.lower())(*args)
            if kind == Op.ENDED:
                del self.records[connection]


class _Reader:
    """The frames of the pipe, in the recording process: small reads buffered, a large
    payload read straight into a ``bytes`` of its own (the recording keeps it)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buf = b""
        self._pos = 0

    @property
    def buffered(self) -> int:
        """Bytes read from the pipe and not yet taken."""
        return len(self._buf) - self._pos

    def read(self, size: int) -> bytes | None:
        """Exactly ``size`` bytes (blocking), or None at the end of the pipe."""
        buf, pos = self._buf, self._pos
        have = len(buf) - pos
        if have >= size:
            self._pos = pos + size
            return buf if pos == 0 and size == len(buf) else buf[pos : pos + size]
        parts = [buf[pos:]] if have else []
        need = size - have
        self._buf, self._pos = b"", 0
        while need > 0:
            chunk = os.read(self._fd, max(need, _READ))
            if not chunk:
                return None
            if len(chunk) > need:  # the start of what follows: kept for the next reads
                parts.append(chunk[:need])
                self._buf, self._pos = chunk, need
                break
            parts.append(chunk)
            need -= len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def frame(self) -> tuple[bytes, list[bytes]] | None:
        """The next frame's pickle and the buffers beside it; None at the end of the pipe."""
        head = self.read(_FRAME.size)
        if head is None:
            return None
        size, count = _FRAME.unpack(head)
        sizes = struct.unpack(f">{count}I", self.read(4 * count) or b"") if count else ()
        data = self.read(size)
        buffers = [self.read(n) for n in sizes]
        if data is None or len(sizes) != count or None in buffers:
            return None
        return data, buffers  # type: ignore[return-value]


def _batches(fd: int, tick: Callable[[], None]) -> Iterator[Any]:
    """The batches read from ``fd`` until its end, ``tick`` called at least every
    :data:`FLUSH_EVERY` s."""
    reader = _Reader(fd)
    last = time.monotonic()
    while True:
        now = time.monotonic()
        if now - last >= FLUSH_EVERY:
            tick()
            last = now
        if not reader.buffered and not select.select([fd], [], [], FLUSH_EVERY)[0]:
            continue
        frame = reader.frame()
        if frame is None:
            return
        data, buffers = frame
        yield pickle.loads(data, buffers=buffers)


def main() -> int:
    """The recording process (see the module docstring)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    answers = int(sys.argv[1])
    ticks: list[Callable[[], None]] = []
    batches = _batches(0, lambda: ticks[0]() if ticks else None)
    first = next(batches, None)
    if first is None:
        return 1
    config, source, quiet_out, generator, phi_redacted = first
    redact.redact_phi(phi_redacted)
    if source is not None:
        config = replace(config, output=replace(config.output, log_filter=Filter.parse(source)))
    store = Store(retention=Retention())
    try:
        rec = open_recording(
            config, store, None, out=None if quiet_out else sys.stdout, generator=generator
        )
    except ConfigError as exc:
        _write_all(answers, b"E" + str(exc).encode())
        return 1
    # Every relayed chunk (up to 256 KiB) is read into a buffer of its own: taken from the
    # heap, not mmapped and faulted in afresh each time (3x the CPU per byte).
    heap.steady(RELAYED_MMAP_THRESHOLD, RELAYED_TRIM_THRESHOLD)
    _write_all(answers, b"K")
    child = _Child(rec, answers)
    trimmed = time.monotonic()

    def tick() -> None:
        nonlocal trimmed
        if rec.pcap is not None:
            rec.pcap.flush()
        if time.monotonic() - trimmed >= heap.TRIM_EVERY:
            trimmed = time.monotonic()
            rec.trim()

    ticks.append(tick)
    for batch in batches:
        for message in batch:
            try:
                child.apply(message)
            except Exception as exc:  # one bad record must not stop the others
                rec.log.line(f"recording failed ({type(exc).__name__}: {exc}); relaying goes on")
    rec.finish_now()
    return 0


if __name__ == "__main__":
    sys.exit(main())
