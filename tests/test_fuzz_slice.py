"""The fuzz job's CI slice, and the inputs fuzzing found, replayed.

* Every file in ``tests/data/fuzz/TARGET/`` once crashed a target of ``bench/fuzz.py``
  and must now pass it (a regression test each).
* The slice: a short, seeded, fixed-size run of every target with atheris (libFuzzer),
  seeded from ``samples/`` and the regression corpus; fails on any new crash. Without
  atheris it fails in CI and skips elsewhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.peers import missing

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from fuzz_targets import TARGETS

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
CORPUS = ROOT / "tests" / "data" / "fuzz"

#: Inputs per target in the slice: about 25 s of CPU in all (worker start-up included).
SLICE_RUNS = {
    "observer": 1000,
    "flows": 800,
    "pdu": 2000,
    "dimse": 2000,
    "pcap": 2000,
    "pipeline": 400,
}
SLICE_SEED = 20261206


def _inputs(folder: Path) -> list[tuple[str, Path]]:
    found = []
    for target in sorted(TARGETS):
        d = folder / target
        if d.is_dir():
            found += [(target, p) for p in sorted(d.iterdir()) if p.suffix == ".bin"]
    return found


def test_the_corpus_holds_only_inputs_for_known_targets() -> None:
    folders = {p.name for p in CORPUS.iterdir() if p.is_dir()}
    assert folders <= set(TARGETS)
    assert _inputs(CORPUS), "the regression corpus is empty"


@pytest.mark.parametrize(
    ("target", "path"), _inputs(CORPUS), ids=lambda v: v.name if isinstance(v, Path) else v
)
def test_an_input_that_once_crashed_passes(target: str, path: Path) -> None:
    TARGETS[target].run(path.read_bytes())


def test_the_replay_command_passes_a_fixed_input() -> None:
    target, path = _inputs(CORPUS)[0]
    result = subprocess.run(
        [sys.executable, str(BENCH / "fuzz.py"), "replay", "--target", target, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _atheris() -> None:
    try:
        import atheris  # noqa: F401
    except ImportError:
        missing("atheris (the test extra installs it)")


@pytest.mark.slow
def test_the_seeded_slice_of_every_target_finds_no_new_crash(tmp_path: Path) -> None:
    _atheris()
    out = tmp_path / "fuzz"
    cmd = [
        sys.executable,
        str(BENCH / "fuzz.py"),
        "--target",
        "all",
        *[f"--runs={name}={n}" for name, n in SLICE_RUNS.items()],
        "--jobs",
        "1",
        "--seed",
        str(SLICE_SEED),
        "--corpus",
        str(CORPUS),
        "--timeout",
        "30",
        "--out",
        str(out),
    ]
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, env=dict(os.environ, PYTHONHASHSEED="0")
    )
    summary = json.loads((out / "summary.json").read_text())
    report = result.stdout[-6000:] + result.stderr[-2000:]
    by_target = {t["target"]: t for t in summary["targets"]}
    assert set(by_target) == set(SLICE_RUNS), report
    for name, runs in SLICE_RUNS.items():
        t = by_target[name]
        assert t["inputs"] >= runs, f"{name} ran {t['inputs']} of {runs} inputs\n{report}"
        assert t["cov"] > 0, f"{name}: no coverage reported\n{report}"
        assert not t["failed"], report
        new = {k: c for k, c in t["crashes"].items() if not c.get("known")}
        assert not new, f"{name}: new crash(es) {list(new)}\n{report}"
    assert result.returncode == 0, report
