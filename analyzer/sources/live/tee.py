"""Keep the raw capture of a live session: the pcapng stream, block for block, in files.

:class:`PcapngFiles` is fed the bytes of a pcapng stream exactly as they come from the
capture tool (:class:`TeeReader` hands it every chunk the reader reads) and writes them,
whole blocks only, into one file or into a ring of files. Each ring file starts with copies
of the stream's Section Header and Interface Description blocks, so every file is a
complete capture that Wireshark and ``dicomtap analyze`` open on its own, and the files
read in order give the same packets, frame numbers included, as the stream.

Why tee rather than let dumpcap write the ring itself (``-b files:N -b filesize:KB``) and
follow its files: dumpcap writes either a pipe or files, not both, so following its files
would mean tailing files that grow and switch underneath, with their own latency, while
the tee keeps one stream and one parsing path (:func:`~analyzer.sources.pcap.read_packets`)
and the files hold exactly the bytes that were analysed. Framing costs one header unpack
per block, nothing per byte.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

from analyzer.errors import DicomtapError
from analyzer.sources.pcap import BYTE_ORDER, MAX_RECORD, PACKET_BLOCKS, BlockType

__all__ = ["PcapngFiles", "TeeReader", "WriteError", "ring_name"]

_LENGTH = {"<": struct.Struct("<I").unpack_from, ">": struct.Struct(">I").unpack_from}


class WriteError(DicomtapError):
    """A capture file cannot be created."""


def ring_name(path: str | os.PathLike[str], index: int) -> Path:
    """The ``index``-th file (from 1) of a ring based on ``path``: ``cap.pcapng`` gives
    ``cap_00001.pcapng``, ``cap_00002.pcapng`` ... (names sort in capture order)."""
    p = Path(path)
    suffix = p.suffix or ".pcapng"
    stem = p.name.removesuffix(p.suffix) if p.suffix else p.name
    return p.with_name(f"{stem}_{index:05d}{suffix}")


class PcapngFiles:
    """Writes a pcapng stream into ``path``, or into a ring of ``ring[0]`` files of about
    ``ring[1]`` bytes each (the oldest deleted as a new one starts).

    A file switches before the packet block that would take it past the size, so a file
    holds at least one packet and only whole blocks. If writing fails (disk full), writing
    stops, :attr:`error` says why, and the stream goes on being analysed.
    """

    def __init__(self, path: str | os.PathLike[str], ring: tuple[int, int] | None = None) -> None:
        self.path = Path(path)
        self.ring = ring
        self.files: list[Path] = []
        """The files kept, oldest first (a ring deletes the oldest)."""
        self.error: str | None = None
        self._endian = "<"
        self._pending = b""
        self._header: list[bytes] = []  # the section header and interface blocks so far
        self._index = 0
        self._size = 0
        self._packets_in_file = 0
        self._passthrough = False  # the stream stopped framing: copy the rest as it comes
        self._file: BinaryIO | None = None
        self._current = self.path
        self._open_next()

    # --- files -----------------------------------------------------------------------

    def _open_next(self) -> None:
        self._index += 1
        path = ring_name(self.path, self._index) if self.ring else self.path
        try:
            self._file = open(path, "wb", buffering=0)  # noqa: SIM115 - closed in close()
        except OSError as exc:
            if self._index == 1:
                raise WriteError(f"cannot write {path}: {exc.strerror or exc}") from None
            self._failed(path, exc)
            return
        self._current = path
        self.files.append(path)
        self._size = 0
        self._packets_in_file = 0
        if self.ring and len(self.files) > self.ring[0]:
            self.files.pop(0).unlink(missing_ok=True)
        for block in self._header:
            self._write(block)

    def _rotate(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._open_next()

    def _failed(self, path: Path, exc: OSError) -> None:
        self.error = f"cannot write {path}: {exc.strerror or exc}; the capture is no longer kept"
        if self._file is not None:
            self._file.close()
            self._file = None

    def _write(self, data: bytes | memoryview) -> None:
        f = self._file
        if f is None or not len(data):
            return
        view = memoryview(data)
        try:
            while view:
                n = f.write(view)
                if n is None:  # pragma: no cover - only for non-blocking files
                    continue
                view = view[n:]
        except OSError as exc:
            self._failed(self._current, exc)
            return
        self._size += len(data)

    # --- the stream --------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """The next bytes of the stream, however they were cut."""
        if self._file is None:
            return
        if self._passthrough:
            self._write(data)
            return
        buf = self._pending + data if self._pending else data
        view = memoryview(buf)
        pos = 0
        run = 0  # start of the blocks not yet written
        limit = self.ring[1] if self.ring else 0
        end = len(buf)
        while pos + 12 <= end:
            btype = _LENGTH["<"](buf, pos)[0]  # 0x0A0D0D0A reads the same in both orders
            if btype == BlockType.SHB:
                order = BYTE_ORDER.get(buf[pos + 8 : pos + 12])
                if order is None:
                    break  # not a section header after all: copy the rest unframed
                self._endian = order
            else:
                btype = _LENGTH[self._endian](buf, pos)[0]
            blen = _LENGTH[self._endian](buf, pos + 4)[0]
            if blen < 12 or blen & 3 or blen > MAX_RECORD:  # as the reader: the stream is damaged
                break
            if pos + blen > end:
                self._write(view[run:pos])
                self._pending = bytes(view[pos:])
                return
            if btype == BlockType.SHB:
                self._header = [bytes(view[pos : pos + blen])]
            elif btype == BlockType.IDB:
                self._header.append(bytes(view[pos : pos + blen]))
            elif btype in PACKET_BLOCKS and limit:
                if self._packets_in_file and self._size + (pos - run) + blen > limit:
                    self._write(view[run:pos])
                    run = pos
                    self._rotate()
                    if self._file is None:
                        return
                self._packets_in_file += 1
            pos += blen
        else:
            self._write(view[run:pos])
            self._pending = bytes(view[pos:])
            return
        # A block that cannot be framed: the reader reports the damage; keep every byte.
        self._passthrough = True
        self._pending = b""
        self._write(view[run:])

    def close(self) -> None:
        """Close the current file (a block cut short by the end of the stream is written
        too, so the file holds every byte that came, as the reader saw them)."""
        if self._pending:
            self._write(self._pending)
            self._pending = b""
        if self._file is not None:
            self._file.close()
            self._file = None


class TeeReader:
    """A binary stream that hands every chunk it reads to a :class:`PcapngFiles` too."""

    def __init__(self, raw: BinaryIO, files: PcapngFiles) -> None:
        self._raw = raw
        self._files = files

    def read(self, size: int = -1) -> bytes:
        """At most ``size`` bytes: what one read of the underlying stream returned."""
        chunk = self._raw.read(size)
        if chunk:
            self._files.feed(chunk)
        return chunk or b""
