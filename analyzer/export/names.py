"""File names for exported data sets: made from UIDs checked to be UIDs, created only inside
the output folder, never over an existing file.

A name is ``<SOP Instance UID>.dcm`` (``.partial.dcm`` for an incomplete data set). A name
already taken (the same instance sent twice, or a file that was there before) gets a
counter: ``<uid>.2.dcm``, ``<uid>.3.dcm``... A message whose SOP Instance UID is missing or is
not a valid UID (``../../etc/passwd`` crafted into a capture) is named after where it was
seen: ``association-<n>-message-<id>.dcm``. Files are created with ``O_EXCL`` and
``O_NOFOLLOW`` relative to the folder's descriptor, so neither a name nor a symbolic link
planted in the folder can send a write elsewhere.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from .meta import valid_uid

#: Attempts at a free name before giving up (a folder with that many duplicates is odd).
MAX_DUPLICATES = 10_000


def base_name(sop_instance: str | None, association: int, message_id: int | None) -> str:
    """The name's stem: the UID when it is a valid one, else where the message was seen."""
    if sop_instance is not None and valid_uid(sop_instance):
        return sop_instance
    return f"association-{association}-message-{message_id if message_id is not None else 'x'}"


class OutputFolder:
    """The folder the user named, opened once; files are created inside it only."""

    def __init__(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)

    def close(self) -> None:
        os.close(self._fd)

    def create(self, stem: str, partial: bool) -> tuple[str, BinaryIO]:
        """A new file for ``stem`` (its name, and the file open for writing)."""
        if "/" in stem or stem in ("", ".", "..") or "\0" in stem:
            raise ValueError(f"not a file name: {stem!r}")
        suffix = ".partial.dcm" if partial else ".dcm"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        for n in range(1, MAX_DUPLICATES + 1):
            name = f"{stem}{suffix}" if n == 1 else f"{stem}.{n}{suffix}"
            try:
                fd = os.open(name, flags, 0o644, dir_fd=self._fd)
            except FileExistsError:
                continue
            return name, os.fdopen(fd, "wb")
        raise FileExistsError(f"{stem}{suffix}: {MAX_DUPLICATES} files of that name already")

    def spool(self) -> BinaryIO:
        """An anonymous temporary file in the folder (same file system: cheap to copy from),
        gone when closed."""
        flags = os.O_RDWR | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(".", flags | os.O_TMPFILE, 0o600, dir_fd=self._fd)
        except (AttributeError, OSError):
            import tempfile

            return tempfile.TemporaryFile(dir=self.path)
        return os.fdopen(fd, "w+b")
