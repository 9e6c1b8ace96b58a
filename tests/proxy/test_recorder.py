"""The recorder runs after relaying, when the relay is quiet: unit tests on a real event loop
with real sockets, and a proxy whose observer is slow relaying a C-ECHO to DCMTK storescp."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from analyzer.sources.proxy.recorder import JOB_BYTES, Recorder
from analyzer.sources.proxy.server import RECORDING_ENV
from tests.peers import Net, running

from .harness import PROXY_PORT, UPSTREAM_PORT, script


def _append(done: list[int], n: int) -> Callable[[], None]:
    return lambda: done.append(n)


def _failed(exc: Exception) -> None:
    raise AssertionError(f"a job failed: {exc}")


async def _until(condition: object, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        await asyncio.sleep(0.001)


def test_without_a_loop_jobs_run_at_once() -> None:
    done: list[int] = []
    rec = Recorder(None, _failed)
    rec.add(lambda: done.append(1), 10)
    assert done == [1] and rec.backlog == 0 and rec.waiting == 0


def test_jobs_wait_for_a_quiet_relay_then_run_in_order() -> None:
    async def main() -> tuple[list[int], list[int]]:
        loop = asyncio.get_running_loop()
        done: list[int] = []
        rec = Recorder(loop, _failed, quiet=0.05, reply_wait=0.05, max_delay=10)
        for n in range(5):  # a busy relay: bytes upstream every millisecond
            rec.add(_append(done, n), 100, reply_due=True)
            await asyncio.sleep(0.001)
        seen_while_busy = list(done)
        await _until(lambda: len(done) == 5)
        return seen_while_busy, done

    busy, done = asyncio.run(main())
    assert busy == []
    assert done == [0, 1, 2, 3, 4]


def _exchanges(rec: Recorder, done: list[int], count: int, pause: float) -> None:
    """``count`` request/answer pairs, the client pausing ``pause`` s after each answer."""
    for n in range(count):
        rec.add(_append(done, 2 * n), 100, reply_due=True)
        rec.add(_append(done, 2 * n + 1), 100)
        time.sleep(pause)


def test_after_an_answer_recording_runs_in_the_pause_of_clients_that_pause() -> None:
    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        done: list[int] = []
        rec = Recorder(loop, _failed, quiet=0.2, reply_wait=0.2, max_delay=10)
        _exchanges(rec, done, 4, 0.003)  # clients that think before the next request
        await asyncio.sleep(0.02)  # far less than the quiet time
        return done

    assert asyncio.run(main()) == list(range(8))


def test_back_to_back_requests_wait_for_a_quiet_moment() -> None:
    async def main() -> tuple[list[int], list[int]]:
        loop = asyncio.get_running_loop()
        done: list[int] = []
        rec = Recorder(loop, _failed, quiet=0.2, reply_wait=0.2, max_delay=10)
        _exchanges(rec, done, 20, 0.0)  # the next request at once, every time
        await asyncio.sleep(0.02)
        early = list(done)
        await _until(lambda: len(done) == 40)
        return early, done

    early, done = asyncio.run(main())
    assert early == [] and done == list(range(40))


def test_a_reply_due_keeps_the_relay_busy_longer() -> None:
    async def main() -> tuple[list[str], list[str]]:
        loop = asyncio.get_running_loop()
        done: list[str] = []
        rec = Recorder(loop, _failed, quiet=0.001, reply_wait=0.05, max_delay=10)
        rec.add(lambda: done.append("request"), 100, reply_due=True)
        await asyncio.sleep(0.02)  # well past the quiet time, within the reply's wait
        early = list(done)
        await _until(lambda: done)
        return early, done

    early, done = asyncio.run(main())
    assert early == [] and done == ["request"]


def _after_a_slow_answer(limit: float) -> tuple[list[str], list[str]]:
    """An upstream that took 0.1 s to answer, then a request: what was recorded 0.15 s after
    it, and in the end."""

    async def main() -> tuple[list[str], list[str]]:
        loop = asyncio.get_running_loop()
        done: list[str] = []
        rec = Recorder(
            loop, _failed, quiet=0.001, reply_wait=0.01, reply_wait_limit=limit, max_delay=10
        )
        rec.add(lambda: done.append("association request"), 100, reply_due=True)
        await asyncio.sleep(0.1)
        rec.add(lambda: done.append("association answer"), 100)
        await _until(lambda: len(done) == 2)
        rec.add(lambda: done.append("request"), 100, reply_due=True)
        await asyncio.sleep(0.15)
        early = list(done)
        await _until(lambda: len(done) == 3)
        return early, done

    return asyncio.run(main())


def test_the_wait_for_a_reply_follows_the_upstreams_time_to_answer() -> None:
    early, done = _after_a_slow_answer(limit=1.0)
    assert early == ["association request", "association answer"]
    assert done == [*early, "request"]


def test_the_wait_for_a_reply_is_bounded() -> None:
    early, done = _after_a_slow_answer(limit=0.05)
    assert early == done == ["association request", "association answer", "request"]


def test_recording_yields_to_a_readable_socket() -> None:
    """Once quiet, recording goes job by job and stops for a socket with data: the data is
    served before the jobs that were still waiting."""

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        order: list[str] = []
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        loop.add_reader(a.fileno(), lambda: order.append(f"read {a.recv(100)!r}"))
        rec = Recorder(loop, _failed, quiet=0.001, max_delay=10)
        try:

            def first() -> None:
                order.append("job 1")
                b.send(b"x")

            rec.add(first)
            rec.add(lambda: order.append("job 2"))
            rec.add(lambda: order.append("job 3"))
            await _until(lambda: len(order) == 4)
        finally:
            loop.remove_reader(a.fileno())
            a.close()
            b.close()
        return order

    assert asyncio.run(main()) == ["job 1", "read b'x'", "job 2", "job 3"]


def test_a_relay_never_quiet_is_recorded_after_the_longest_delay() -> None:
    async def main() -> tuple[list[int], float]:
        loop = asyncio.get_running_loop()
        done: list[int] = []
        rec = Recorder(loop, _failed, quiet=0.05, max_delay=0.02)
        start = loop.time()
        first_done = None
        for n in range(100):  # a job every millisecond: never 50 ms quiet
            rec.add(_append(done, n), 100)
            await asyncio.sleep(0.001)
            if done and first_done is None:
                first_done = loop.time() - start
        assert first_done is not None
        return done, first_done

    done, first = asyncio.run(main())
    assert done and done == list(range(len(done)))
    assert first < 0.08  # not held until the relay is quiet (it never was)


def test_a_bulk_transfer_is_recorded_without_waiting_for_a_quiet_moment() -> None:
    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        done: list[int] = []
        rec = Recorder(loop, _failed, overdue_bytes=1 << 20, quiet=10, reply_wait=10, max_delay=10)
        for n in range(8):  # 2 MiB to the upstream, in 256 KiB chunks
            rec.add(_append(done, n), 256 << 10, reply_due=True)
        await asyncio.sleep(0.02)
        return done

    assert asyncio.run(main()) == list(range(8))


def test_the_backlog_is_bounded_in_bytes_and_jobs() -> None:
    async def main() -> tuple[list[int], int]:
        loop = asyncio.get_running_loop()
        done: list[int] = []
        rec = Recorder(loop, _failed, backlog_limit=10 * JOB_BYTES, max_delay=10)
        for n in range(20):  # jobs holding no relayed bytes still count
            rec.add(_append(done, n))
        return done, rec.waiting

    done, waiting = asyncio.run(main())
    assert done == list(range(len(done))) and len(done) >= 10 and waiting < 10


def test_a_failing_job_does_not_stop_the_others() -> None:
    failures: list[Exception] = []
    done: list[int] = []
    rec = Recorder(None, failures.append)

    def broken() -> None:
        raise ValueError("broken")

    rec.add(broken)
    rec.add(lambda: done.append(2))
    assert done == [2] and [str(e) for e in failures] == ["broken"]


@pytest.mark.peers
@pytest.mark.parametrize("mode", ["thread", "process"])
def test_the_response_is_relayed_before_a_slow_observer_runs(
    net: Net, tmp_path: Path, mode: str
) -> None:
    """Each DIMSE message takes the observer 1 s more; the C-ECHO's round trip through the
    proxy must not wait for it (recording runs once the relay is quiet, or in a process of
    its own), and the exchange is recorded all the same. The upstream is pynetdicom, which
    takes a millisecond or two to answer: a recorder that ran as soon as the request was
    forwarded would be observing it by then."""
    jsonl = tmp_path / "proxy.jsonl"
    argv = script(
        "slowproxy.py",
        "1.0",
        "--listen",
        f"127.0.0.1:{PROXY_PORT}",
        "--upstream",
        f"127.0.0.1:{UPSTREAM_PORT}",
        "--jsonl",
        str(jsonl),
    )
    scp = script("pynetdicom_scp.py", str(UPSTREAM_PORT), str(tmp_path / "scp.txt"))
    with (
        running(net, scp, tmp_path / "scp.log", UPSTREAM_PORT),
        running(
            net,
            argv,
            tmp_path / "proxy.log",
            PROXY_PORT,
            env={RECORDING_ENV: mode},
            stop_timeout=30,
        ) as px,
    ):
        client = script("rawclient.py", "timedecho", "127.0.0.1", str(PROXY_PORT), "3")
        result = net.run(client, timeout=60)
        assert "released" in result.stdout, result.stdout + result.stderr
        rtt = float(re.search(r"rtt ([0-9.]+)", result.stdout).group(1))  # type: ignore[union-attr]
        assert rtt < 500, f"the C-ECHO took {rtt} ms: it waited for the observer"
        assert px.stop() == 0
    log = (tmp_path / "proxy.log").read_text()
    assert "C-ECHO" in log and "released" in log
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["command"] for r in records if r["type"] == "exchange"] == ["C-ECHO"]
