"""One data set on its way to disk: its bytes written as its PDV fragments pass, and the
ranges the capture lost.

Bytes go to an anonymous temporary file in the output folder (never to memory); a lost
range leaves a hole (a sparse region, zero when read) and is listed in :attr:`Spool.missing`.
When the message it belongs to is known, :meth:`Spool.copy_to` puts the bytes after the File
Meta group of the final file (``copy_file_range``: no pass through user space).
"""

from __future__ import annotations

import os
import shutil
from typing import BinaryIO

#: Missing ranges listed per data set (a capture with more holes lists the first ones and
#: says how many there were).
MAX_RANGES = 1000


class Spool:
    """The bytes of one data set (``context_id`` on one direction of one connection)."""

    __slots__ = (
        "command",
        "context_id",
        "cut",
        "end_frame",
        "end_ts",
        "file",
        "length",
        "missing",
        "missing_count",
    )

    def __init__(self, file: BinaryIO, context_id: int) -> None:
        self.file = file
        self.context_id = context_id
        self.length = 0
        """Bytes of the data set so far, lost ones included."""
        self.missing: list[tuple[int, int]] = []
        """``(offset, size)`` of each range the capture lost (the first :data:`MAX_RANGES`)."""
        self.missing_count = 0
        self.cut = False
        """The stream broke inside the data set: its end is missing, of unknown size."""
        self.end_ts = 0
        self.end_frame: int | None = None
        self.command: bytes | None = None
        """The command set sent before the data set on its context, when it was seen whole."""

    @property
    def complete(self) -> bool:
        return not self.missing_count and not self.cut

    def write(self, data: bytes | memoryview) -> None:
        self.file.write(data)
        self.length += len(data)

    def lost(self, size: int) -> None:
        """``size`` bytes here are missing: a hole in the file, listed."""
        if self.missing_count < MAX_RANGES:
            if self.missing and sum(self.missing[-1]) == self.length:
                offset, before = self.missing[-1]
                self.missing[-1] = (offset, before + size)
            else:
                self.missing.append((self.length, size))
        self.missing_count += 1
        self.file.seek(size, os.SEEK_CUR)
        self.length += size

    def ended(self, ts: int, frame: int | None) -> None:
        """The last fragment ended at ``ts``/``frame`` (how the message is recognised)."""
        self.end_ts = ts
        self.end_frame = frame

    def copy_to(self, out: BinaryIO) -> None:
        """Append the data set (holes read as zeros) to ``out``."""
        self.file.flush()
        self.file.truncate(self.length)  # a hole at the very end still counts
        self.file.seek(0)
        out.flush()
        src, dst = self.file.fileno(), out.fileno()
        copied = 0
        try:
            while copied < self.length:
                done = os.copy_file_range(src, dst, self.length - copied)
                if not done:
                    break
                copied += done
        except OSError:
            pass  # another file system, an old kernel: copy through user space
        if copied < self.length:
            self.file.seek(copied)
            out.seek(0, os.SEEK_END)
            shutil.copyfileobj(self.file, out, 1 << 20)

    def close(self) -> None:
        self.file.close()
