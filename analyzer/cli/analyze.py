"""``dicomtap analyze``: reconstruct the DICOM associations in packet captures."""

from __future__ import annotations

import click

from analyzer.filter import Filter, select
from analyzer.findings import Diagnosis
from analyzer.pipeline import analyze_files
from analyzer.reports import csvout, jsonl, text
from analyzer.store import Store
from analyzer.textsafe import printable

from .common import (
    dicom_port_option,
    filter_option,
    keep_option,
    output_file,
    progress_bar,
    progress_option,
    redact_option,
    user_errors,
)
from .version import generator


@click.command()
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "csv"]),
    default="text",
    show_default=True,
    help="text: one block per association; json: JSON Lines records; csv: one row per exchange.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    help="Write here instead of stdout.",
)
@dicom_port_option(
    "Treat this TCP port as a DICOM port (repeatable). DICOM is found on any port "
    "anyway; a port named here also reports connections that never associated and settles "
    "which side is the server when the capture missed the TCP handshake."
)
@keep_option("Bytes kept from the start of each data set (for display); the rest is only counted.")
@filter_option()
@redact_option()
@progress_option()
def analyze(
    files: tuple[str, ...],
    fmt: str,
    output: str | None,
    ports: tuple[int, ...],
    keep: int,
    flt: Filter | None,
    progress: bool,
) -> None:
    """Reconstruct the DICOM associations in packet captures.

    Several FILEs are read as one capture (for example the files of a ring buffer), in
    the order of their first packets whatever order they are given in. pcap and pcapng
    are recognised by their content, whatever the file name, and so are gzip, xz and bzip2
    compression (read as they stream). FILE - is standard input.

    \b
    Examples:
      dicomtap analyze capture.pcapng
      dicomtap analyze --format json -o records.jsonl night.pcap.gz
      dicomtap analyze --format csv ring_*.pcapng > exchanges.csv
      dicomtap analyze --port 4100 vendor.pcap
      ssh modality-gw 'tcpdump -w - port 104' | dicomtap analyze -
      dicomtap analyze --filter 'cmd=C-STORE and latency>2s' night.pcap

    \b
    Exit status: 0 analysed (even a truncated capture, which is reported on stderr),
    2 usage error, unreadable input, or a report that cannot be written (a full disk).
    """
    store = Store()
    with user_errors(), progress_bar(progress) as bar:
        analyze_files(files, store, ports=ports, keep=keep, rules=Diagnosis(), progress=bar)
    for note in store.source.truncated:
        click.echo(f"dicomtap: warning: {printable(note)}; analysed up to the cut", err=True)
    for note in store.source.warnings:
        click.echo(f"dicomtap: note: {printable(note)}", err=True)
    if not len(store):
        click.echo(f"dicomtap: {text.summary_line(store)}", err=True)
    if flt is not None:
        store = select(store, flt)
    with output_file(output) as out:
        if fmt == "json":
            jsonl.write(store, out, generator())
        elif fmt == "csv":
            csvout.write(store, out)
        else:
            text.write(store, out)
