"""The TUI stays on its side of the layers (Harlequin's import hygiene, made to fail loudly).

* No module of ``tui`` imports ``dissectors`` (or a capture library) itself: everything it
  shows comes through ``analyzer``.
* The headless core imports without Textual.
* Importing the analyzer, its CLI included, loads neither ``tui`` nor Textual.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.test_layers import lint_imports

ROOT = Path(__file__).resolve().parents[2]
TUI = ROOT / "tui"
HEADLESS = [
    "tui.core",
    "tui.rows",
    "tui.query",
    "tui.timeline",
    "tui.diagram",
    "tui.details",
    "tui.charts",
    "tui.dataset",
]
FORBIDDEN = {"dissectors", "dpkt", "pyshark"}


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):  # every import, deferred ones included
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_tui_module_imports_the_wire_layer() -> None:
    modules = sorted(TUI.rglob("*.py"))
    assert len(modules) > 10
    offenders = {
        str(p.relative_to(ROOT)): sorted(_imported_roots(p) & FORBIDDEN)
        for p in modules
        if _imported_roots(p) & FORBIDDEN
    }
    assert offenders == {}


def _loaded(module: str) -> set[str]:
    code = f"import sys, json\nimport {module}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return {name.split(".")[0] for name in json.loads(out.stdout)}


@pytest.mark.parametrize("module", HEADLESS)
def test_headless_core_imports_without_textual(module: str) -> None:
    loaded = _loaded(module)
    assert "textual" not in loaded
    assert "tui" in loaded  # the check ran on the real module


@pytest.mark.parametrize("module", ["analyzer.cli", "analyzer.cli.tui", "analyzer.store"])
def test_analyzer_does_not_load_the_tui(module: str) -> None:
    loaded = _loaded(module)
    assert "tui" not in loaded and "textual" not in loaded


def test_direct_import_contract(tmp_path: Path) -> None:
    """The tui → dissectors ban, for direct imports (the model itself is built on dissectors'
    types, so an indirect path through analyzer always exists)."""
    config = tmp_path / "contract.toml"
    config.write_text(
        textwrap.dedent(
            """
            [tool.importlinter]
            root_packages = ["dissectors", "analyzer", "tui"]
            include_external_packages = true

            [[tool.importlinter.contracts]]
            name = "tui never imports the wire layer itself"
            type = "forbidden"
            source_modules = ["tui"]
            forbidden_modules = ["dissectors", "dpkt", "pyshark"]
            allow_indirect_imports = true

            [[tool.importlinter.contracts]]
            name = "tui -> analyzer -> dissectors"
            type = "layers"
            layers = ["tui", "analyzer", "dissectors"]
            """
        )
    )
    out = lint_imports("--no-cache", str(config), cwd=str(ROOT))
    assert out.returncode == 0, out.stdout + out.stderr
