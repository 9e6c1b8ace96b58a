"""The ``dicomtap`` command line: one module per command."""

from __future__ import annotations

import click

from .analyze import analyze
from .anonymize import anonymize
from .common import VERSION
from .crosscheck import crosscheck
from .diagnose import diagnose
from .export import export
from .live import interfaces, live
from .probe import probe
from .proxy import proxy
from .replay import replay
from .tui import tui


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(VERSION, prog_name="dicomtap")
def main() -> None:
    """dicomtap: DICOM network traffic analyzer and association debugger.

    Reads packet captures (pcap, pcapng) and reconstructs DICOM associations: who talked
    to whom, what was proposed and accepted, which DIMSE operations ran, how long each
    took, and how each association ended.
    """


main.add_command(analyze)
main.add_command(diagnose)
main.add_command(proxy)
main.add_command(live)
main.add_command(interfaces)
main.add_command(tui)
main.add_command(probe)
main.add_command(export)
main.add_command(anonymize)
main.add_command(crosscheck)
main.add_command(replay)
