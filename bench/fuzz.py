"""Coverage-guided fuzzing of dicomtap's engine, reader and reports (atheris / libFuzzer).

Targets (``bench/fuzz_targets.py`` says what each feeds and checks): ``observer``,
``flows``, ``pdu``, ``dimse``, ``pcap``, ``pipeline``. Seeds are made from sample captures
(TCP payload streams, segments, PDUs, command sets and data set heads found in them; whole
files for the reader and the pipeline).

Invariants, per input: no exception but the documented ones (each target's check), memory
bounded (``--rss-mb``: the worker's peak RSS is read after every input, and an address-space
limit turns a runaway allocation into ``MemoryError``), time bounded (``--timeout``: libFuzzer
stops an input that runs longer). A crash does not stop the run: it is recorded, deduplicated
by exception type and top frame (the innermost frame in dicomtap's code), and the smallest
input that shows it is kept. A timeout or a memory overrun ends the worker; it is recorded
the same way and the worker restarted.

Each target runs ``--jobs`` workers in parallel, one libFuzzer process each (different seeds,
one shared corpus), targets one after the other. Prints progress every 30 s and, at the end,
per target: inputs run, inputs/s, coverage (libFuzzer's edge count ``cov`` and feature count
``ft``), corpus size, unique crashes (new and known), leaked warnings, slowest input, peak RSS;
writes ``OUT/summary.json`` and, for each unique crash, ``OUT/crashes/TARGET/KEY.bin`` (the
smallest input) and ``KEY.txt`` (traceback). Exit status: 0 no new crash, 1 a new crash (not
listed as known), 2 a usage error or a worker that failed to run.

Usage::

    python bench/fuzz.py --target all --runs 200000 --jobs 2 --out /tmp/fuzz
    python bench/fuzz.py --target pdu --target dimse --runs pdu=300000 --runs dimse=100000 \
        --corpus tests/data/fuzz --out /tmp/fuzz      # TARGET=N; more corpus folders
    python bench/fuzz.py --target observer --seconds 600 --out /tmp/fuzz
    python bench/fuzz.py replay --target pcap FILE...         # run inputs once, say which crash
    python bench/fuzz.py minimize --target flows FILE -o OUT  # shrink an input, same crash

Crashes already tracked elsewhere are listed in ``bench/fuzz_crashes.py`` (``KNOWN``) and
reported as known. Needs atheris (in the test extra: ``pip install -e '.[test]'``), except
for ``replay`` and ``minimize``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
TARGET_NAMES = ("observer", "flows", "pdu", "dimse", "pcap", "pipeline")
PROGRESS_EVERY = 30.0
STATE_EVERY = 2.0
SLOW = 1.0
"""An input that runs longer than this (seconds) is counted as slow (the timeout ends it)."""
EXIT_MEMORY = 77


# --- the worker: one libFuzzer process ------------------------------------------------------


@dataclass
class _WorkerState:
    """What one worker found, written to ``state.json`` as it goes."""

    target: str
    directory: Path
    inputs: int = 0
    crashes: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: dict[str, dict[str, Any]] = field(default_factory=dict)
    slow: int = 0
    slowest: float = 0.0
    written: float = 0.0

    def save(self) -> None:
        self.written = time.monotonic()
        data = {
            "target": self.target,
            "inputs": self.inputs,
            "crashes": self.crashes,
            "warnings": self.warnings,
            "slow": self.slow,
            "slowest": self.slowest,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        }
        tmp = self.directory / "state.json.tmp"
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self.directory / "state.json")


def _worker(args: argparse.Namespace) -> None:
    import atheris
    from atheris.import_hook import instrument_imports

    directory = Path(args.work)
    state = _WorkerState(args.target, directory)
    limit_kb = args.rss_mb * 1024
    address_space = args.address_space_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    with instrument_imports(include=["dissectors", "analyzer", "tui"]):
        import fuzz_targets
    from fuzz_crashes import classify, relative

    target = fuzz_targets.TARGETS[args.target]
    run = target.run

    def record(key: str, entry: dict[str, Any], data: bytes) -> None:
        old = state.crashes.get(key)
        if old is None:
            entry["count"] = 1
            entry["size"] = len(data)
            entry["first_input"] = state.inputs
            state.crashes[key] = entry
        else:
            old["count"] += 1
            if len(data) >= old["size"]:
                return
            old["size"] = len(data)
        slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)[:120]
        (directory / f"{slug}.bin").write_bytes(data)
        state.crashes[key]["file"] = str(directory / f"{slug}.bin")
        state.save()

    def one_input(data: bytes) -> None:
        state.inputs += 1
        started = time.perf_counter()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                run(data)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            crash = classify(exc)
            record(
                crash.key,
                {
                    "kind": crash.kind,
                    "where": crash.where,
                    "message": crash.message,
                    "traceback": crash.traceback,
                    "known": crash.known,
                },
                data,
            )
        else:
            for w in caught:
                key = f"{w.category.__name__}@{relative(w.filename)}:{w.lineno}"
                seen = state.warnings.setdefault(key, {"count": 0, "message": str(w.message)[:300]})
                seen["count"] += 1
        elapsed = time.perf_counter() - started
        if elapsed > SLOW:
            state.slow += 1
        if elapsed > state.slowest:
            state.slowest = elapsed
            if elapsed > 0.05:
                (directory / "slowest.bin").write_bytes(data)
        if resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > limit_kb:
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
            record(
                f"RssLimit@{args.target}",
                {
                    "kind": "RssLimit",
                    "where": args.target,
                    "message": f"peak RSS {rss} MB passed {args.rss_mb} MB at input "
                    f"{state.inputs} (this one, or a leak across inputs)",
                    "traceback": "",
                    "known": None,
                },
                data,
            )
            state.save()
            os._exit(EXIT_MEMORY)
        if time.monotonic() - state.written > STATE_EVERY:
            state.save()

    state.save()
    libfuzzer = [
        sys.argv[0],
        f"-runs={args.runs}",
        f"-seed={args.seed}",
        f"-max_len={target.max_len}",
        f"-timeout={args.timeout}",
        f"-rss_limit_mb={args.rss_mb * 2}",
        f"-artifact_prefix={directory}/",
        "-print_final_stats=1",
        # Workers share the corpus by reading it again every second; a lone worker does not
        # need to, and not doing so keeps a seeded run the same from one run to the next.
        f"-reload={1 if args.shared else 0}",
        "-report_slow_units=100000",
        *(["-dict=" + args.dict] if args.dict else []),
        *([f"-max_total_time={args.seconds}"] if args.seconds else []),
        *args.corpus,
    ]
    atheris.Setup(libfuzzer, one_input)
    try:
        atheris.Fuzz()
    finally:
        state.save()


# --- the driver ---------------------------------------------------------------------------

_COV = re.compile(r"#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/(\S+)")
_STAT = re.compile(r"stat::(\w+):\s+(\d+)")


@dataclass
class _Job:
    target: str
    index: int
    work: Path
    logs: Path
    runs: int
    seed: int
    log: Path = Path()
    current: Path = Path()
    restarts: int = 0
    proc: subprocess.Popen[bytes] | None = None
    done_inputs: int = 0  # from earlier incarnations (restarts)
    seconds: float = 0.0
    started: float = 0.0
    failed: str | None = None
    states: list[dict[str, Any]] = field(default_factory=list)


def _read_state(work: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((work / "state.json").read_text())
        return data
    except (OSError, ValueError):
        return {"inputs": 0, "crashes": {}, "warnings": {}}


def _spawn(job: _Job, args: argparse.Namespace, corpus: list[Path], remaining: int) -> None:
    # Each incarnation of a worker (a restart after a timeout) has its own folder.
    job.current = job.work / f"r{job.restarts}"
    job.current.mkdir(parents=True, exist_ok=True)
    seconds = 0
    if args.seconds:
        seconds = max(1, int(args.seconds - (time.monotonic() - job.started)))
    cmd = [
        sys.executable,
        str(HERE),
        "_worker",
        "--target",
        job.target,
        "--work",
        str(job.current),
        "--runs",
        str(remaining),
        "--seed",
        str(job.seed + 1000 * job.restarts),
        "--timeout",
        str(args.timeout),
        "--rss-mb",
        str(args.rss_mb),
        "--address-space-mb",
        str(args.address_space_mb),
        *(["--seconds", str(seconds)] if seconds else []),
        *(["--shared"] if args.jobs > 1 else []),
        *(["--dict", args.dict] if args.dict else []),
        *[str(c) for c in corpus],
    ]
    env = dict(os.environ, PYTHONHASHSEED="0")  # the same input takes the same path
    job.log = job.logs / f"{job.target}-w{job.index}-r{job.restarts}.log"
    log = job.log.open("wb")
    job.proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
    )
    log.close()


def _artifacts(job: _Job) -> list[Path]:
    return sorted(
        p for p in job.current.iterdir() if re.match(r"(timeout|oom|crash|leak)-", p.name)
    )


def _collect_exit(job: _Job, code: int) -> bool:
    """Take in a worker's end; True if it should be restarted (it died on an input)."""
    state = _read_state(job.current)
    job.states.append(state)
    # libFuzzer's own count when it finished normally (the state file lags by a second).
    executed = _log_stats(job.log).get("number_of_executed_units")
    job.done_inputs += executed if executed is not None else int(state.get("inputs", 0))
    if code == 0:
        return False
    artifacts = _artifacts(job)
    if code == EXIT_MEMORY:
        return True
    if not artifacts:
        job.failed = f"worker exited with status {code} without an artifact: see {job.log}"
        return False
    for artifact in artifacts:
        kind = artifact.name.split("-", 1)[0]
        name = {"timeout": "Timeout", "oom": "OutOfMemory", "crash": "WorkerCrash"}.get(kind, kind)
        key = f"{name}@{job.target}"
        tail = job.log.read_text(errors="replace")[-4000:]
        entry = {
            "kind": name,
            "where": job.target,
            "message": f"libFuzzer {kind} (see the log's tail)",
            "traceback": tail,
            "known": None,
            "count": 1,
            "size": artifact.stat().st_size,
            "file": artifact.name,
        }
        state.setdefault("crashes", {})[key] = entry
        entry["file"] = str(artifact)
    return True


