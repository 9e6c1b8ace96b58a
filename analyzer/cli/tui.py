"""``dicomtap tui``: browse the DICOM associations of packet captures in a terminal UI."""

from __future__ import annotations

import os

import click

from analyzer.filter import Filter
from analyzer.findings import Diagnosis
from analyzer.pipeline import Progress, analyze_files
from analyzer.sources.pcap import STDIN, CaptureFile
from analyzer.store import Store

from .common import (
    dicom_port_option,
    fail,
    filter_option,
    keep_option,
    redact_option,
    terminal_ui,
    user_errors,
)


@click.command("tui")
@click.argument("files", nargs=-1, required=True, metavar="CAPTURE...")
@dicom_port_option("Treat this TCP port as a DICOM port (repeatable), as for 'dicomtap analyze'.")
@keep_option(
    "Bytes kept from the start of each data set (shown in the data set tree and hex view)."
)
@filter_option(help="Start with this filter in the list's filter box (/), e.g. 'status=failure'.")
@redact_option()
def tui(files: tuple[str, ...], ports: tuple[int, ...], keep: int, flt: Filter | None) -> None:
    """Browse the DICOM associations in packet captures, interactively.

    The captures are read in the background: associations appear as they are found. Press
    ? in the program for every key; q quits. Several files are read as one capture, in the
    order of their first packets; gzip, xz and bzip2 files are read as they are.

    \b
    Examples:
      dicomtap tui capture.pcapng
      dicomtap tui --port 4100 ring_*.pcap
      dicomtap tui night.pcapng.gz
      dicomtap tui --filter 'cmd=C-STORE and latency>2s' night.pcap

    \b
    Exit status: 0 when the program is quit, 2 usage error or unreadable input.
    """
    if STDIN in files:
        fail(
            "the terminal UI reads its keys from the terminal, so not a capture from standard "
            "input: save the capture to a file (compressed is fine), or use 'dicomtap analyze -'"
        )
    with user_errors():  # fail here, with an exit status, rather than inside the UI
        for path in files:
            CaptureFile(path).close()

    def ingest(store: Store, progress: Progress) -> None:
        analyze_files(files, store, ports=ports, keep=keep, rules=Diagnosis(), progress=progress)

    run = terminal_ui()
    store = Store(keep_pdus=True, compact_pdus=True)
    run(
        store,
        ingest,
        source=" ".join(os.path.basename(f) for f in files),
        initial_filter=flt.source if flt else "",
    )
