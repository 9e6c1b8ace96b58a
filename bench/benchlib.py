"""What the benchmarks share: running commands, DCMTK's tools, large generated objects."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.objects import big_image


def sh(*argv: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run a command to completion, output captured."""
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)


@dataclass(frozen=True, slots=True)
class Measured:
    """One timed run of a command."""

    wall_s: float
    cpu_s: float
    """User and system time of the command (and its children)."""
    peak_rss_kib: int
    """Peak RSS of the command's largest process; 0 when it was stopped."""
    stopped: bool
    """It was stopped at the timeout."""


def measure(argv: list[str], timeout: float | None = None) -> Measured:
    """Time one run of ``argv``, its output discarded; stop it (and its process group) at
    ``timeout`` seconds. Raises RuntimeError when it fails.

    The peak RSS is what GNU time reports for the command: the rusage of a child spawned
    straight from this process would count this process's own pages (the objects it made)
    until the child execs.
    """
    null = os.open(os.devnull, os.O_WRONLY)
    stopped = threading.Event()
    with tempfile.NamedTemporaryFile("r", prefix="dicomtap-bench-rss-") as rss:
        timed = ["/usr/bin/time", "-f", "%M", "-o", rss.name, *argv]
        start = time.perf_counter()
        try:
            pid = os.posix_spawn(
                timed[0],
                timed,
                os.environ,
                file_actions=[(os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)],
                setsid=True,
            )

            def stop() -> None:
                stopped.set()
                os.killpg(pid, signal.SIGKILL)

            timer = threading.Timer(timeout, stop) if timeout else None
            if timer is not None:
                timer.start()
            _, status, usage = os.wait4(pid, 0)
            if timer is not None:
                timer.cancel()
        finally:
            os.close(null)
        wall = time.perf_counter() - start
        cpu = usage.ru_utime + usage.ru_stime
        if stopped.is_set():
            return Measured(wall, cpu, 0, True)
        if status != 0:
            raise RuntimeError(f"{' '.join(argv[:2])} failed with status {status}")
        return Measured(wall, cpu, int(rss.read().split()[-1]), False)


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


def family(pid: int) -> list[int]:
    """``pid`` and its descendants (the proxy and its recording process)."""
    out = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                out += family(int(child))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process and its descendants (alive) have used so far."""
    total = 0
    for one in family(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int, alone: bool = False) -> int:
    """Resident memory of a process and its descendants (the proxy and its recording
    process), KiB; ``alone``: of that process only."""
    total = 0
    for one in [pid] if alone else family(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total
