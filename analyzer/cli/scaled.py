"""``dicomtap analyze --dask`` and ``--format parquet``: many captures, tables for DuckDB.

:func:`analyze_on_dask` groups the files into capture points and analyses them on a Dask
cluster (:mod:`analyzer.scale`); :func:`write_records` writes records as JSON Lines or as
Parquet tables, whichever path they came from.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import click

from analyzer import redact
from analyzer.filter import Filter
from analyzer.reports import jsonl
from analyzer.scale.inputs import expand
from analyzer.scale.runner import plan, records
from analyzer.scale.task import Record, Settings
from analyzer.textsafe import printable

from .common import fail, output_file, progress_bar, user_errors
from .version import generator

_EXTRA = "install dicomtap with its scale extra (pip install 'dicomtap[scale]')"

LOCAL = "local"
"""``--dask`` without an address (or with this word): a cluster on this machine."""


def check_usage(files: tuple[str, ...], fmt: str, output: str | None, dask: str | None) -> None:
    """Usage errors of these options, before anything is read. FILE is required, but
    ``--dask FOLDER`` gives it as the option's value (see :func:`scheduler_of`)."""
    if not files and (dask is None or not scheduler_of(dask, files)[1]):
        raise click.UsageError("Missing argument 'FILE...'.")
    if fmt == "parquet":
        if not output:
            fail("--format parquet writes a folder of tables: name it with -o DIR")
        if importlib.util.find_spec("pyarrow") is None:
            fail(f"--format parquet needs pyarrow: {_EXTRA}")
    if dask is None:
        return
    if fmt not in ("json", "parquet"):
        fail("--dask writes JSON Lines or Parquet: add --format json or --format parquet")
    if "-" in files:
        fail("--dask reads capture files: the workers cannot read standard input")
    if redact.phi_redacted():
        # The pseudonyms are drawn with a key of this process, which workers do not share.
        fail("--redact cannot be used with --dask")


def scheduler_of(dask: str, files: tuple[str, ...]) -> tuple[str | None, tuple[str, ...]]:
    """The scheduler address (None: a local cluster) and the input files.

    ``--dask`` takes an optional value, so ``--dask captures/`` reads the folder as the
    scheduler's address: a value that names an existing file or folder is an input."""
    if dask == LOCAL:
        return None, files
    if "://" not in dask and os.path.exists(dask):
        return None, (dask, *files)
    return dask, files


def analyze_on_dask(
    files: tuple[str, ...],
    *,
    dask: str,
    fmt: str,
    output: str | None,
    ports: tuple[int, ...],
    keep: int,
    flt: Filter | None,
    progress: bool,
) -> None:
    """Analyse the capture points of ``files`` on Dask and write their merged records.

    Exits with status 2 when a file could not be analysed (after writing the others')."""
    from analyzer.scale.cluster import DaskExecutor, dask_client

    scheduler, files = scheduler_of(dask, files)
    settings = Settings(ports, keep, generator(), flt)
    errors: list[str] = []
    with user_errors():
        inputs = expand(files)
        with dask_client(scheduler) as client, progress_bar(progress) as bar:
            executor = DaskExecutor(client)
            work = plan(inputs.paths, executor, inputs.in_folders)
            if work.passed_over:
                names = ", ".join(printable(os.path.basename(p)) for p in work.passed_over[:10])
                if len(work.passed_over) > 10:
                    names += f" and {len(work.passed_over) - 10} more"
                click.echo(
                    f"dicomtap: note: passed over files that are no captures: {names}", err=True
                )
            write_records(_reported(records(work, settings, executor, bar), errors), fmt, output)
    if errors:
        sys.exit(2)


def _reported(stream: Iterable[Record], errors: list[str]) -> Iterator[Record]:
    """``stream``, saying on stderr what ``dicomtap analyze`` says about its input."""
    for record in stream:
        kind = record["type"]
        if kind == "error":
            errors.append(record["message"])
            click.echo(f"dicomtap: error: {printable(record['message'])}", err=True)
        elif kind == "summary":
            for note in record["truncated"]:
                click.echo(
                    f"dicomtap: warning: {printable(note)}; analysed up to the cut", err=True
                )
            for note in record["warnings"]:
                click.echo(f"dicomtap: note: {printable(note)}", err=True)
        yield record


def write_records(stream: Iterable[dict[str, Any]], fmt: str, output: str | None) -> None:
    """Write records as JSON Lines (``fmt`` json: to ``output`` or stdout) or as Parquet
    tables (``fmt`` parquet: in the folder ``output``)."""
    if fmt != "parquet":
        with output_file(output) as out:
            for record in stream:
                out.write(jsonl.json_line(record))
        return
    assert output is not None
    from analyzer.reports import parquet

    try:
        writer = parquet.write(stream, output)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    for kind, count in sorted(writer.skipped.items()):
        click.echo(f"dicomtap: note: {count} {kind} record(s) have no Parquet table", err=True)
    for name in sorted(writer.unknown_fields):
        click.echo(f"dicomtap: note: field {name} has no Parquet column", err=True)
