"""Frame numbers as Wireshark shows them (headless: no Textual here).

Several capture files are read as one capture and numbered on from one file to the next;
Wireshark opens one file at a time and numbers each from 1. With several files a frame is
named by its file and its number in that file (``ring_2.pcapng:17``); with one file it is
just its number.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass

from analyzer.store import SourceInfo
from analyzer.textsafe import printable


@dataclass(frozen=True, slots=True)
class FrameNames:
    """Names frames of one store's source."""

    files: tuple[str, ...] = ()
    bases: tuple[int, ...] = ()

    @classmethod
    def of(cls, source: SourceInfo) -> FrameNames:
        if len(source.files) < 2 or len(source.frame_bases) != len(source.files):
            return cls()
        names = tuple(printable(os.path.basename(f)) for f in source.files)
        return cls(names, tuple(source.frame_bases))

    def locate(self, frame: int) -> tuple[str | None, int]:
        """``(file name, number in that file)``; no file name with a single file."""
        if not self.files:
            return None, frame
        i = max(0, bisect.bisect_left(self.bases, frame) - 1)
        return self.files[i], frame - self.bases[i]

    def number(self, frame: int | None) -> str:
        """The number alone (in its file): for narrow columns."""
        return "" if frame is None else str(self.locate(frame)[1])

    def name(self, frame: int | None) -> str:
        """``file:number`` with several files, else the number."""
        if frame is None:
            return "?"
        file, n = self.locate(frame)
        return f"{file}:{n}" if file else str(n)

    def span(self, first: int | None, last: int | None) -> str:
        """``frames a.pcap:3-9``, ``frame 4``, ``frames a.pcap:98-b.pcap:2``."""
        if first is None:
            return "frame ?"
        if last is None or last == first:
            return f"frame {self.name(first)}"
        (f1, n1), (f2, n2) = self.locate(first), self.locate(last)
        if f1 == f2:
            return f"frames {f1 + ':' if f1 else ''}{n1}-{n2}"
        return f"frames {self.name(first)}-{self.name(last)}"
