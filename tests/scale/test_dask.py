"""``dicomtap analyze --dask``: on a local cluster and on a scheduler started as its own
processes, the output is the one process's, whatever the grouping and the order of files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import dask
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from analyzer.cli import main
from analyzer.cli.version import generator as cli_generator
from analyzer.scale import cluster
from analyzer.scale.cluster import DaskExecutor, dask_client
from analyzer.scale.runner import InProcess, plan, records
from analyzer.scale.task import Settings
from tests.peers import Net, Process, dicomtap_argv, missing, running
from tests.scale.captures import (
    GENERATOR,
    SAMPLES,
    Record,
    folder_of_samples,
    in_process,
    repeated,
    shifted,
    shuffled,
    split,
)
from tests.scale.test_parquet import as_rows, read_back

if TYPE_CHECKING:
    from distributed import Client

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with dask_client(None, workers=2) as c:
        yield c


def on_dask(client: Client, paths: list[str]) -> list[Record]:
    executor = DaskExecutor(client)
    settings = Settings(generator=GENERATOR)
    return list(records(plan(paths, executor), settings, executor))


def test_every_sample_a_capture_point(client: Client, tmp_path: Path) -> None:
    paths = shuffled(folder_of_samples(tmp_path), seed=5)
    got = on_dask(client, paths)
    assert got == in_process(paths)
    assert len(got[0]["sources"]) == len(SAMPLES)


def test_rings_and_samples_mixed(client: Client, tmp_path: Path) -> None:
    """Rings cut from three samples (each ring one task, its files read in time order),
    next to whole samples, all named in shuffled order."""
    paths: list[Path] = []
    for name in ("store_mtu1500.pcap", "move_orthanc.pcap", "store_pdu4096.pcapng"):
        sample = next(s for s in SAMPLES if s.name == name)
        paths += split(sample, tmp_path / sample.stem, 9)
    paths += [s for s in SAMPLES if s.name in ("echo.pcap", "abort.pcap", "find_orthanc.pcap")]
    mixed = shuffled(paths, seed=11)
    got = on_dask(client, mixed)
    assert got == in_process(mixed)
    assert len(plan(mixed, InProcess()).groups) == 6


def test_two_capture_points_that_saw_the_same_traffic(client: Client, tmp_path: Path) -> None:
    """The same traffic seen at two points (a copy 30 ms later), each as a ring in one
    folder: two capture points, each association twice, never reassembled together."""
    sample = next(s for s in SAMPLES if s.name == "store.pcap")
    later = shifted(sample, tmp_path / "later.pcap", 0.03)
    one = split(sample, tmp_path / "ring", 10, name="tap")
    two = split(later, tmp_path / "other", 10, name="tap")
    for part in two:
        _, number, rest = part.name.split("_")
        part.rename(tmp_path / "ring" / f"tap_{int(number) + 100:05}_{rest}")
    paths = sorted(str(p) for p in (tmp_path / "ring").iterdir())
    got = on_dask(client, shuffled([Path(p) for p in paths], seed=2))
    assert got == in_process(paths)
    work = plan(paths, InProcess())
    assert [len(g.files) for g in work.groups] == [len(one), len(two)]
    associations = [r for r in got if r["type"] == "association"]
    alone = [r for r in in_process([str(sample)]) if r["type"] == "association"]
    assert len(associations) == 2 * len(alone)


def test_the_command_on_a_folder_and_a_broken_file(tmp_path: Path) -> None:
    """``dicomtap analyze --dask FOLDER FILE`` as a user runs it (its own local cluster, one
    worker per core). In the folder, a file that is no capture is passed over with a note;
    named on its own, it is an error line and an error record; the captures are analysed,
    and the exit status is 2."""
    folder = tmp_path / "captures"
    folder_of_samples(folder)
    (folder / "README.txt").write_text("night shift captures\n")
    named = tmp_path / "notes.pcap"
    named.write_text("written by hand\n")
    out = tmp_path / "records.jsonl"
    proc = Net().run(
        dicomtap_argv(
            "analyze", "--format", "json", "-o", str(out), "--dask", str(folder), str(named)
        ),
        timeout=600,
    )
    assert proc.returncode == 2, proc.stderr
    said = [line for line in proc.stderr.splitlines() if "README" in line or "error" in line]
    assert said[0] == "dicomtap: note: passed over files that are no captures: README.txt"
    assert said[1].startswith(f"dicomtap: error: {named} is not a pcap or pcapng capture")
    assert len(said) == 2
    got = [json.loads(line) for line in out.read_text().splitlines()]
    executor = InProcess()
    paths = [*sorted(str(p) for p in folder.glob("*.pcap*")), str(named)]
    expected = list(records(plan(paths, executor), Settings(generator=cli_generator()), executor))
    assert got == expected
    assert [r["sources"] for r in got if r["type"] == "error"] == [[str(named)]]


def test_a_worker_that_dies_costs_only_its_capture_point(tmp_path: Path) -> None:
    """A worker killed (SIGKILL, by its PID) while it analyses a capture point: that capture
    point is an error record naming its file, the capture points after it are analysed by
    the worker Dask starts again, and the output is otherwise the one process's."""
    big = repeated(
        next(s for s in SAMPLES if s.name == "store_mtu1500.pcap"), tmp_path / "big.pcap", 160
    )
    small = [str(s) for s in SAMPLES if s.name in ("echo.pcap", "abort.pcap")]
    paths = [str(big), *small]
    # No second try for a task whose worker died, and one task at a time on the worker.
    once = {
        "distributed.scheduler.allowed-failures": 0,
        "distributed.scheduler.worker-saturation": 1.0,
    }
    with dask.config.set(once), dask_client(None, workers=1) as c:
        executor = DaskExecutor(c)
        work = plan(paths, executor)
        pids = c.run(os.getpid)
        stream = records(work, Settings(generator=GENERATOR), executor)
        got = [next(stream)]
        deadline = time.monotonic() + 300
        while not any(c.processing().values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # inside the big capture point's task (it takes seconds)
        for pid in pids.values():
            os.kill(pid, signal.SIGKILL)
        got += list(stream)
    errors = [r for r in got if r["type"] == "error"]
    assert len(errors) == 1 and errors[0]["sources"] == [str(big)]
    assert "the Dask task failed" in errors[0]["message"]
    expected = in_process(small)
    assert [r for r in got[1:] if r["type"] not in ("error", "summary")] == expected[1:-1]


def test_an_unreachable_scheduler_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "2s")
    sample = str(SAMPLES[0])
    result = CliRunner().invoke(
        main, ["analyze", "--dask", "tcp://127.0.0.1:9", "--format", "json", sample]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("dicomtap: error: cannot reach the Dask scheduler at tcp:")
    assert len(result.stderr.splitlines()) == 1


def test_redaction_is_refused_on_dask() -> None:
    """--redact phi draws its pseudonyms with a key of the process: workers would each draw
    their own, so the same UID would read differently across capture points."""
    from analyzer import redact

    try:
        result = CliRunner().invoke(
            main, ["analyze", "--dask", "--redact", "phi", "--format", "json", str(SAMPLES[0])]
        )
    finally:
        redact.redact_phi(False)
    assert result.exit_code == 2
    assert result.stderr == "dicomtap: error: --redact cannot be used with --dask\n"


def test_an_existing_scheduler_and_worker(tmp_path: Path) -> None:
    """``dask scheduler`` and ``dask worker`` started as processes of their own on
    127.0.0.1 (in a network namespace of the test's own when it can), then ``dicomtap analyze
    --dask tcp://127.0.0.1:PORT --format parquet``: the tables hold the records one process
    writes. The scheduler and worker are stopped by their PIDs."""
    dask = shutil.which("dask", path=os.path.dirname(sys.executable))
    if dask is None:
        missing("the dask command (dask[distributed])")
        return
    paths = [str(s) for s in SAMPLES if s.name in ("move_orthanc.pcap", "store.pcap", "abort.pcap")]
    with Net() as net:
        port = net.port(8786)
        address = f"tcp://127.0.0.1:{port}"
        worker_argv = [dask, "worker", address, "--host", "127.0.0.1", "--nthreads", "1"]
        worker_argv += ["--nworkers", "1", "--no-dashboard"]
        with (
            running(
                net,
                [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                tmp_path / "scheduler.log",
                port=port,
            ),
            running(
                net,
                worker_argv,
                tmp_path / "worker.log",
                # Its log says when it has registered (this process may have turned the
                # log off for the workers it starts: the setting is inherited).
                env={"DASK_LOGGING__DISTRIBUTED": "info"},
            ) as worker,
        ):
            _wait_for_worker(worker, tmp_path / "worker.log")
            tables = tmp_path / "tables"
            proc = net.run(
                dicomtap_argv(
                    "analyze", "--dask", address, "--format", "parquet", "-o", str(tables), *paths
                ),
                timeout=600,
            )
            assert proc.returncode == 0, proc.stderr
    expected = in_process(paths)
    expected[0]["generator"] = cli_generator()
    assert read_back(tables) == as_rows(expected)


def _wait_for_worker(worker: Process, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while "Registered to" not in worker.output():
        if worker.popen.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the Dask worker did not register: {worker.output()}")
        time.sleep(0.2)


def test_parquet_tables_read_by_pandas(client: Client, tmp_path: Path) -> None:
    """pandas reads what --dask writes as Parquet: one row per exchange record."""
    paths = [str(s) for s in SAMPLES]
    got = on_dask(client, paths)
    from analyzer.reports import parquet

    parquet.write(got, tmp_path / "t")
    frame = pd.read_parquet(tmp_path / "t" / "exchange.parquet")
    exchanges = [r for r in got if r["type"] == "exchange"]
    assert len(frame) == len(exchanges)
    assert list(frame["latency_ms"].fillna(-1)) == [
        -1 if r["latency_ms"] is None else r["latency_ms"] for r in exchanges
    ]
    assert list(frame["association"]) == [r["association"] for r in exchanges]
    assert (
        pq.read_schema(tmp_path / "t" / "exchange.parquet").names
        == parquet.SCHEMAS["exchange"].names
    )
