"""``dicomtap crosscheck``: dicomtap's view of a capture against Wireshark's DICOM dissector."""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

import click

from analyzer.errors import DicomtapError, ToolMissingError

from .common import dicom_port_option, fail, output_file
from .version import generator

_REORDER = {"auto": None, "on": True, "off": False}


@click.command()
@click.argument("files", nargs=-1, required=True, metavar="CAPTURE...")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: per association, agreements counted, differences listed; json: JSON Lines.",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write here instead of stdout."
)
@dicom_port_option(
    "Treat this TCP port as a DICOM port, and have tshark decode it as DICOM (repeatable). "
    "The ports on which dicomtap finds DICOM are always decoded."
)
@click.option(
    "--tshark-reorder",
    type=click.Choice(list(_REORDER)),
    default="auto",
    show_default=True,
    help="tshark's reassembly of out-of-order segments (tcp.reassemble_out_of_order; "
    "off is Wireshark's default). auto: on, unless the capture lost bytes (with it on, "
    "tshark waits for lost bytes and shows nothing more on that side).",
)
@click.option(
    "--tshark-timeout",
    type=click.FloatRange(0),
    metavar="SECONDS",
    help="Stop tshark after this long per capture and report the capture as not checked "
    "(0: no limit). Default: 2 minutes and 10 s per MB of capture.",
)
@click.option(
    "--show",
    type=click.IntRange(0),
    default=20,
    show_default=True,
    help="Disagreements listed per association in text (JSON lists them all).",
)
def crosscheck(
    files: tuple[str, ...],
    fmt: str,
    output: str | None,
    ports: tuple[int, ...],
    tshark_reorder: str,
    tshark_timeout: float | None,
    show: int,
) -> None:
    """Check dicomtap against Wireshark's DICOM dissector on the same captures.

    Runs tshark (Wireshark's engine, through pyshark) on each CAPTURE with DICOM decoded
    on the ports dicomtap found, and lines up per association: PDU types and lengths and
    PDVs frame by frame; AE titles, presentation contexts and their results, user
    information, reject and abort codes; each DIMSE request's and final response's
    command field, message ID, status and SOP class, and the pending responses. It prints
    what both agree on (counted), every disagreement, and where tshark cannot follow
    (bytes lost, the snap length, a capture that starts mid-association, out-of-order
    segments with tshark's reassembly of them off, a PDU the capture ends inside, a PDU
    type tshark does not decode), named with the reason rather than called a disagreement.

    Each CAPTURE is checked on its own. Needs tshark (apt install tshark). Large captures
    take time: tshark dissects far slower than dicomtap and reads each capture twice (the
    two reads run at once); a 50 MB capture takes about 11 s of CPU, a gigabyte one can
    take tshark many minutes and gigabytes of memory.

    \b
    Examples:
      dicomtap crosscheck modality-to-pacs.pcapng
      dicomtap crosscheck --format json night.pcap | jq 'select(.verdict=="disagree")'
      dicomtap crosscheck --port 4100 vendor.pcap

    \b
    Exit status:
      0  dicomtap and tshark agree (where tshark can follow)
      1  at least one disagreement
      2  usage error, an input that cannot be read as a capture, or tshark missing
    """
    # Imported here: pyshark (and asyncio) load only for this command.
    from analyzer.crosscheck import Tshark, check_capture, find_tshark
    from analyzer.crosscheck.render import exit_status, json_records, write_text
    from analyzer.reports.jsonl import json_line

    try:
        tshark = Tshark(find_tshark())
    except ToolMissingError as exc:
        fail(str(exc), exc.exit_code)
    checks = []
    failed = False
    # Stopped with SIGTERM: unwind, so that the tshark processes are killed on the way out.
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        for path in files:
            try:
                checks.append(
                    check_capture(
                        path,
                        tshark,
                        ports=ports,
                        reorder=_REORDER[tshark_reorder],
                        timeout=tshark_timeout,
                    )
                )
            except DicomtapError as exc:
                click.echo(f"dicomtap: error: {exc}", err=True)
                failed = True
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
    with output_file(output) as out:
        if fmt == "json":
            for record in json_records(checks, generator()):
                out.write(json_line(record))
        else:
            write_text(checks, out, limit=show)
    sys.exit(2 if failed else exit_status(checks))


def _terminated(signum: int, frame: FrameType | None) -> None:
    # pyshark's reading task, cut short, would be reported as "never retrieved" at exit.
    logging.getLogger("asyncio").disabled = True
    raise SystemExit(128 + signum)
