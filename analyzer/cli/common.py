"""What the commands share: version, options, error exit, progress bar, the terminal UI."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any, NoReturn, TypeVar

import click

from analyzer import redact
from analyzer.errors import DicomtapError
from analyzer.filter import Filter, FilterError
from analyzer.pipeline import Progress
from analyzer.textsafe import printable
from dissectors.observer import DEFAULT_KEEP

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def output_file(output: str | None) -> Iterator[IO[str]]:
    """Where a report goes: ``output`` (one clear error if it cannot be written), or stdout.

    A write that fails (a full disk, ``> /dev/full``) ends the command with one line and
    exit status 2. A reader that goes away early (``| head``) is not an error: the rest of
    the report is dropped quietly and the command ends as it would have."""
    name = output or "standard output"
    try:
        out: IO[str] = (
            open(output, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed below
            if output
            else sys.stdout
        )
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    try:
        yield out
        out.flush()
    except BrokenPipeError:
        if out is sys.stdout:
            drop_stdout()
    except OSError as exc:
        if out is sys.stdout:
            drop_stdout()
        fail(f"cannot write {name}: {exc.strerror or exc}")
    finally:
        if out is not sys.stdout:
            with suppress(OSError):  # what could not be written was reported above
                out.close()


def drop_stdout() -> None:
    """Send whatever stdout still holds, and will be given, to /dev/null.

    After a failed write (a closed pipe, a full disk) the interpreter would flush stdout
    once more at exit and print a second error; this makes that flush succeed silently."""
    with suppress(OSError, ValueError, AttributeError):  # not a real file (tests)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def dicom_port_option(help: str) -> Callable[[F], F]:
    """``--port N`` (repeatable): ports to treat as DICOM ports."""
    return click.option("--port", "ports", type=click.IntRange(1, 65535), multiple=True, help=help)


def keep_option(help: str, *, default: int | None = DEFAULT_KEEP) -> Callable[[F], F]:
    """``--keep N``: bytes kept from the start of each data set (None: not given)."""
    return click.option(
        "--keep",
        type=click.IntRange(0, 1 << 24),
        default=default,
        show_default=default is not None,
        help=help,
    )


FILTER_HELP = (
    "Only the associations that match EXPR, e.g. 'called=PACS* and status=failure' "
    "(the filter language of the TUI's /, see the README's 'Filters')."
)


def filter_option(
    name: str = "--filter", dest: str = "flt", help: str = FILTER_HELP
) -> Callable[[F], F]:
    """``--filter EXPR``: the command gets a :class:`~analyzer.filter.Filter` (None if not
    given). A bad expression exits with 2, after the expression with a caret under the
    mistake."""
    return click.option(name, dest, metavar="EXPR", callback=_parse_filter, help=help)


def _parse_filter(ctx: click.Context, param: click.Parameter, value: str | None) -> Filter | None:
    if value is None or not value.strip():
        return None
    try:
        return Filter.parse(value)
    except FilterError as exc:
        click.echo(f"dicomtap: error: {param.opts[0]}: {exc.message}", err=True)
        click.echo("\n".join(exc.caret_lines()), err=True)
        sys.exit(2)


def redact_option() -> Callable[[F], F]:
    """``--redact phi``: hide the PS3.15 Basic Profile attributes in every output of the
    command (see :mod:`analyzer.redact`)."""

    def apply(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value == "phi":
            redact.redact_phi()

    return click.option(
        "--redact",
        type=click.Choice(["phi"]),
        expose_value=False,
        is_eager=True,
        callback=apply,
        help="phi: replace patient and study identifying values (names, IDs, dates, "
        "institution, accession number, free text, instance UIDs, private attributes: the "
        "PS3.15 Basic Profile) in everything printed or written. Credentials are never shown.",
    )


def raw_capture_note(path: str | None) -> None:
    """Under ``--redact phi``, say that a raw capture being written keeps what was on the
    wire (PHI included), and how to de-identify it."""
    if path and redact.phi_redacted():
        click.echo(
            f"dicomtap: note: {printable(path)} holds the traffic as it was on the wire, PHI "
            "included (--redact applies to the reports); 'dicomtap anonymize' de-identifies it",
            err=True,
        )


def progress_option() -> Callable[[F], F]:
    """``--progress/--no-progress``: the bar of :func:`progress_bar`."""
    return click.option(
        "--progress/--no-progress", default=True, help="Progress bar on stderr (terminals only)."
    )


def fail(message: str, code: int = 2) -> NoReturn:
    """One clear line on stderr, then exit (2: usage or input error)."""
    click.echo(f"dicomtap: error: {printable(message)}", err=True)
    sys.exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """A :class:`DicomtapError` raised inside becomes :func:`fail` with its exit code."""
    try:
        yield
    except DicomtapError as exc:
        fail(str(exc), exc.exit_code)


def terminal_ui() -> Callable[..., None]:
    """The terminal UI's ``run(store, ingest, source=...)``.

    Imported only when asked for, and by name, so that the analyzer never depends on the UI
    (the layer contract in pyproject.toml; importing analyzer.cli must not load Textual)."""
    run: Callable[..., None] = importlib.import_module("tui.app").run
    return run


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Progress | None]:
    """A progress bar on stderr, only when stderr is a terminal (so never in the middle of
    a report, and visible exactly when the report is redirected)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, TimeRemainingColumn
    from rich.progress import Progress as Bar

    with Bar(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        transient=True,
        console=Console(stderr=True),
        redirect_stdout=False,
    ) as bar:
        task = bar.add_task("reading", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        yield update
