"""``dicomtap export``: the data sets of packet captures as DICOM Part-10 files."""

from __future__ import annotations

import sys

import click

from analyzer.export.exporter import Selection
from analyzer.export.run import export_files, sop_class_uid
from analyzer.filter import Filter
from analyzer.reports.common import size_text
from analyzer.textsafe import printable

from .common import (
    dicom_port_option,
    fail,
    filter_option,
    output_file,
    progress_bar,
    progress_option,
    redact_option,
    user_errors,
)


@click.command()
@click.argument("files", nargs=-1, required=True, metavar="CAPTURE...")
@click.option(
    "-o",
    "--output",
    "directory",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder to write the files into (created if needed; nothing is written elsewhere).",
)
@click.option(
    "--sop-class",
    "sop_classes",
    multiple=True,
    metavar="UID|KEYWORD",
    help="Only this SOP class (repeatable), e.g. CTImageStorage or 1.2.840.10008.5.1.4.1.1.2.",
)
@click.option(
    "--association",
    "associations",
    multiple=True,
    type=click.IntRange(min=1),
    help="Only this association (its number in 'dicomtap analyze'; repeatable).",
)
@click.option(
    "--include-queries",
    is_flag=True,
    help="Also write C-FIND/C-GET/C-MOVE identifiers and N-service data sets.",
)
@click.option(
    "--partial",
    is_flag=True,
    help="Write data sets the capture has incompletely as <uid>.partial.dcm (missing bytes "
    "read as zeros; the manifest lists them).",
)
@click.option(
    "--manifest",
    metavar="FILE.jsonl",
    type=click.Path(dir_okay=False),
    help="One JSON line per data set: file, association, exchange, SOP class and instance, "
    "transfer syntax, bytes, C-STORE status, complete, missing ranges.",
)
@filter_option(
    help="Only the associations that match EXPR as known when each data set's exchange ends, "
    "e.g. 'calling=CT* and status=success' (see the README's 'Filters')."
)
@dicom_port_option("Treat this TCP port as a DICOM port (repeatable), as for 'dicomtap analyze'.")
@progress_option()
@redact_option()
def export(
    files: tuple[str, ...],
    directory: str,
    sop_classes: tuple[str, ...],
    associations: tuple[int, ...],
    include_queries: bool,
    partial: bool,
    manifest: str | None,
    flt: Filter | None,
    ports: tuple[int, ...],
    progress: bool,
) -> None:
    """Write each data set sent in a C-STORE (C-GET and C-MOVE sub-operations included) as a
    DICOM Part-10 file, <SOPInstanceUID>.dcm.

    The data set bytes are those on the wire, deflated ones as sent, streamed to disk (an
    object of any size never sits in memory), after a File Meta Information group naming the
    transfer syntax negotiated for its presentation context, the SOP class and instance of
    the command, dicomtap as the implementation, and the sender's AE title. A data set the
    capture does not hold whole (a lost segment, a capture that ends or begins in its middle)
    is never written as if complete: it is left out, or with --partial written as
    <uid>.partial.dcm. An instance sent twice gets two files (<uid>.dcm, <uid>.2.dcm). Names
    come only from valid UIDs; nothing is written outside DIR.

    \b
    Examples:
      dicomtap export capture.pcapng -o objects/
      dicomtap export night.pcap --sop-class CTImageStorage --manifest objects.jsonl -o ct/
      dicomtap export lossy.pcap --partial -o recovered/
      dicomtap export qr.pcapng --include-queries --association 3 -o q/
      dicomtap export site.pcapng --filter 'calling=CT_* and status=failure' -o failed/

    \b
    Exit status: 0 every selected data set was written whole, 1 some were incomplete (left
    out, or written as .partial.dcm), 2 usage error, unreadable input or a write that failed.
    """
    classes: set[str] = set()
    for text in sop_classes:
        uid = sop_class_uid(text)
        if uid is None:
            fail(f"--sop-class {text}: not a UID nor a SOP class keyword")
        classes.add(uid)
    selection = Selection(
        sop_classes=frozenset(classes),
        associations=frozenset(associations),
        include_queries=include_queries,
        partial=partial,
        filter=flt,
    )
    with user_errors(), progress_bar(progress) as bar, output_file(manifest) as out:
        try:
            result = export_files(
                files,
                directory,
                selection,
                manifest=out if manifest else None,
                ports=ports,
                progress=bar,
            )
        except OSError as exc:
            fail(f"cannot write into {directory}: {exc.strerror or exc}")
    c = result.counts
    for note in result.store.source.truncated:
        click.echo(f"dicomtap: warning: {printable(note)}; read up to the cut", err=True)
    line = f"dicomtap: {c.written} complete file(s) written to {directory} ({size_text(c.bytes)})"
    if c.partial:
        line += f"; {c.partial} incomplete, written as .partial.dcm"
    if c.left_out_incomplete:
        line += f"; {c.left_out_incomplete} incomplete left out (--partial writes them)"
    if c.unmatched:
        line += (
            f"; {c.unmatched} data set(s) whose command was not captured (or never answered "
            "by the model) skipped"
        )
    click.echo(printable(line), err=True)
    sys.exit(1 if c.partial or c.left_out_incomplete else 0)
