"""Saving what the list shows: pcapng, JSON Lines or CSV; an exchange's data sets as
DICOM files (headless: no Textual here).

JSON Lines and CSV are the reports ``dicomtap analyze`` writes (:mod:`analyzer.reports`),
over the store's subset of the chosen associations. pcapng holds the chosen associations'
frames, read again from the capture files the store was filled from, or, for a source that
is still running, from the files it writes (:class:`FrameSource`: the proxy's ``--pcap``,
``dicomtap live``'s ``--write``), streamed one packet at a time and written with the
project's pcapng writer; a frame belongs to an association when it is TCP between its two
endpoints, in either direction, within its lifetime. Each frame keeps its bytes and its
time, and gets a comment naming the file and frame it came from; a frame the proxy wrote
itself keeps the comment that says so, so the saved file reads as the source did.
Data sets are written by ``dicomtap export``'s code (:mod:`analyzer.export`), which
reads the capture again (for a running source, the association's frames saved as above),
under ``--redact phi`` de-identified as it does.
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO

from analyzer.errors import InputError
from analyzer.export.exporter import Selection
from analyzer.export.run import export_files
from analyzer.model import Association, Exchange
from analyzer.reports import csvout, jsonl
from analyzer.reports.common import plural
from analyzer.sources.pcap import CaptureFile, read_packets
from analyzer.sources.proxy.pcapng import INJECTED, Interface, PcapngWriter
from analyzer.store import Store

GENERATOR = "dicomtap tui"
LINKTYPE_ETHERNET = 1
"""The only link type the pcapng writer declares for its interfaces."""
NO_CAPTURE = "open a capture file instead"
"""What to do to save frames from a store read from something else."""
KEEP_CAPTURE = "start it with --pcap or --write"
"""What to do to save the frames of a running source that keeps no capture."""
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
class FrameSource:
    """Where the frames of a running source can be read again (a proxy, a live capture),
    whose store names no capture file until it ends."""

    files: Callable[[], Sequence[str]] | None = None
    """The capture files holding the frames so far, oldest first, each readable up to the
    last frame the store shows (the proxy's ``--pcap`` flushed, live's ``--write``); None
    when the source keeps no capture."""
    missing: str = KEEP_CAPTURE
    """What to do to get frames when there are none (the option to add)."""
    name: str = ""
    """The capture's file name (for the names the UI suggests); empty without one."""


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


def save(store: Store, ids: Sequence[int], path: str, frames: FrameSource | None = None) -> Saved:
    """Write the associations ``ids`` of ``store`` to ``path`` in the format its extension
    names (a pcapng's frames from ``frames`` when the source is still running). Never
    overwrites a file; raises :class:`SaveError` with the reason."""
    if not ids:
        raise SaveError("no association to save")
    fmt = save_format(path)
    target = Path(os.path.expanduser(path))
    if target.exists():
        raise SaveError(f"{target} already exists (choose another name)")
    if not target.parent.is_dir():
        raise SaveError(f"{target.parent} is not a folder")
    if fmt is SaveFormat.PCAPNG:
        return _save_pcapng(store, ids, target, capture_files(store, frames))
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


def capture_files(store: Store, frames: FrameSource | None = None) -> list[Path]:
    """The capture files holding the store's frames: those of ``frames`` for a running
    source, else those the store was read from; :class:`SaveError` when there are none (a
    proxy without ``--pcap``, a live capture without ``--write``)."""
    if frames is not None:
        try:
            paths = [Path(f) for f in frames.files()] if frames.files is not None else []
        except OSError as exc:
            raise SaveError(f"the capture cannot be read: {exc.strerror or exc}") from None
        todo = frames.missing
    else:
        paths = [Path(f) for f in store.source.files]
        todo = NO_CAPTURE
    if not paths or not all(p.is_file() for p in paths):
        name = store.source.name or ", ".join(store.source.files) or "this source"
        raise SaveError(
            f"frames can only be saved from capture files, not from {name}: "
            f"{todo}, or save .jsonl or .csv"
        )
    return paths


def _save_pcapng(store: Store, ids: Sequence[int], target: Path, files: list[Path]) -> Saved:
    chosen = [a for i in ids if (a := store.association(i)) is not None]
    spans = _spans(chosen)
    written = skipped = 0
    try:
        writer = PcapngWriter(target, application=GENERATOR)
    except OSError as exc:
        raise SaveError(f"{target}: {exc.strerror or exc}") from None
    try:
        for path in files:
            try:
                for ts, frame, linktype, data, injected in _frames_of(path, spans):
                    if linktype != LINKTYPE_ETHERNET:
                        skipped += 1
                        continue
                    # where it came from, as Wireshark numbers it (shown as its comment); the
                    # proxy's own bytes stay marked as such
                    origin = f"{path.name} frame {frame}"
                    writer.packet(
                        Interface.CLIENT_LEG, ts, data, (origin, INJECTED) if injected else origin
                    )
                    written += 1
            except InputError as exc:
                raise SaveError(str(exc)) from None
            except OSError as exc:
                raise SaveError(f"{path}: {exc.strerror or exc}") from None
    finally:
        writer.close()
    return Saved(target, len(chosen), written, skipped)


