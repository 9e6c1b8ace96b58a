"""``dicomtap live`` and ``dicomtap interfaces``: analyse DICOM traffic as it is captured."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

import click

from analyzer.filter import Filter, StreamFilter
from analyzer.findings import Diagnosis
from analyzer.pipeline import Progress
from analyzer.reports.common import human_text
from analyzer.reports.diagnosis import exit_status
from analyzer.reports.text import table
from analyzer.sources.live import LiveCapture, LiveOptions, LiveResult, run_live
from analyzer.sources.live.dumpcap import find_dumpcap, list_interfaces
from analyzer.sources.live.log import LiveJsonl, LiveLog, summary_lines
from analyzer.store import Retention, Store
from analyzer.textsafe import printable

from .common import (
    dicom_port_option,
    drop_stdout,
    fail,
    filter_option,
    keep_option,
    raw_capture_note,
    redact_option,
    terminal_ui,
    user_errors,
)
from .version import generator

_DUMPCAP_OPTION = click.option(
    "--dumpcap",
    "dumpcap",
    metavar="PATH",
    envvar="DICOMTAP_DUMPCAP",
    help="dumpcap to run (default: found by pyshark's config.ini or on PATH; "
    "env DICOMTAP_DUMPCAP).",
)


class _Ring(click.ParamType[tuple[int, float]]):
    """``FILES:SIZE_MB``, e.g. ``10:100``."""

    name = "FILES:SIZE_MB"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, float]:
        if isinstance(value, tuple):
            return value
        files, _, size = str(value).partition(":")
        try:
            n, mb = int(files), float(size)
        except ValueError:
            self.fail(f"{value!r} is not FILES:SIZE_MB (e.g. 10:100)", param, ctx)
        if n < 1 or not mb > 0:
            self.fail(f"{value!r}: at least 1 file, of more than 0 MB", param, ctx)
        return n, mb


@click.command()
@click.option(
    "-i", "--interface", required=True, metavar="IFACE", help="Capture on this interface."
)
@click.option(
    "-f",
    "--capture-filter",
    "bpf",
    metavar="BPF",
    help="Capture filter (libpcap syntax), instead of the default: 'tcp', or the --port ones.",
)
@filter_option(
    help="Report only associations that match EXPR (the filter language of 'analyze "
    "--filter'), each from the moment it matches; the summary still covers everything."
)
@dicom_port_option(
    "A DICOM port (repeatable): narrows the default filter to 'tcp port N or ...', and "
    "reports connections to it that never associate. DICOM is found on any port anyway."
)
@click.option(
    "-w",
    "--write",
    metavar="FILE.pcapng",
    help="Keep the raw capture in FILE.pcapng (Wireshark and 'dicomtap analyze' read it).",
)
@click.option(
    "--ring",
    type=_Ring(),
    help="With --write: a ring of FILES files of SIZE_MB megabytes each (FILE_00001.pcapng, "
    "...), the oldest deleted when a new one starts.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: one line per association event, exchange and finding; json: the JSON Lines "
    "records of 'analyze --format json', each when complete.",
)
@click.option(
    "--tui",
    is_flag=True,
    help="Show the capture in the terminal UI instead (with --write, the UI saves "
    "associations' frames as pcapng, read back from the capture files; without, only as "
    ".jsonl or .csv).",
)
@click.option(
    "--fail-on-error",
    is_flag=True,
    help="Exit status 1 if an error-severity finding was produced (as 'dicomtap diagnose').",
)
@click.option(
    "-B",
    "--buffer-size",
    type=click.IntRange(1, 4096),
    default=64,
    show_default=True,
    metavar="MiB",
    help="Kernel capture buffer: room for bursts before packets are dropped.",
)
@keep_option("Bytes kept from the start of each data set (for display); the rest is only counted.")
@_DUMPCAP_OPTION
@redact_option()
def live(
    interface: str,
    bpf: str | None,
    ports: tuple[int, ...],
    write: str | None,
    ring: tuple[int, float] | None,
    fmt: str,
    tui: bool,
    fail_on_error: bool,
    buffer_size: int,
    keep: int,
    dumpcap: str | None,
    flt: Filter | None,
) -> None:
    """Capture on an interface and report DICOM associations as they happen.

    Captures with Wireshark's dumpcap and analyses the stream exactly as 'dicomtap analyze'
    analyses a file: associations on any port, their negotiation, every DIMSE exchange
    with its status and latency, and the findings of 'dicomtap diagnose' as each
    association ends. Ctrl-C stops: what was captured is still analysed, associations
    still open are reported open-at-end, then a summary with the verdict. Packets the
    capture lost, and the analysis falling behind, are reported as findings.

    \b
    Examples:
      dicomtap live -i eth0
      dicomtap live -i eth0 --port 104 --port 11112 -w pacs.pcapng
      dicomtap live -i any -f 'host 10.0.0.9' --format json > records.jsonl
      dicomtap live -i eth0 --filter 'status=failure or outcome=aborted'
      dicomtap live -i eth0 -w night.pcapng --ring 24:500 --fail-on-error

    \b
    Exit status: 0 stopped cleanly (with --fail-on-error: no error-severity finding),
    1 with --fail-on-error, at least one error-severity finding,
    2 usage error, or capture impossible (dumpcap missing, no permission, no such
    interface, invalid filter), failed, or not written,
    130 a second Ctrl-C (no summary).
    """
    if ring is not None and not write:
        fail("--ring needs --write FILE.pcapng (the base name of the ring's files)")
    raw_capture_note(write)
    options = LiveOptions(
        interface=interface,
        capture_filter=bpf,
        ports=ports,
        write=write,
        ring=ring,
        dumpcap=dumpcap,
        buffer_mb=buffer_size,
        keep=keep,
    )
    if tui:
        _live_tui(options, fail_on_error, flt.source if flt else "")
    # The log and --jsonl write each association as it ends; a capture that runs for days
    # keeps a bounded past.
    store = Store(retention=Retention())
    sinks: list[LiveLog | LiveJsonl] = []
    stop = threading.Event()
    accepts = StreamFilter(store, flt).accepts if flt is not None else None

    def started(capture: LiveCapture) -> None:
        click.echo(
            f"dicomtap: capturing on {interface} (filter '{options.bpf}'); Ctrl-C to stop",
            err=True,
        )
        # the reader of the output went away (| head): stop as on Ctrl-C
        if fmt == "json":
            sinks.append(
                LiveJsonl(store, sys.stdout, generator(), options, closed=stop.set, accepts=accepts)
            )
        else:
            sinks.append(LiveLog(store, sys.stdout, closed=stop.set, accepts=accepts))

    with _StopOnSignals(stop), user_errors():
        try:
            result = run_live(
                options, store, rules=Diagnosis(), stop=stop, started=started, notice=_notice
            )
        except KeyboardInterrupt:  # a second Ctrl-C: leave at once
            click.echo("dicomtap: interrupted", err=True)
            sys.exit(130)
    for sink in sinks:
        sink.close(options, result)
        if sink.stopped:
            drop_stdout()  # the interpreter's last flush of stdout would fail again
        if sink.error:
            fail(f"cannot write standard output: {sink.error}")
    _finish(store, result, fail_on_error)


def _notice(line: str) -> None:
    click.echo(f"dicomtap: {printable(line)}", err=True)


class _StopOnSignals:
    """SIGINT and SIGTERM set ``stop`` (a clean stop); a second one interrupts at once."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._old: dict[int, Callable[[int, FrameType | None], object] | int | None] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self._stop.is_set():
            raise KeyboardInterrupt
        self._stop.set()  # the capture's watcher stops dumpcap; the stream is drained

    def __enter__(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handler)

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _finish(store: Store, result: LiveResult, fail_on_error: bool) -> NoReturn:
    for note in store.source.truncated:
        click.echo(f"dicomtap: warning: {printable(note)}", err=True)
    if result.write_error:  # the evidence was not kept as asked: an I/O error
        if result.error:
            click.echo(f"dicomtap: error: {printable(result.error)}", err=True)
        fail(result.write_error)
    if result.error:
        fail(result.error)
    sys.exit(exit_status(store) if fail_on_error else 0)


