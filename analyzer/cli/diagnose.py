"""``dicomtap diagnose``: why associations failed, in plain words, with the evidence."""

from __future__ import annotations

import sys
from typing import IO, Any

import click

from analyzer.filter import Filter, select
from analyzer.findings import Diagnosis
from analyzer.model import Severity
from analyzer.pipeline import analyze_files
from analyzer.reports import csvout, diagnosis, jsonl
from analyzer.spill import Spill
from analyzer.store import Store
from analyzer.textsafe import printable

from .common import (
    dicom_port_option,
    filter_option,
    output_file,
    progress_bar,
    progress_option,
    redact_option,
    user_errors,
)
from .version import generator

_SEVERITIES = {"info": Severity.INFO, "warning": Severity.WARNING, "error": Severity.ERROR}


@click.command()
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "csv"]),
    default="text",
    show_default=True,
    help="text: verdict and findings, worst first; "
    "json: JSON Lines (association and finding records); "
    "csv: one row per finding, with its association's endpoints, AE titles and outcome.",
)
@click.option(
    "--min-severity",
    type=click.Choice(list(_SEVERITIES)),
    default="info",
    show_default=True,
    help="Leave out findings below this severity.",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write here instead of stdout."
)
@dicom_port_option(
    "Treat this TCP port as a DICOM port (repeatable): connections to it that never "
    "associate are diagnosed too."
)
@filter_option()
@redact_option()
@progress_option()
def diagnose(
    files: tuple[str, ...],
    fmt: str,
    min_severity: str,
    output: str | None,
    ports: tuple[int, ...],
    flt: Filter | None,
    progress: bool,
) -> None:
    """Say why DICOM associations in packet captures failed.

    Prints a one-line verdict, then each association that has findings, worst first: what
    went wrong in plain words, the likely cause, what to check and on which side, and the
    evidence (frame numbers, times, direction). FILEs are read as by 'dicomtap analyze'
    (several as one capture in time order; gzip, xz, bzip2; - for standard input).

    \b
    Examples:
      dicomtap diagnose modality-to-pacs.pcapng
      dicomtap diagnose --min-severity warning night.pcap
      dicomtap diagnose --filter 'called=PACS*' night.pcap   # exit status for PACS only
      dicomtap diagnose --format json capture.pcap | jq 'select(.type=="finding")'
      dicomtap diagnose --format csv -o findings.csv ring_*.pcapng
      zcat night.pcap.gz | dicomtap diagnose -

    \b
    Exit status (for cron jobs and health checks):
      0  no error-severity finding
      1  at least one error-severity finding
      2  usage error, an input that cannot be read as a capture, or a report that
         cannot be written
    """
    store = Store(spill=Spill.from_environment())
    with user_errors(), progress_bar(progress) as bar:
        analyze_files(files, store, ports=ports, rules=Diagnosis(), progress=bar)
    for note in store.source.warnings:
        click.echo(f"dicomtap: note: {printable(note)}", err=True)
    if flt is not None:
        store = select(store, flt)
    threshold = _SEVERITIES[min_severity]
    with output_file(output) as out:
        if fmt == "json":
            _json(store, out, threshold)
        elif fmt == "csv":
            csvout.write_findings(store, out, threshold)
        else:
            diagnosis.write(store, out, threshold)
    sys.exit(diagnosis.exit_status(store))


def _json(store: Store, out: IO[str], threshold: Severity) -> None:
    def emit(record: dict[str, Any]) -> None:
        out.write(jsonl.json_line(record))

    emit(jsonl.header_record(store, generator()))
    for a in store.by_start():
        findings = [f for f in store.findings(a.id) if f.severity >= threshold]
        if not findings:
            continue
        emit(jsonl.association_record(a, store.links(a.id), store))
        for f in findings:
            emit(jsonl.finding_record(f))
    summary = jsonl.summary_record(store)
    summary["verdict"] = diagnosis.verdict(store)
    summary["exit_status"] = diagnosis.exit_status(store)
    emit(summary)
