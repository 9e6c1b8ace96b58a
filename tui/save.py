"""Saving what the list shows: pcapng, JSON Lines or CSV (headless: no Textual here).

JSON Lines and CSV are the reports ``dicomtap analyze`` writes (:mod:`analyzer.reports`),
over the store's subset of the chosen associations. pcapng holds the chosen associations'
frames, read again from the capture files the store was filled from (streamed, one packet
at a time) and written with the project's pcapng writer; a frame belongs to an association
when it is TCP between its two endpoints, in either direction, within its lifetime.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO

from analyzer.errors import InputError
from analyzer.model import Association
from analyzer.reports import csvout, jsonl
from analyzer.reports.common import plural
from analyzer.sources.packets import PacketDecoder
from analyzer.sources.pcap import read_packets
from analyzer.sources.proxy.pcapng import Interface, PcapngWriter
from analyzer.store import Store

GENERATOR = "dicomtap tui"
LINKTYPE_ETHERNET = 1
"""The only link type the pcapng writer declares for its interfaces."""
MARGIN_NS = 2_000_000_000
"""Frames this long after an association's end still belong to it (the TCP close)."""


class SaveFormat(StrEnum):
    """What a file name's extension asks for."""

    PCAPNG = ".pcapng"
    JSONL = ".jsonl"
    CSV = ".csv"


class SaveError(Exception):
    """Why nothing (or not everything) could be saved, in one line for the user."""


@dataclass(frozen=True, slots=True)
class Saved:
    """What a save wrote."""

    path: Path
    associations: int
    frames: int | None = None
    """Frames written (pcapng only)."""
    skipped: int = 0
    """Frames of the associations that could not be written (another link type)."""

    def __str__(self) -> str:
        what = plural(self.associations, "association")
        if self.frames is not None:
            what += f", {plural(self.frames, 'frame')}"
        if self.skipped:
            what += f" ({plural(self.skipped, 'frame')} of another link type left out)"
        return f"saved {what} to {self.path}"


def save_format(path: str) -> SaveFormat:
    """The format a file name asks for; :class:`SaveError` for any other extension."""
    suffix = Path(path).suffix.lower()
    for fmt in SaveFormat:
        if suffix == fmt.value:
            return fmt
    raise SaveError(f"{path}: name the file .pcapng, .jsonl or .csv")


def save(store: Store, ids: Sequence[int], path: str) -> Saved:
    """Write the associations ``ids`` of ``store`` to ``path`` in the format its extension
    names. Never overwrites a file; raises :class:`SaveError` with the reason."""
    if not ids:
        raise SaveError("no association to save")
    fmt = save_format(path)
    target = Path(os.path.expanduser(path))
    if target.exists():
        raise SaveError(f"{target} already exists (choose another name)")
    if not target.parent.is_dir():
        raise SaveError(f"{target.parent} is not a folder")
    if fmt is SaveFormat.PCAPNG:
        return _save_pcapng(store, ids, target)
    subset = store.subset(set(ids))
    try:
        with _create(target) as out:
            if fmt is SaveFormat.JSONL:
                jsonl.write(subset, out, GENERATOR)
            else:
                csvout.write(subset, out)
    except OSError as exc:
        raise SaveError(f"{target}: {exc.strerror or exc}") from None
    return Saved(target, len(ids))


def _create(path: Path) -> IO[str]:
    # reports hold patient data: owner-only, and never over an existing file
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8", newline="")


@dataclass(frozen=True, slots=True)
class _Span:
    """One association as the frames are matched against it."""

    ends: frozenset[tuple[bytes, int]]
    start: int
    end: int


def _spans(associations: Iterable[Association]) -> dict[frozenset[tuple[bytes, int]], list[_Span]]:
    by_ends: dict[frozenset[tuple[bytes, int]], list[_Span]] = {}
    for a in associations:
        ends = frozenset((ipaddress.ip_address(e.ip).packed, e.port) for e in (a.client, a.server))
        end = a.end_ts + MARGIN_NS if a.end_ts is not None else 1 << 63
        by_ends.setdefault(ends, []).append(_Span(ends, a.start_ts - MARGIN_NS, end))
    return by_ends


def capture_files(store: Store) -> list[Path]:
    """The capture files the store was read from; :class:`SaveError` when it was not read
    from files (a proxy, a live capture still running)."""
    paths = [Path(f) for f in store.source.files]
    if not paths or not all(p.is_file() for p in paths):
        name = store.source.name or ", ".join(store.source.files) or "this source"
        raise SaveError(
            f"frames can only be saved from capture files, not from {name}: "
            "save .jsonl or .csv, or capture with --pcap/--write"
        )
    return paths


def _save_pcapng(store: Store, ids: Sequence[int], target: Path) -> Saved:
    files = capture_files(store)
    chosen = [a for i in ids if (a := store.association(i)) is not None]
    spans = _spans(chosen)
    decoder = PacketDecoder()
    written = skipped = 0
    try:
        writer = PcapngWriter(target, application=GENERATOR)
    except OSError as exc:
        raise SaveError(f"{target}: {exc.strerror or exc}") from None
    try:
        for path in files:
            try:
                with open(path, "rb") as f:
                    for ts, frame, linktype, data, orig_len in read_packets(f):
                        seg = decoder.decode(ts, frame, linktype, data, orig_len)
                        if seg is None:
                            continue
                        ends = frozenset(((seg.src, seg.sport), (seg.dst, seg.dport)))
                        candidates = spans.get(ends)
                        if not candidates or not any(s.start <= ts <= s.end for s in candidates):
                            continue
                        if linktype != LINKTYPE_ETHERNET:
                            skipped += 1
                            continue
                        writer.packet(Interface.CLIENT_LEG, ts, (data,))
                        written += 1
            except InputError as exc:
                raise SaveError(str(exc)) from None
            except OSError as exc:
                raise SaveError(f"{path}: {exc.strerror or exc}") from None
    finally:
        writer.close()
    return Saved(target, len(chosen), written, skipped)
