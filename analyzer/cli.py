"""The ``dicomtap`` command line."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import IO

import click

from .errors import DicomtapError
from .pipeline import Progress, analyze_files
from .reports import csvout, jsonl, text
from .store import Store

try:
    VERSION = version("dicomtap")
except PackageNotFoundError:  # running from a source tree
    VERSION = "0.0.0"

GENERATOR = f"dicomtap {VERSION}"


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"dicomtap: error: {message}", err=True)
    sys.exit(code)


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress | None]:
    """A progress bar on stderr, only for a terminal and only when it is worth it."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, TimeRemainingColumn
    from rich.progress import Progress as Bar

    with Bar(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        transient=True,
        console=None,
        redirect_stdout=False,
    ) as bar:
        task = bar.add_task("reading", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        yield update


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(VERSION, prog_name="dicomtap")
def main() -> None:
    """dicomtap: DICOM network traffic analyzer and association debugger.

    Reads packet captures (pcap, pcapng) and reconstructs DICOM associations: who talked
    to whom, what was proposed and accepted, which DIMSE operations ran, how long each
    took, and how each association ended.
    """


@main.command()
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
@click.option(
    "--port",
    "ports",
    type=click.IntRange(1, 65535),
    multiple=True,
    help="Treat this TCP port as a DICOM port (repeatable). DICOM is found on any port "
    "anyway; a port named here also reports connections that never associated and settles "
    "which side is the server when the capture missed the TCP handshake.",
)
@click.option(
    "--keep",
    type=click.IntRange(0, 1 << 24),
    default=64 * 1024,
    show_default=True,
    help="Bytes kept from the start of each data set (for display); the rest is only counted.",
)
@click.option(
    "--progress/--no-progress", default=True, help="Progress bar on stderr (terminals only)."
)
def analyze(
    files: tuple[str, ...],
    fmt: str,
    output: str | None,
    ports: tuple[int, ...],
    keep: int,
    progress: bool,
) -> None:
    """Reconstruct the DICOM associations in packet captures.

    Several FILEs are read in order as one capture (for example the files of a ring
    buffer). pcap and pcapng are recognised by their content, whatever the file name.

    \b
    Examples:
      dicomtap analyze capture.pcapng
      dicomtap analyze --format json -o records.jsonl night.pcap
      dicomtap analyze --format csv ring_*.pcapng > exchanges.csv
      dicomtap analyze --port 4100 vendor.pcap

    \b
    Exit status: 0 analysed (even a truncated capture, which is reported on stderr),
    2 usage error or unreadable input.
    """
    store = Store()
    try:
        with _progress(progress) as bar:
            analyze_files(files, store, ports=ports, keep=keep, progress=bar)
    except DicomtapError as exc:
        _fail(str(exc), exc.exit_code)
    for note in store.source.truncated:
        click.echo(f"dicomtap: warning: {note}; analysed up to the cut", err=True)
    for note in store.source.warnings:
        click.echo(f"dicomtap: note: {note}", err=True)
    if not len(store):
        click.echo(f"dicomtap: {text.summary_line(store)}", err=True)
    try:
        out: IO[str] = (
            open(output, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed below
            if output
            else sys.stdout
        )
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror}")
        return
    try:
        if fmt == "json":
            jsonl.write(store, out, GENERATOR)
        elif fmt == "csv":
            csvout.write(store, out)
        else:
            text.write(store, out)
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (| head); not an error
    finally:
        if out is not sys.stdout:
            out.close()
