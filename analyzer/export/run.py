"""One export: captures in, Part-10 files and a manifest out."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

from pydicom._uid_dict import UID_dictionary

from analyzer.pipeline import Progress, analyze_files
from analyzer.store import Store

from .exporter import Counts, Exporter, Selection
from .meta import valid_uid
from .names import OutputFolder
from .tap import Tap


def sop_class_uid(text: str) -> str | None:
    """A SOP class given as a UID or as its keyword (``CTImageStorage``), or None."""
    if valid_uid(text):
        return text
    for uid, (_, kind, _, _, keyword) in UID_dictionary.items():
        if kind == "SOP Class" and keyword == text:
            return uid
    return None


@dataclass(frozen=True, slots=True)
class ExportResult:
    counts: Counts
    store: Store


def export_files(
    paths: Sequence[str | os.PathLike[str]],
    directory: str,
    selection: Selection,
    *,
    manifest: IO[str] | None = None,
    ports: Sequence[int] = (),
    progress: Progress | None = None,
) -> ExportResult:
    """Write the selected data sets of the captures ``paths`` into ``directory``."""
    folder = OutputFolder(directory)
    store = Store()

    def line(record: dict[str, Any]) -> None:
        if manifest is not None:
            manifest.write(json.dumps(record, separators=(",", ":")) + "\n")

    exporter = Exporter(folder, store, selection, manifest=line)
    tap = Tap(exporter)
    try:
        analyze_files(paths, store, ports=ports, payload=tap, progress=progress)
        tap.finish()
    finally:
        exporter.finish()
        folder.close()
    return ExportResult(exporter.counts, store)
