"""``dicomtap tui``: browse the DICOM associations of packet captures in a terminal UI."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable

import click

from analyzer.errors import DicomtapError
from analyzer.findings import Diagnosis
from analyzer.pipeline import Progress, analyze_files
from analyzer.sources.pcap import CaptureFile
from analyzer.store import Store

from .common import fail


@click.command("tui")
@click.argument("files", nargs=-1, required=True, metavar="CAPTURE...")
@click.option(
    "--port",
    "ports",
    type=click.IntRange(1, 65535),
    multiple=True,
    help="Treat this TCP port as a DICOM port (repeatable), as for 'dicomtap analyze'.",
)
@click.option(
    "--keep",
    type=click.IntRange(0, 1 << 24),
    default=64 * 1024,
    show_default=True,
    help="Bytes kept from the start of each data set (shown in the data set tree and hex view).",
)
def tui(files: tuple[str, ...], ports: tuple[int, ...], keep: int) -> None:
    """Browse the DICOM associations in packet captures, interactively.

    The captures are read in the background: associations appear as they are found. Press
    ? in the program for every key; q quits.

    \b
    Examples:
      dicomtap tui capture.pcapng
      dicomtap tui --port 4100 ring_*.pcap
    """
    for path in files:  # fail here, with an exit status, rather than inside the UI
        try:
            CaptureFile(path).close()
        except DicomtapError as exc:
            fail(str(exc), exc.exit_code)

    def ingest(store: Store, progress: Progress) -> None:
        analyze_files(files, store, ports=ports, keep=keep, rules=Diagnosis(), progress=progress)

    # The UI is imported only here, and by name, so that the analyzer never depends on it
    # (the layer contract in pyproject.toml; importing analyzer.cli must not load Textual).
    run: Callable[..., None] = importlib.import_module("tui.app").run
    store = Store(keep_pdus=True, compact_pdus=True)
    run(store, ingest, source=" ".join(os.path.basename(f) for f in files))
