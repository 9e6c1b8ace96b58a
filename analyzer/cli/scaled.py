"""``dicomtap analyze --dask``: many captures, tables for DuckDB.

:func:`analyze_on_dask` groups the files into capture points and analyses them on a Dask
cluster (:mod:`analyzer.scale`), and writes their records with
:func:`~.records.write_records`. ``analyze`` imports this module only for ``--dask``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator

import click

from analyzer.filter import Filter
from analyzer.scale.inputs import expand
from analyzer.scale.runner import plan, records
from analyzer.scale.task import Record, Settings
from analyzer.textsafe import printable

from .common import progress_bar, user_errors
from .records import scheduler_of, write_records
from .version import generator


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
