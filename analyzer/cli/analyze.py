"""``dicomtap analyze``: reconstruct the DICOM associations in packet captures."""

from __future__ import annotations

import click

from analyzer.filter import Filter, select
from analyzer.findings import Diagnosis
from analyzer.pipeline import analyze_files
from analyzer.reports import csvout, jsonl, text
from analyzer.spill import Spill
from analyzer.store import Store
from analyzer.textsafe import printable

from .common import (
    dicom_port_option,
    fail,
    filter_option,
    keep_option,
    output_file,
    progress_bar,
    progress_option,
    redact_option,
    user_errors,
)
from .records import LOCAL, check_usage, write_records
from .version import generator


@click.command()
@click.argument("files", nargs=-1, metavar="FILE...")  # required: see check_usage
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "csv", "parquet"]),
    default="text",
    show_default=True,
    help="text: one block per association; json: JSON Lines records; csv: one row per "
    "exchange; parquet: one table per record type, in the folder -o names.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(writable=True),
    help="Write here instead of stdout (--format parquet: the folder of the tables).",
)
@click.option(
    "--dask",
    is_flag=False,
    flag_value=LOCAL,
    default=None,
    metavar="[SCHEDULER]",
    help="Analyse each capture point (a ring buffer's files, stitched in time order) as a "
    "task on Dask: a cluster of this machine's cores, or the scheduler at SCHEDULER "
    "(tcp://host:8786). FILE may be a folder or a quoted glob pattern.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Processes to share the TCP connections among (the output is the same). "
    "Default 1: every process reads every packet, and two are not yet faster than one.",
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
    dask: str | None,
    jobs: int | None,
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
      dicomtap analyze --jobs 2 --format json -o records.jsonl big.pcap

    \b
    Many captures (files of several capture points, told apart by what the files say
    about themselves, their names and their times), on Dask, into tables for DuckDB:
      dicomtap analyze --dask --format json -o records.jsonl /captures/
      dicomtap analyze --dask tcp://10.0.0.5:8786 --format parquet -o tables/ '/mnt/*.pcapng'

    \b
    Exit status: 0 analysed (even a truncated capture, which is reported on stderr),
    2 usage error, unreadable input, or a report that cannot be written (a full disk);
    with --dask, after analysing the files that could be read (each file that could not
    is an error record).
    """
    check_usage(files, fmt, output, dask)
    if jobs is not None and jobs > 1:
        if dask is not None:
            fail("--jobs shares out one capture's connections; --dask runs capture points as tasks")
        if "-" in files:
            fail("--jobs reads the capture once per job: standard input can be read only once")
    if dask is not None:
        from .scaled import analyze_on_dask  # Dask and its helpers: only when asked for

        analyze_on_dask(
            files,
            dask=dask,
            fmt=fmt,
            output=output,
            ports=ports,
            keep=keep,
            flt=flt,
            progress=progress,
        )
        return
    store = Store(spill=Spill.from_environment())
    n = jobs or 1
    with user_errors(), progress_bar(progress) as bar:
        if n > 1:
            from analyzer.scale import jobs as sharded  # multiprocessing: only when asked for

            sharded.analyze_jobs(
                files, store, jobs=n, ports=ports, keep=keep, rules=Diagnosis(), progress=bar
            )
        else:
            analyze_files(files, store, ports=ports, keep=keep, rules=Diagnosis(), progress=bar)
    for note in store.source.truncated:
        click.echo(f"dicomtap: warning: {printable(note)}; analysed up to the cut", err=True)
    for note in store.source.warnings:
        click.echo(f"dicomtap: note: {printable(note)}", err=True)
    if not len(store):
        click.echo(f"dicomtap: {text.summary_line(store)}", err=True)
    if flt is not None:
        store = select(store, flt)
    if fmt == "parquet":
        with user_errors():
            write_records(jsonl.records(store, generator()), fmt, output)
        return
    with output_file(output) as out:
        if fmt == "json":
            jsonl.write(store, out, generator())
        elif fmt == "csv":
            csvout.write(store, out)
        else:
            text.write(store, out)
