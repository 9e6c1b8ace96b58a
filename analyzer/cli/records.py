"""What ``dicomtap analyze`` needs of ``--dask`` and ``--format parquet`` whichever path it
takes: the option's value, the usage checks, and the writer of records as JSON Lines or
Parquet tables. The Dask path itself (:mod:`.scaled`) is imported only when it is taken.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from typing import Any

import click

from analyzer import redact
from analyzer.reports import jsonl

from .common import fail, output_file

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