def _log_stats(log: Path) -> dict[str, int]:
    """The last coverage line and the final stats libFuzzer printed in a worker's log."""
    out: dict[str, int] = {}
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return out
    for m in _COV.finditer(text):
        out["cov"], out["ft"], out["corpus"] = int(m.group(2)), int(m.group(3)), int(m.group(4))
    for m in _STAT.finditer(text):
        out[m.group(1)] = int(m.group(2))
    return out


def _run_target(name: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    from fuzz_seeds import seeds
    from fuzz_targets import TARGETS

    target = TARGETS[name]
    seed_dir = out / "seeds" / name
    if seed_dir.exists():
        shutil.rmtree(seed_dir)
    n_seeds = seeds(name, [Path(p) for p in args.samples], seed_dir)
    corpus_dir = out / "corpus" / name
    corpus_dir.mkdir(parents=True, exist_ok=True)
    corpus = [
        corpus_dir,
        seed_dir,
        *[Path(c) / name for c in args.corpus if (Path(c) / name).is_dir()],
    ]
    work_root = out / "work" / name
    if work_root.exists():
        shutil.rmtree(work_root)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    runs = args.runs.get(name, args.runs.get("", 0))
    per_job = -(-runs // args.jobs) if runs else 0
    jobs = [
        _Job(name, i, work_root / f"w{i}", logs, per_job, args.seed + i) for i in range(args.jobs)
    ]
    started = time.monotonic()
    print(
        f"== {name}: {target.doc}; {n_seeds} seeds, {args.jobs} job(s), "
        + (f"{runs} inputs" if runs else f"{args.seconds} s"),
        flush=True,
    )
    for old in logs.glob(f"{name}-w*.log"):
        old.unlink()
    for job in jobs:
        job.started = started
        _spawn(job, args, corpus, job.runs if job.runs else -1)
    last_progress = started
    try:
        while any(j.proc is not None for j in jobs):
            time.sleep(0.5)
            for job in jobs:
                if job.proc is None or job.proc.poll() is None:
                    continue
                code = job.proc.returncode
                job.proc = None
                if not _collect_exit(job, code):
                    job.seconds = time.monotonic() - started
                    continue
                job.restarts += 1
                remaining = job.runs - job.done_inputs if job.runs else 0
                out_of_time = args.seconds and time.monotonic() - started >= args.seconds
                if job.restarts > args.max_restarts:
                    job.failed = (
                        f"worker {job.index} restarted {job.restarts - 1} times; see {job.log}"
                    )
                elif (job.runs and remaining > 0) or (not job.runs and not out_of_time):
                    _spawn(job, args, corpus, remaining if job.runs else -1)
            now = time.monotonic()
            if now - last_progress >= PROGRESS_EVERY:
                last_progress = now
                done = sum(
                    j.done_inputs + int(_read_state(j.current).get("inputs", 0))
                    for j in jobs
                    if j.proc
                )
                done += sum(j.done_inputs for j in jobs if j.proc is None)
                stats = [_log_stats(j.log) for j in jobs]
                cov = max((s.get("cov", 0) for s in stats), default=0)
                crashes = {k for j in jobs for k in _read_state(j.current).get("crashes", {})}
                print(
                    f"   {name}: {done} inputs, {done / (now - started):.0f}/s, cov {cov}, "
                    f"{len(crashes)} unique crash(es), {now - started:.0f} s",
                    flush=True,
                )
    except KeyboardInterrupt:
        interrupted = True
        for job in jobs:
            if job.proc is not None:
                job.proc.send_signal(signal.SIGTERM)  # libFuzzer prints its stats and exits
                job.proc.wait()
                _collect_exit(job, 0)
                job.proc = None
    else:
        interrupted = False
    elapsed = time.monotonic() - started
    result = _merge(name, jobs, elapsed, out)
    result["interrupted"] = interrupted
    return result


def _merge(name: str, jobs: list[_Job], elapsed: float, out: Path) -> dict[str, Any]:
    crash_dir = out / "crashes" / name
    crash_dir.mkdir(parents=True, exist_ok=True)
    crashes: dict[str, dict[str, Any]] = {}
    leaked: dict[str, dict[str, Any]] = {}
    slow = 0
    slowest = 0.0
    peak = 0
    for job in jobs:
        for state in job.states:
            slow += int(state.get("slow", 0))
            slowest = max(slowest, float(state.get("slowest", 0.0)))
            peak = max(peak, int(state.get("peak_rss_mb", 0)))
            for key, c in state.get("crashes", {}).items():
                source = Path(c["file"]) if "file" in c else None
                have = crashes.get(key)
                if have is None:
                    crashes[key] = dict(c, source=str(source) if source else None)
                    continue
                have["count"] += c["count"]
                if source is not None and c["size"] < have["size"]:
                    have.update(size=c["size"], source=str(source))
            for key, w in state.get("warnings", {}).items():
                leaked.setdefault(key, {"count": 0, "message": w["message"]})["count"] += w["count"]
    for key, c in crashes.items():
        slug = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in key)[:120]
        source = c.pop("source", None)
        if source and Path(source).exists():
            shutil.copyfile(source, crash_dir / f"{slug}.bin")
            c["file"] = str(crash_dir / f"{slug}.bin")
            c["sha1"] = hashlib.sha1((crash_dir / f"{slug}.bin").read_bytes()).hexdigest()
        (crash_dir / f"{slug}.txt").write_text(
            f"{key}\n{c.get('known') or 'new'}\n{c['message']}\n\n{c['traceback']}"
        )
    stats = [_log_stats(log) for log in sorted(out.glob(f"logs/{name}-w*.log"))]
    inputs = sum(j.done_inputs for j in jobs)
    return {
        "target": name,
        "inputs": inputs,
        "seconds": round(elapsed, 1),
        "rate": round(inputs / elapsed, 1) if elapsed else 0.0,
        "cov": max((s.get("cov", 0) for s in stats), default=0),
        "ft": max((s.get("ft", 0) for s in stats), default=0),
        "corpus": max((s.get("corpus", 0) for s in stats), default=0),
        "crashes": crashes,
        "warnings": leaked,
        "slow_inputs": slow,
        "slowest_s": round(slowest, 3),
        "peak_rss_mb": peak,
        "restarts": sum(j.restarts for j in jobs),
        "failed": [j.failed for j in jobs if j.failed],
    }


def _print_summary(results: list[dict[str, Any]], elapsed: float) -> None:
    print()
    head = f"{'target':<9} {'inputs':>10} {'s':>7} {'inputs/s':>9} {'cov':>6} {'ft':>7} "
    head += f"{'corpus':>6} {'crashes':>7} {'known':>5} {'warn':>4} {'slowest':>8} {'rss MB':>6}"
    print(head)
    total = 0
    for r in results:
        new = sum(1 for c in r["crashes"].values() if not c.get("known"))
        known = len(r["crashes"]) - new
        total += r["inputs"]
        print(
            f"{r['target']:<9} {r['inputs']:>10} {r['seconds']:>7.0f} {r['rate']:>9.0f} "
            f"{r['cov']:>6} {r['ft']:>7} {r['corpus']:>6} {new:>7} {known:>5} "
            f"{len(r['warnings']):>4} {r['slowest_s']:>7.3f}s {r['peak_rss_mb']:>6}"
        )
    print(f"{'total':<9} {total:>10} {elapsed:>7.0f} {total / elapsed if elapsed else 0:>9.0f}")
    for r in results:
        for key, c in r["crashes"].items():
            state = f"known: {c['known']}" if c.get("known") else "NEW"
            print(f"\n[{r['target']}] {key} ({c['count']}x, smallest {c['size']} B) {state}")
            print(f"    {c['message']}")
            if c.get("file"):
                print(f"    input: {c['file']}")
        for key, w in r["warnings"].items():
            print(f"\n[{r['target']}] warning leaked: {key} ({w['count']}x): {w['message']}")
        for failure in r["failed"]:
            print(f"\n[{r['target']}] {failure}")


def _fuzz(args: argparse.Namespace) -> int:
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("fuzz.py: atheris is not installed (pip install -e '.[test]')", file=sys.stderr)
        return 2
    # Stopped with SIGTERM (a background run): end the workers as for Ctrl-C.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    targets = list(TARGET_NAMES) if "all" in args.target else args.target
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results = []
    for name in targets:
        results.append(_run_target(name, args, out))
        if results[-1]["interrupted"]:
            print(f"interrupted during {name}: the targets after it did not run")
            break
    elapsed = time.monotonic() - started
    _print_summary(results, elapsed)
    summary = {
        "command": " ".join(sys.argv),
        "seconds": round(elapsed, 1),
        "inputs": sum(r["inputs"] for r in results),
        "targets": results,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"\nsummary: {out / 'summary.json'}; crash inputs: {out / 'crashes'}")
    if any(r["failed"] for r in results):
        return 2
    if any(not c.get("known") for r in results for c in r["crashes"].values()):
        return 1
    return 0


# --- replay and minimise, in process (no atheris needed) -----------------------------------


def _replay(args: argparse.Namespace) -> int:
    from fuzz_crashes import outcome

    bad = 0
    for name in args.files:
        data = Path(name).read_bytes()
        key = outcome(args.target, data)
        print(f"{name}: {key or 'ok'}")
        bad += key is not None
    return 1 if bad else 0


def minimize(target: str, data: bytes, budget: float = 120.0) -> bytes:
    """The smallest input found (delta debugging, then single bytes) with ``data``'s crash."""
    from fuzz_crashes import outcome

    key = outcome(target, data)
    if key is None:
        raise ValueError("the input does not crash")
    deadline = time.monotonic() + budget
    chunk = max(1, len(data) // 2)
    while chunk >= 1 and time.monotonic() < deadline:
        at = 0
        shrunk = False
        while at < len(data) and time.monotonic() < deadline:
            candidate = data[:at] + data[at + chunk :]
            if outcome(target, candidate) == key:
                data = candidate
                shrunk = True
            else:
                at += chunk
        if not shrunk:
            chunk //= 2
    # Then make the bytes left as plain as possible (zeros), for a readable repro.
    for at in range(len(data)):
        if time.monotonic() >= deadline:
            break
        if data[at]:
            candidate = data[:at] + b"\x00" + data[at + 1 :]
            if outcome(target, candidate) == key:
                data = candidate
    return data


def _minimize(args: argparse.Namespace) -> int:
    data = Path(args.file).read_bytes()
    from fuzz_crashes import outcome

    small = minimize(args.target, data, args.budget)
    Path(args.output).write_bytes(small)
    print(f"{args.file}: {len(data)} → {len(small)} bytes, {outcome(args.target, small)}")
    return 0


# --- command line -------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench/fuzz.py",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command")
    fuzz = sub.add_parser("fuzz", help="fuzz (the default command)")
    _fuzz_options(fuzz)
    replay = sub.add_parser("replay", help="run inputs once and say which crash")
    replay.add_argument("--target", required=True, choices=TARGET_NAMES)
    replay.add_argument("files", nargs="+")
    mini = sub.add_parser("minimize", help="shrink a crashing input, keeping its crash")
    mini.add_argument("--target", required=True, choices=TARGET_NAMES)
    mini.add_argument("file")
    mini.add_argument("-o", "--output", required=True)
    mini.add_argument("--budget", type=float, default=120.0, help="seconds (default 120)")
    worker = sub.add_parser("_worker")
    worker.add_argument("--target", required=True)
    worker.add_argument("--work", required=True)
    worker.add_argument("--runs", type=int, required=True)
    worker.add_argument("--seed", type=int, required=True)
    worker.add_argument("--seconds", type=int, default=0)
    worker.add_argument("--timeout", type=int, required=True)
    worker.add_argument("--rss-mb", type=int, required=True)
    worker.add_argument("--address-space-mb", type=int, required=True)
    worker.add_argument("--dict")
    worker.add_argument("--shared", action="store_true")
    worker.add_argument("corpus", nargs="*")
    return parser


def _fuzz_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--target",
        action="append",
        choices=(*TARGET_NAMES, "all"),
        help="what to fuzz (repeatable; default all)",
    )
    p.add_argument(
        "--runs",
        action="append",
        default=[],
        metavar="[TARGET=]N",
        help="inputs per target, over all jobs (TARGET=N for one target; repeatable)",
    )
    p.add_argument("--seconds", type=int, default=0, help="seconds per target")
    p.add_argument("--jobs", type=int, default=1, help="parallel workers per target")
    p.add_argument("--seed", type=int, default=1, help="libFuzzer seed of the first worker")
    p.add_argument(
        "--samples",
        action="append",
        default=None,
        help="captures or folders of captures to make seeds from (default samples/)",
    )
    p.add_argument(
        "--corpus",
        action="append",
        default=[],
        help="extra corpus folder with one subfolder per target (e.g. tests/data/fuzz)",
    )
    p.add_argument("--out", required=True, help="output folder (corpus, crashes, logs)")
    p.add_argument("--timeout", type=int, default=10, help="seconds one input may take")
    p.add_argument("--rss-mb", type=int, default=1024, help="peak RSS a worker may reach")
    p.add_argument("--address-space-mb", type=int, default=4096, help="address-space limit")
    p.add_argument("--max-restarts", type=int, default=50, help="per worker")
    p.add_argument("--dict", help="a libFuzzer dictionary file")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("fuzz", "replay", "minimize", "_worker", "-h", "--help"):
        argv.insert(0, "fuzz")
    args = _parser().parse_args(argv)
    if args.command == "_worker":
        _worker(args)
        return 0
    if args.command == "replay":
        return _replay(args)
    if args.command == "minimize":
        return _minimize(args)
    if not args.target:
        args.target = ["all"]
    runs: dict[str, int] = {}
    for item in args.runs:
        name, _, count = item.rpartition("=")
        if (name and name not in TARGET_NAMES) or not count.isdigit():
            _parser().error(f"--runs {item}: give N or TARGET=N")
        runs[name] = int(count)
    args.runs = runs
    if not args.runs and not args.seconds:
        _parser().error("give --runs or --seconds")
    if args.samples is None:
        args.samples = [str(ROOT / "samples")]
    return _fuzz(args)


if __name__ == "__main__":
    sys.exit(main())