def _live_tui(options: LiveOptions, fail_on_error: bool, initial_filter: str) -> NoReturn:
    try:
        run_ui = terminal_ui()
    except ImportError as exc:
        fail(f"--tui: the terminal UI is not available yet ({exc}); use text or json output")
    store = Store(keep_pdus=True, compact_pdus=True)
    with user_errors():
        capture = LiveCapture(options, notice=store.source.warnings.append)
        capture.start()  # errors here, with an exit status, rather than inside the UI
    done = threading.Event()

    def ingest(store: Store, progress: Progress) -> None:
        try:  # the UI's progress callback raises once it quits: the capture stops then
            capture.run(store, rules=Diagnosis(), progress=progress)
        finally:
            done.set()

    try:
        run_ui(
            store,
            ingest,
            source=f"live: {options.interface} ({options.bpf})",
            initial_filter=initial_filter,
            capture=(lambda: capture.files) if options.write else None,
            capture_name=os.path.basename(options.write or ""),
            no_capture="start the capture with --write FILE.pcapng to keep them",
        )
    finally:
        capture.stop()  # the UI has quit: stop capturing, let the analysis finish
        done.wait(30)
    if store.source.finished:
        click.echo(human_text(summary_lines(store, options, capture.result)), nl=False)
        _finish(store, capture.result, fail_on_error)
    fail("the capture did not finish within 30 s of the terminal UI closing")


@click.command()
@_DUMPCAP_OPTION
def interfaces(dumpcap: str | None) -> None:
    """List the interfaces 'dicomtap live' can capture on.

    \b
    Examples:
      dicomtap interfaces
      sudo dicomtap interfaces    # some interfaces are listed only with privileges

    \b
    Exit status: 0 listed, 2 dumpcap missing or unable to list.
    """
    with user_errors():
        found = list_interfaces(find_dumpcap(dumpcap))
    rows = [["Name", "Description", "Addresses"]]
    for i in found:
        kind = " (loopback)" if i.loopback and "loopback" not in i.description.lower() else ""
        rows.append([i.name, (i.description + kind).strip() or "-", ", ".join(i.addresses) or "-"])
    click.echo("\n".join(table(rows, indent="")))
