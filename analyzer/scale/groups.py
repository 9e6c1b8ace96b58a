"""Capture files → capture points: which files are parts of one capture, and in what order.

A capture point is one capture tool on one host, writing one capture, often as a ring
buffer of many files. Its files are read one after the other as one capture (a connection
may continue from one file into the next); files of different capture points are analysed
apart (the same connection seen from two places must not be reassembled as one). The rule,
from what each file says about itself (:func:`analyzer.sources.pcapinfo.probe`):

1. **Same folder, stem and origin.** Files can be of one capture point only if they are in
   the same folder, have the same name stem (the file name without its extensions and
   without the numbers and times capture tools append: dumpcap's ring buffer
   ``NAME_00001_20261206120000.pcapng``, tcpdump ``-C``'s ``NAME.pcap1``, ``-G``'s times) and
   the same origin (format; link type, snap length, name, description and capture filter of
   every interface; for pcapng, the hardware, operating system and application in the
   section header).
2. **One after the other in time.** Taken in the order of their first packets, a file
   continues the capture point whose last file ended at or before its first packet (of
   several, the one whose sequence number it follows, then the one that ended last), unless
   that capture point already holds a file of its sequence number. Two files that overlap in
   time are two capture points. One exception, for timestamps a little out of order across a
   file switch: a file whose sequence number directly follows a capture point's last file
   continues it when it begins less than a second before that file's last packet.
3. A file without a timestamped packet joins the first capture point of its folder, stem and
   origin (it adds no traffic); a file whose origin cannot be read (a compressed capture) is a
   capture point of its own.

Capture points are ordered by their first packets, the files of each by theirs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from analyzer.sources.pcapinfo import CaptureInfo

_EXTENSIONS = (".gz", ".xz", ".bz2", ".pcapng", ".pcap", ".cap", ".dmp", ".ntar")
_TRAILING = re.compile(r"[-_.:+ ]*\d[-\d_.:+ T]*Z?$")
"""Numbers, dates and times at the end of a name, with their separators."""
_DUMPCAP = re.compile(r"_(?:(\d{5,})_\d{14}|\d{14}_(\d{5,}))$")
"""dumpcap's ring buffer names: ``NAME_00001_20261206120000`` (or time first)."""
_TCPDUMP = re.compile(r"\.(?:pcapng|pcap|cap|dmp)(\d+)$", re.IGNORECASE)
"""tcpdump -C's names: ``NAME.pcap``, ``NAME.pcap1``, ``NAME.pcap2``..."""
_OUT_OF_ORDER_NS = 1_000_000_000
"""How far a file's first packet may precede its predecessor's last, in the same ring."""


@dataclass(frozen=True, slots=True)
class Group:
    """The files of one capture point, in the order to read them."""

    files: tuple[str, ...]
    size: int
    """Bytes in its files."""
    first_ts: int | None


def stem(path: str) -> str:
    """The file name without extensions and the numbers and times appended to it."""
    name = os.path.basename(path)
    while True:
        before = name
        lower = name.lower()
        for ext in _EXTENSIONS:
            if lower.endswith(ext) and len(name) > len(ext):
                name = name[: -len(ext)]
                break
        name = _TRAILING.sub("", name)
        if name == before:
            return name


def sequence(path: str) -> int | None:
    """The file's number in its ring buffer, from its name (dumpcap, tcpdump -C), or None."""
    name = os.path.basename(path)
    found = _TCPDUMP.search(name)
    if found:
        return int(found.group(1))
    for ext in _EXTENSIONS:
        while name.lower().endswith(ext) and len(name) > len(ext):
            name = name[: -len(ext)]
    found = _DUMPCAP.search(name)
    if found:
        return int(found.group(1) or found.group(2))
    return None


@dataclass(slots=True)
class _Chain:
    infos: list[CaptureInfo] = field(default_factory=list)
    sequences: set[int] = field(default_factory=set)

    @property
    def last(self) -> CaptureInfo:
        return self.infos[-1]

    def add(self, info: CaptureInfo) -> None:
        self.infos.append(info)
        number = sequence(info.path)
        if number is not None:
            self.sequences.add(number)


def _continues(chain: _Chain, info: CaptureInfo) -> tuple[bool, bool]:
    """(whether ``info`` may continue ``chain``, whether its number follows the chain's)."""
    assert info.first_ts is not None
    number = sequence(info.path)
    if number is not None and number in chain.sequences:
        return False, False
    previous = sequence(chain.last.path)
    follows = number is not None and previous is not None and number == previous + 1
    last = chain.last.last_ts
    if last is None or last <= info.first_ts:
        return True, follows
    return follows and last - info.first_ts < _OUT_OF_ORDER_NS, follows


def _chains(infos: list[CaptureInfo]) -> list[_Chain]:
    """Rules 2 and 3 for files of one origin and stem."""
    chains: list[_Chain] = []
    timed = sorted(
        (i for i in infos if i.first_ts is not None),
        key=lambda i: (i.first_ts or 0, i.last_ts or 0, sequence(i.path) or 0, i.path),
    )
    for info in timed:
        best: tuple[bool, int] | None = None
        chosen: _Chain | None = None
        for chain in chains:
            ok, follows = _continues(chain, info)
            if not ok:
                continue
            rank = (follows, chain.last.last_ts or 0)
            if best is None or rank > best:
                best, chosen = rank, chain
        if chosen is None:
            chosen = _Chain()
            chains.append(chosen)
        chosen.add(info)
    timeless = sorted(
        (i for i in infos if i.first_ts is None), key=lambda i: (sequence(i.path) or 0, i.path)
    )
    if timeless:
        if not chains:
            chains.append(_Chain())
        for info in timeless:
            chains[0].add(info)
    return chains


def group(infos: Iterable[CaptureInfo]) -> list[Group]:
    """The capture points of ``infos`` (one per file path), by the rule of this module."""
    by_origin: dict[tuple[object, ...], list[CaptureInfo]] = {}
    groups: list[Group] = []
    for info in infos:
        if info.format is None:
            groups.append(Group((info.path,), info.size, None))
            continue
        folder = os.path.dirname(os.path.abspath(info.path))
        by_origin.setdefault((folder, stem(info.path), *info.origin), []).append(info)
    for members in by_origin.values():
        for chain in _chains(members):
            first = chain.infos[0].first_ts
            files = tuple(i.path for i in chain.infos)
            groups.append(Group(files, sum(i.size for i in chain.infos), first))
    groups.sort(key=lambda g: (g.first_ts is None, g.first_ts or 0, stem(g.files[0]), g.files))
    return groups
