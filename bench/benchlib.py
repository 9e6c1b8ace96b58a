"""What the benchmarks share: running commands, DCMTK's tools, large generated objects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.objects import big_image


def sh(*argv: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run a command to completion, output captured."""
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)


def dcmtk(name: str) -> str:
    """Absolute path of a DCMTK tool (pynetdicom installs Python apps of the same names)."""
    path = f"/usr/bin/{name}"
    if not os.access(path, os.X_OK):
        sys.exit(f"{path} not found: install DCMTK (apt install dcmtk)")
    return path


def make_objects(directory: Path, total_mb: int) -> list[Path]:
    """Files of 32 MiB of pixel data, listed as often as needed to reach ``total_mb``."""
    directory.mkdir(parents=True, exist_ok=True)
    distinct = [big_image(directory / f"bench{i}.dcm", 32 << 20, index=i) for i in range(4)]
    per = distinct[0].stat().st_size
    count = -(-total_mb * 1024 * 1024 // per)
    return [distinct[i % len(distinct)] for i in range(count)]


def make_ct_objects(directory: Path, total_mb: int) -> list[Path]:
    """CT images of 30 KB to 2 MB (twelve sizes, evenly spread on a log scale, as a CT
    series' mix of localizers, slices and multi-frame objects), listed as often as needed
    to reach ``total_mb``."""
    directory.mkdir(parents=True, exist_ok=True)
    low, high, steps = 30_000, 2_000_000, 12
    sizes = [round(low * (high / low) ** (i / (steps - 1))) for i in range(steps)]
    distinct = [
        big_image(directory / f"ct{i}.dcm", size, index=100 + i) for i, size in enumerate(sizes)
    ]
    files: list[Path] = []
    total = 0
    while total < total_mb * 1024 * 1024:
        path = distinct[len(files) % len(distinct)]
        files.append(path)
        total += path.stat().st_size
    return files
