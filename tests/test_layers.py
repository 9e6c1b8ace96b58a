"""The layer rule (tui → analyzer → dissectors, never upward) holds in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

IO_MODULES = {"asyncio", "socket", "subprocess", "threading", "logging", "selectors", "ssl"}
UI_MODULES = {"textual", "rich", "click"}
CAPTURE_MODULES = {"dpkt", "pyshark", "pynetdicom"}


def _loaded_after_import(module: str, preload: str = "") -> set[str]:
    """Top-level modules that importing ``module`` adds, after ``preload`` (an allowed
    dependency whose own imports are not ours to judge)."""
    code = (
        f"import sys, json\n{'import ' + preload if preload else ''}\n"
        f"before = set(sys.modules)\nimport {module}\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in json.loads(out.stdout)}


@pytest.mark.parametrize(
    "module",
    ["dissectors", "dissectors.tcp", "dissectors.observer", "dissectors.pdu", "dissectors.dimse"],
)
def test_dissectors_load_no_io_ui_or_capture_library(module: str) -> None:
    # pydicom (allowed for command and data sets) brings its own imports along.
    loaded = _loaded_after_import(module, preload="pydicom")
    assert not loaded & (IO_MODULES | UI_MODULES | CAPTURE_MODULES), sorted(
        loaded & (IO_MODULES | UI_MODULES | CAPTURE_MODULES)
    )
    assert "analyzer" not in loaded and "tui" not in loaded


def test_analyzer_core_does_not_load_the_tui() -> None:
    loaded = _loaded_after_import("analyzer.cli")
    assert "tui" not in loaded and "textual" not in loaded


def lint_imports(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    """import-linter's ``lint-imports ARGS`` run by this interpreter (the project's
    environment), not looked up on PATH, which a virtual environment does not put there."""
    code = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, check=False
    )


def test_import_linter_contracts() -> None:
    """The contracts in pyproject.toml ([tool.importlinter]) are kept."""
    out = lint_imports()
    assert out.returncode == 0, out.stdout + out.stderr
