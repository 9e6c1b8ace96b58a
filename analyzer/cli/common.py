"""What the commands share: version, options, error exit, progress bar, the terminal UI."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import IO, Any, NoReturn, TypeVar

import click

from analyzer.errors import DicomtapError
from analyzer.filter import Filter, FilterError
from analyzer.pipeline import Progress
from dissectors.observer import DEFAULT_KEEP

F = TypeVar("F", bound=Callable[..., Any])

try:
    VERSION = version("dicomtap")
except PackageNotFoundError:  # running from a source tree
    VERSION = "0.0.0"

GENERATOR = f"dicomtap {VERSION}"


@contextmanager
def output_file(output: str | None) -> Iterator[IO[str]]:
    """Where a report goes: ``output`` (one clear error if it cannot be written), or stdout.

    A reader that goes away early (``| head``) is not an error."""
    try:
        out: IO[str] = (
            open(output, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed below
            if output
            else sys.stdout
        )
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}")
    try:
        yield out
    except BrokenPipeError:
        sys.stderr.close()
    finally:
        if out is not sys.stdout:
            out.close()


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


def progress_option() -> Callable[[F], F]:
    """``--progress/--no-progress``: the bar of :func:`progress_bar`."""
    return click.option(
        "--progress/--no-progress", default=True, help="Progress bar on stderr (terminals only)."
    )


def fail(message: str, code: int = 2) -> NoReturn:
    """One clear line on stderr, then exit (2: usage or input error)."""
    click.echo(f"dicomtap: error: {message}", err=True)
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