def _frames_of(
    path: Path, spans: dict[frozenset[tuple[bytes, int]], list[_Span]]
) -> Iterator[tuple[int, int, int, bytes, bool]]:
    """``(ts, frame, linktype, bytes, injected)`` of each frame of ``path`` that belongs to
    one of ``spans``. The capture is read twice side by side: as segments (who sent what,
    and whether a relay wrote it itself) and as packets (the frame's bytes), matched by
    frame number; either stops at a last block still being written."""
    with CaptureFile(path) as capture, open(path, "rb") as raw:
        packets = read_packets(raw)
        for seg in capture.segments():
            candidates = spans.get(frozenset(((seg.src, seg.sport), (seg.dst, seg.dport))))
            if not candidates or not any(s.start <= seg.ts <= s.end for s in candidates):
                continue
            for ts, frame, linktype, data, _ in packets:
                if frame == seg.frame:
                    yield ts, frame, linktype, data, seg.injected
                    break
            else:
                return  # the second reading ended first (cannot happen on a file that grows)


@dataclass(frozen=True, slots=True)
class SavedDataSets:
    """What saving an exchange's data sets wrote (``.dcm`` files) or left out, and why."""

    folder: Path
    files: tuple[str, ...]
    left_out: tuple[str, ...]

    def __str__(self) -> str:
        if not self.files:
            why = "; ".join(self.left_out) or "the exchange carried no data set"
            return f"no data set saved: {why}"
        shown = ", ".join(self.files[:3]) + (" …" if len(self.files) > 3 else "")
        more = f" ({len(self.left_out)} left out: {self.left_out[0]})" if self.left_out else ""
        return f"saved {plural(len(self.files), 'data set')} to {self.folder}: {shown}{more}"


def save_datasets(
    store: Store, e: Exchange, folder: str, frames: FrameSource | None = None
) -> SavedDataSets:
    """Write the data sets of exchange ``e`` as DICOM Part-10 files into ``folder`` (made
    if missing), with ``dicomtap export``'s code: the capture is read again and the
    association's data sets exported into a private folder inside ``folder``, from which
    this exchange's files are moved out; nothing is written outside ``folder``, no file
    is overwritten. For a running source (``frames``), the association's frames are saved
    first (into that private folder) and exported from there: its files number
    associations otherwise than its store (the proxy's hold the upstream legs too)."""
    paths = capture_files(store, frames)
    target = Path(os.path.expanduser(folder))
    try:
        target.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".dicomtap-", dir=target))
    except OSError as exc:
        raise SaveError(f"{target}: {exc.strerror or exc}") from None
    manifest = io.StringIO()
    wanted = frozenset({e.association})
    files: list[str] = []
    left_out: list[str] = []
    try:
        if frames is not None:  # the association alone: it is the only one exported
            alone = work / "association.pcapng"
            _save_pcapng(store, [e.association], alone, paths)
            paths, wanted = [alone], frozenset()
        selection = Selection(associations=wanted, include_queries=True, partial=True)
        export_files(paths, str(work), selection, manifest=manifest)
        for line in manifest.getvalue().splitlines():
            record = json.loads(line)
            if record.get("type") != "dataset" or record.get("exchange") != e.index:
                continue
            name = record.get("file")
            if not name:
                left_out.append(str(record.get("left_out") or "not written"))
                continue
            files.append(_move_out(work / name, target))
    except InputError as exc:
        raise SaveError(str(exc)) from None
    except OSError as exc:
        raise SaveError(f"{target}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return SavedDataSets(target, tuple(files), tuple(left_out))


def _move_out(path: Path, folder: Path) -> str:
    """Move ``path`` into ``folder`` under its own name, or a free variant of it."""
    stem, suffix = path.name.split(".dcm")[0], ".dcm"
    for n in range(1, 1000):
        name = f"{stem}{suffix}" if n == 1 else f"{stem}.{n}{suffix}"
        try:
            os.link(path, folder / name)  # fails if the name is taken: never overwrites
        except FileExistsError:
            continue
        return name
    raise SaveError(f"{folder}: too many files named {stem}…{suffix}")
