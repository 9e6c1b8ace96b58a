"""The pipe from the relay's process to the recording process: the messages (:class:`Op`),
the frames they travel in, and reading them (see ``RECORDING.md``).

A frame is a head (the pickle's length and the number of buffers beside it, ``>II``, then
each buffer's length, ``>I``), the pickle (protocol 5) of a batch of messages, then those
buffers: relayed bytes of :data:`OUT_OF_BAND` bytes or more, written from the relay's own
``bytes`` and read into ``bytes`` of their own, so that pickling copies none of them on
either side.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pickle
import select
import struct
import time
from collections.abc import Callable, Iterator
from enum import IntEnum
from typing import Any

__all__ = [
    "FRAME",
    "OUT_OF_BAND",
    "PIPE_SIZE",
    "RELAYED_MMAP_THRESHOLD",
    "RELAYED_TRIM_THRESHOLD",
    "SAME",
    "Op",
    "Reader",
    "batches",
    "frame",
    "grow_pipe",
    "payload",
    "read_answer",
    "write_all",
]

#: Bytes the pipe itself is asked to hold (Linux: ``F_SETPIPE_SZ``; best effort).
PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = 1031
FRAME = struct.Struct(">II")
"""The head of a frame: the pickle's length, the number of buffers beside it."""
#: Relayed bytes from this size on go beside the pickle (see :func:`payload`).
OUT_OF_BAND = 1024
#: Both processes' allocators: buffers of relayed bytes under this many bytes come from the
#: heap ...
RELAYED_MMAP_THRESHOLD = 1 << 20
#: ... which keeps this many free bytes at its top for reuse.
RELAYED_TRIM_THRESHOLD = 16 << 20
#: Bytes asked of the pipe by one read of the recording process (more when a payload is).
_READ = 1 << 16


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


def payload(data: bytes | None) -> Any:
    """Relayed bytes as they go into a message: from :data:`OUT_OF_BAND` bytes on, beside the
    pickle (written from the relay's own buffer, read into a ``bytes`` of its own: no copy
    by pickling on either side)."""
    if data is not None and len(data) >= OUT_OF_BAND:
        return pickle.PickleBuffer(data)
    return data


def frame(batch: object) -> list[memoryview]:
    """A frame of the pipe: its head (the pickle's length, the number of buffers beside it
    and their lengths), the pickle, then those buffers as they are."""
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(batch, protocol=5, buffer_callback=buffers.append)
    views = [b.raw() for b in buffers]
    head = FRAME.pack(len(data), len(views))
    if views:
        head += struct.pack(f">{len(views)}I", *(len(v) for v in views))
    return [memoryview(head), memoryview(data), *views]


def grow_pipe(fd: int) -> None:
    """Ask the pipe of ``fd`` to hold :data:`PIPE_SIZE` bytes (over
    ``/proc/sys/fs/pipe-max-size``, or not Linux: it keeps its default size)."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_SIZE)


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Write all of ``data`` to ``fd``, blocking (a pipe takes it in pieces)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def read_answer(fd: int, timeout: float, size: int = 0) -> bytes:
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


class Reader:
    """The frames of the pipe, in the recording process: small reads buffered, a large
    payload read straight into a ``bytes`` of its own (the recording keeps it)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
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
            chunk = os.read(self.fd, max(need, _READ))
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
        head = self.read(FRAME.size)
        if head is None:
            return None
        size, count = FRAME.unpack(head)
        lengths = self.read(4 * count)
        data = self.read(size)
        if lengths is None or data is None:  # the pipe ended in the middle of a frame
            return None
        buffers: list[bytes] = []
        for n in struct.unpack(f">{count}I", lengths):
            buffer = self.read(n)
            if buffer is None:
                return None
            buffers.append(buffer)
        return data, buffers

    def batch(self) -> Any:
        """The next frame unpickled; None at the end of the pipe."""
        got = self.frame()
        if got is None:
            return None
        data, buffers = got
        return pickle.loads(data, buffers=buffers)


def batches(reader: Reader, tick: Callable[[float], None], every: float) -> Iterator[Any]:
    """The batches ``reader`` reads until the end of its pipe; ``tick`` is given the time
    (``time.monotonic``) between two batches, and at least every ``every`` seconds."""
    while True:
        tick(time.monotonic())
        if not reader.buffered and not select.select([reader.fd], [], [], every)[0]:
            continue
        batch = reader.batch()
        if batch is None:
            return
        yield batch
