"""The ``dicomtap`` command line: one module per command, imported when its command runs.

Each command pulls in its own libraries (textual for the terminal UI, pynetdicom for the
probe and the proxy, ...), so the group imports none of them: ``dicomtap analyze`` loads
what analysing needs, and ``dicomtap --help`` lists the commands from :data:`COMMANDS`
without importing any (``tests/test_cli_startup.py`` keeps the summaries true).
"""

from __future__ import annotations

import importlib

import click

from .version import version

#: Command name → (module in this package, function, the first paragraph of its help).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "analyze": ("analyze", "analyze", "Reconstruct the DICOM associations in packet captures."),
    "anonymize": (
        "anonymize",
        "anonymize",
        "Write a de-identified copy of a capture, to send to a vendor.",
    ),
    "crosscheck": (
        "crosscheck",
        "crosscheck",
        "Check dicomtap against Wireshark's DICOM dissector on the same captures.",
    ),
    "diagnose": ("diagnose", "diagnose", "Say why DICOM associations in packet captures failed."),
    "export": (
        "export",
        "export",
        "Write each data set sent in a C-STORE (C-GET and C-MOVE sub-operations included) "
        "as a DICOM Part-10 file, <SOPInstanceUID>.dcm.",
    ),
    "interfaces": ("live", "interfaces", "List the interfaces 'dicomtap live' can capture on."),
    "live": (
        "live",
        "live",
        "Capture on an interface and report DICOM associations as they happen.",
    ),
    "probe": (
        "probe",
        "probe",
        "Check a DICOM SCP the way a modality uses it, and say what is wrong in plain words.",
    ),
    "proxy": (
        "proxy",
        "proxy",
        "Relay DICOM associations byte for byte, and log what they do.",
    ),
    "replay": (
        "replay",
        "replay",
        "Replay one side of a captured association against a live peer, and compare.",
    ),
    "tui": (
        "tui",
        "tui",
        "Browse the DICOM associations in packet captures, interactively.",
    ),
}


class LazyGroup(click.Group):
    """A group whose commands are imported only when one is run or asked for its help."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module, name, _ = entry
        command = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help``, from :data:`COMMANDS`: no command is imported."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = []
        for name in names:
            command = self.commands.get(name) or click.Command(name, help=COMMANDS[name][2])
            rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--version``: the version is looked up only when asked for."""
    if value and not ctx.resilient_parsing:
        click.echo(f"dicomtap, version {version()}")
        ctx.exit()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and exit.",
)
def main() -> None:
    """dicomtap: DICOM network traffic analyzer and association debugger.

    Reads packet captures (pcap, pcapng) and reconstructs DICOM associations: who talked
    to whom, what was proposed and accepted, which DIMSE operations ran, how long each
    took, and how each association ended.
    """
