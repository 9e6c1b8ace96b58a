"""``dicomtap replay``: re-send one side of a captured association to a live peer."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from types import FrameType
from typing import Any

import click

from analyzer.errors import DicomtapError
from analyzer.reports.common import human_text
from analyzer.sources.proxy.config import ConfigError, parse_address
from analyzer.sources.proxy.pcapng import PcapngWriter
from analyzer.sources.replay import (
    Framing,
    Pace,
    ReplayOptions,
    dry_run_lines,
    prepare,
    result_lines,
    script,
)
from analyzer.sources.replay import (
    replay as run_replay,
)
from analyzer.textsafe import printable

from .common import drop_stdout, fail, keep_option, output_file
from .version import generator


def _ae_title(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    if not value.strip() or len(value) > 16 or not value.isascii() or not value.isprintable():
        raise click.BadParameter(f"{printable(value)!r} is not an AE title (1-16 characters)")
    if "\\" in value:
        raise click.BadParameter("an AE title may not contain a backslash")
    return value


def _address(value: str | None, what: str) -> tuple[str, int] | None:
    if value is None:
        return None
    try:
        address = parse_address(value, what)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    return address.host, address.port


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM ends the replay as Ctrl-C does (the pcapng is closed, nothing is left
    half-written)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (tests)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.command(context_settings={"max_content_width": 100})
@click.argument("capture", metavar="CAPTURE")
@click.option(
    "--association",
    "-a",
    "association",
    type=click.IntRange(min=1),
    required=True,
    help="The association to replay, numbered as `dicomtap analyze CAPTURE` numbers them.",
)
@click.option(
    "--to",
    "target",
    metavar="HOST:PORT",
    help="Play the captured requestor against this acceptor (the only address the replay "
    "connects to).",
)
@click.option(
    "--as-acceptor",
    is_flag=True,
    help="Play the captured acceptor instead, for a requestor (a modality) under test.",
)
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="With --as-acceptor: where to wait for the requestor (one connection).",
)
@click.option("--calling-ae", callback=_ae_title, help="Send this calling AE title instead.")
@click.option("--called-ae", callback=_ae_title, help="Send this called AE title instead.")
@click.option(
    "--max-pdu",
    type=click.IntRange(4096, 0xFFFFFFFF),
    help="Announce a Maximum Length of at most this (the captured one if smaller).",
)
@click.option(
    "--pace",
    type=click.Choice([p.value for p in Pace]),
    default=Pace.FAST.value,
    show_default=True,
    help="fast: each PDU as soon as the peer has answered what the captured side waited "
    "for; captured: with the capture's pauses too.",
)
@click.option(
    "--framing",
    type=click.Choice([f.value for f in Framing]),
    default=Framing.AUTO.value,
    show_default=True,
    help="auto: PDUs as captured, split when longer than the peer's maximum length (unless "
    "already too long for the captured peer); captured: exactly as captured.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.01),
    default=30.0,
    show_default=True,
    help="Seconds to wait for the peer to connect, answer or take data.",
)
@click.option(
    "--allow-incomplete",
    is_flag=True,
    help="Replay even though the capture lost bytes of the played side (sent as zeros).",
)
@click.option("--dry-run", is_flag=True, help="Print what would be sent; send nothing.")
@click.option(
    "--pcap",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the replay's own traffic to this pcapng file.",
)
@click.option(
    "--max-slowdown",
    type=click.FloatRange(min=1.0),
    help="Count as a difference an answer more than this many times slower than captured.",
)
@click.option("--all", "show_all", is_flag=True, help="Show every compared fact.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the report here.")
@keep_option("Bytes kept from the start of each data set (for display).")
def replay(**kw: Any) -> None:
    """Replay one side of a captured association against a live peer, and compare.

    As the requestor (--to): the same A-ASSOCIATE-RQ, the same DIMSE requests with their
    data sets (read from the capture as they are sent), the same release or abort, each
    sent once the target has answered what the captured requestor waited for. As the
    acceptor (--as-acceptor --listen): the captured A-ASSOCIATE-AC (or -RJ) and the
    captured responses to each request, for a modality under test. Responses are renumbered
    to the live requests' Message IDs; nothing else is changed unless asked.

    The replay's own traffic goes through the same analysis as a capture (and into --pcap):
    the target's answers are compared with the captured ones (acceptance, statuses,
    response counts, ending, findings; timing is shown) and the differences printed.

    \b
    Examples:
      dicomtap replay night.pcap -a 3 --dry-run
      dicomtap replay night.pcap -a 3 --to archive-test:104
      dicomtap replay night.pcap -a 3 --to 10.0.0.5:11112 --called-ae TESTPACS \\
          --pace captured --pcap replay.pcapng
      dicomtap replay night.pcap -a 3 --as-acceptor --listen 0.0.0.0:11112

    \b
    Exit status:
      0  the peer answered as captured
      1  it did not (the differences are printed)
      2  usage error, or a capture that cannot be replayed (association not found,
         bytes lost without --allow-incomplete, capture started mid-association)
      3  the replay could not be made (target unreachable, nobody connected within
         --timeout)
    """
    opts = _options(kw)
    try:
        captured, notes = prepare(opts)
    except DicomtapError as exc:
        fail(str(exc), exc.exit_code)
    a = captured.association
    with output_file(kw["output"]) as out:
        if opts.dry_run:
            steps = script(
                opts.capture,
                a,
                requestor=opts.requestor,
                lossy=bool(captured.lost_by(not opts.requestor)),
                keep=opts.keep,
            )
            try:
                out.write(human_text(dry_run_lines(opts, a, steps)))
            except DicomtapError as exc:
                fail(str(exc), exc.exit_code)
            for note in notes:
                click.echo(f"dicomtap: note: {printable(note)}", err=True)
            return
        pcap = None
        if kw["pcap"]:
            try:
                pcap = PcapngWriter(kw["pcap"], application=f"{generator()} replay")
            except OSError as exc:
                fail(f"cannot write {kw['pcap']}: {exc.strerror or exc}")

        def listening(where: str) -> None:
            click.echo(f"dicomtap: waiting for a requestor on {printable(where)}", err=True)

        try:
            with _sigterm_unwinds():
                result = run_replay(opts, captured, notes, pcap=pcap, listening=listening)
        except KeyboardInterrupt:
            click.echo("dicomtap: replay interrupted", err=True)
            sys.exit(130)
        except DicomtapError as exc:
            fail(str(exc), exc.exit_code)
        finally:
            if pcap is not None:
                pcap.close()
        try:
            out.write(human_text(result_lines(result, show_all=kw["show_all"])))
            out.flush()
        except BrokenPipeError:
            drop_stdout()
    sys.exit(result.exit_code)


def _options(kw: dict[str, Any]) -> ReplayOptions:
    acceptor = kw["as_acceptor"]
    if acceptor:
        if kw["target"]:
            raise click.UsageError("--to and --as-acceptor: choose one")
        if not kw["listen"]:
            raise click.UsageError("--as-acceptor needs --listen HOST:PORT")
        for name in ("calling_ae", "called_ae", "max_pdu"):
            if kw[name] is not None:
                flag = "--" + name.replace("_", "-")
                raise click.UsageError(
                    f"{flag} rewrites the A-ASSOCIATE-RQ: not with --as-acceptor"
                )
    else:
        if kw["listen"]:
            raise click.UsageError("--listen goes with --as-acceptor")
        if not kw["target"] and not kw["dry_run"]:
            raise click.UsageError("say where to replay: --to HOST:PORT (or --as-acceptor)")
    return ReplayOptions(
        capture=kw["capture"],
        association=kw["association"],
        target=_address(kw["target"], "--to address"),
        listen=_address(kw["listen"], "--listen address"),
        calling_ae=kw["calling_ae"],
        called_ae=kw["called_ae"],
        max_pdu=kw["max_pdu"],
        pace=Pace(kw["pace"]),
        framing=Framing(kw["framing"]),
        timeout=kw["timeout"],
        allow_incomplete=kw["allow_incomplete"],
        dry_run=kw["dry_run"],
        max_slowdown=kw["max_slowdown"],
        keep=kw["keep"],
    )
