"""Check that a change leaves the reports byte-identical: ``dicomtap analyze`` output of
this tree against that of another revision, on every sample and on any capture given.

Each format (JSON Lines, text, CSV) of each capture is compared; the revision is checked
out with ``git archive`` into a temporary directory and run by the same interpreter.
Prints one line per difference and exits 1 if there is any. Usage::

    python bench/compare_output.py [--rev main] [EXTRA_CAPTURE...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("json", "text", "csv")


#: Run in a fresh interpreter from a tree's sources: every report of every capture, to files.
_RUN = """
import sys
from pathlib import Path
tree, out, formats, captures = sys.argv[1], Path(sys.argv[2]), sys.argv[3].split(","), sys.argv[4:]
sys.path.insert(0, tree)
from click.testing import CliRunner
from analyzer.cli import main
for i, capture in enumerate(captures):
    for fmt in formats:
        args = ["analyze", "--format", fmt, "--no-progress", capture]
        result = CliRunner().invoke(main, args)
        text = f"{result.output}\\n--- stderr, exit {result.exit_code} ---\\n{result.stderr}"
        (out / f"{i}.{fmt}").write_text(text)
"""


def reports(tree: Path, out: Path, captures: list[Path]) -> None:
    """Every report of every capture, as ``tree``'s sources write them, into ``out``."""
    out.mkdir()
    argv = [sys.executable, "-c", _RUN, str(tree), str(out), ",".join(FORMATS)]
    subprocess.run([*argv, *map(str, captures)], check=True, cwd=tree, timeout=3600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", default="main", help="the revision to compare against")
    parser.add_argument("captures", nargs="*", type=Path, help="more captures to compare")
    args = parser.parse_args()
    captures = sorted((ROOT / "samples").glob("*.pcap*")) + args.captures
    differ = 0
    with tempfile.TemporaryDirectory(prefix="dicomtap-ref-") as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.rev], capture_output=True, check=True
        ).stdout
        ref = Path(tmp) / "tree"
        ref.mkdir()
        with tempfile.TemporaryFile() as f:
            f.write(archive)
            f.seek(0)
            with tarfile.open(fileobj=f) as tar:
                tar.extractall(ref, filter="data")
        paths = [c.resolve() for c in captures]
        this, theirs = Path(tmp) / "this", Path(tmp) / "ref"
        reports(ROOT, this, paths)
        reports(ref, theirs, paths)
        for i, capture in enumerate(captures):
            for fmt in FORMATS:
                name = f"{i}.{fmt}"
                mine = (this / name).read_bytes()
                if fmt == "json" and b'"type":"summary"' not in mine:
                    differ += 1
                    print(f"no report: {capture} --format {fmt}", flush=True)
                elif mine != (theirs / name).read_bytes():
                    differ += 1
                    print(f"differs: {capture} --format {fmt}", flush=True)
    print(f"{len(captures)} captures × {len(FORMATS)} formats: {differ} differ from {args.rev}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
