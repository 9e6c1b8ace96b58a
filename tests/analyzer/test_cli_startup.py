"""Start-up of the command line: each command imports only what it needs.

Checked by the modules a fresh interpreter has loaded (``sys.modules``), not by timing: a
timing test would pass or fail with the machine's load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from analyzer.cli import COMMANDS, main

#: Libraries that only some commands need, each costing tenths of a second to import.
HEAVY = ("textual", "rich", "pynetdicom", "pydicom", "dask", "distributed", "pyarrow", "pyshark")
#: What only ``analyze --jobs`` (processes) and ``analyze --dask`` (a cluster) need.
SCALE = ("analyzer.scale.jobs", "analyzer.cli.scaled", "analyzer.scale.runner")
ECHO = Path(__file__).resolve().parents[2] / "samples" / "echo.pcap"


def loaded_after(code: str, wanted: tuple[str, ...] = HEAVY) -> list[str]:
    """Which of ``wanted`` a fresh interpreter has imported after running ``code``."""
    report = f"print(json.dumps([m for m in {wanted!r} if m in sys.modules]))"
    probe = f"{code}\nimport json, sys\n{report}"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    loaded: list[str] = json.loads(out.splitlines()[-1])
    return loaded


def test_the_group_imports_no_command_library() -> None:
    assert loaded_after("import analyzer.cli") == []


def test_help_and_version_import_no_command_library() -> None:
    code = (
        "import sys\nfrom analyzer.cli import main\n"
        "for argv in (['--help'], ['--version']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass"
    )
    assert loaded_after(code) == []


def test_analyze_imports_no_interactive_or_cluster_library() -> None:
    # pydicom (dictionaries) and pynetdicom (status tables) are what analysing uses.
    unwanted = ("textual", "rich", "dask", "distributed", "pyarrow", "pyshark", "asyncio")
    assert loaded_after("import analyzer.cli.analyze", unwanted) == []


def analyze_code(*options: str) -> str:
    """Code running ``dicomtap analyze`` on a sample, JSON Lines to nowhere."""
    argv = ["analyze", *options, "--format", "json", "-o", os.devnull, str(ECHO)]
    return f"from analyzer.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass"


def test_analyze_loads_jobs_and_dask_only_when_asked() -> None:
    assert loaded_after("import analyzer.cli.analyze", SCALE) == []
    assert loaded_after(analyze_code(), SCALE) == []
    jobs = loaded_after(analyze_code("--jobs", "2"), SCALE)
    assert "analyzer.scale.jobs" in jobs and "analyzer.cli.scaled" not in jobs


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_listed_summary_is_the_commands_own(name: str) -> None:
    """``--help`` lists the summaries of COMMANDS: each must be what the command says."""
    command = main.get_command(click.Context(main), name)
    assert command is not None
    for limit in (45, 60, 200):
        listed = click.Command(name, help=COMMANDS[name][2]).get_short_help_str(limit)
        assert listed == command.get_short_help_str(limit)


def test_every_command_runs_through_the_lazy_group() -> None:
    for name in COMMANDS:
        result = CliRunner().invoke(main, [name, "--help"], catch_exceptions=False)
        assert result.exit_code == 0, name
        assert "Usage: " in result.output and name in result.output


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("dicomtap, version ")


def test_help_lists_every_command() -> None:
    out = CliRunner().invoke(main, ["--help"]).output
    listed = [line.split()[0] for line in out.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == sorted(COMMANDS)
