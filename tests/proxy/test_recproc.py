"""Recording in a process of its own: the pipe's backlog is bounded (the relay waits for a
recording process that cannot keep up), boundary questions are answered in order, and the
recording process ends with the proxy, however the proxy ends, after writing what it had."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from analyzer.sources.proxy import recproc, recwire
from analyzer.sources.proxy.config import Address, Listener, OutputConfig, ProxyConfig
from analyzer.sources.proxy.recproc import ProcessRecording
from analyzer.sources.proxy.server import RECORDING_ENV
from tests.factories import associate_rq
from tests.peers import Net, dcmtk, running

from .harness import PROXY_PORT, UPSTREAM_PORT, proxy, storescp

_PROCESS = {RECORDING_ENV: "process"}  # whatever the environment of the run says


def _config(tmp: Path) -> ProxyConfig:
    output = OutputConfig(jsonl=str(tmp / "rec.jsonl"), pcap=str(tmp / "rec.pcapng"), quiet=True)
    return ProxyConfig(listeners=(Listener(Address("127.0.0.1", 104)),), output=output)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_recording_process_that_cannot_keep_up_makes_the_relay_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recording process is stopped: the messages wait in the pipe, then in the parent up
    to the backlog limit, then the relay waits (memory flat) until it goes on; every byte is
    recorded in the end."""
    limit = 4 << 20
    monkeypatch.setattr(recproc, "BACKLOG_LIMIT", limit)
    chunk = os.urandom(256 << 10)
    count = 64  # 16 MiB: four times the limit, sixteen times the pipe

    async def main() -> tuple[int, int, float, int]:
        loop = asyncio.get_running_loop()
        rec = await ProcessRecording.start(
            _config(tmp_path), loop, quiet_out=True, generator="test"
        )
        child = rec._proc.pid
        os.kill(child, signal.SIGSTOP)
        resumed = threading.Timer(0.5, os.kill, (child, signal.SIGCONT))
        resumed.start()
        record = rec.connection(1, ("127.0.0.1", 40000), ("127.0.0.1", 104), time.time_ns())
        most = 0
        start = time.monotonic()
        for _ in range(count):
            record.forwarded(False, time.time_ns(), chunk, chunk)
            rec.drain()  # the end of a loop iteration
            most = max(most, rec.backlog)
        waited = time.monotonic() - start
        record.ended(time.time_ns())
        await rec.finish()
        resumed.join()
        return most, rec.waited, waited, rec._proc.returncode

    most, times, waited, status = asyncio.run(main())
    assert most <= limit + (300 << 10)  # the limit, and at most one batch over it
    assert times >= 1 and waited >= 0.4  # the relay waited for the stopped process
    assert status == 0
    # Recorded all the same: 16 MiB to the upstream on the upstream leg, 65,000 bytes a packet.
    assert (tmp_path / "rec.pcapng").stat().st_size > count * len(chunk)


def test_boundary_questions_are_answered_after_what_was_sent_before(tmp_path: Path) -> None:
    async def main() -> tuple[bool, bool, bool]:
        loop = asyncio.get_running_loop()
        rec = await ProcessRecording.start(
            _config(tmp_path), loop, quiet_out=True, generator="test"
        )
        record = rec.connection(1, ("127.0.0.1", 40000), ("127.0.0.1", 104), time.time_ns())
        rq = associate_rq(calling="MODALITY", called="PACS")
        record.client_data(time.time_ns(), rq[:10])
        inside = record.at_boundary(False)  # from the client: inside its first PDU
        record.client_data(time.time_ns(), rq[10:])
        after = record.at_boundary(False)
        fresh = rec.connection(2, ("127.0.0.1", 40001), ("127.0.0.1", 104), 0).at_boundary(True)
        await rec.finish()
        return inside, after, fresh

    inside, after, fresh = asyncio.run(main())
    assert (inside, after, fresh) == (False, True, False)  # nothing framed yet: not known


@pytest.mark.peers
def test_the_recording_process_ends_with_a_killed_proxy(net: Net, tmp_path: Path) -> None:
    """SIGKILL leaves the proxy no time for anything: its recording process sees the end of
    its pipe, finishes the records (the JSON Lines summary) and exits."""
    with proxy(net, tmp_path, "--upstream", f"127.0.0.1:{UPSTREAM_PORT}", env=_PROCESS) as px:
        pid = px.proc.popen.pid
        children = _children(pid)
        assert len(children) == 1, children
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while _alive(children[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(children[0]), "the recording process outlived the proxy"
    records = [json.loads(line) for line in px.jsonl.read_text().splitlines()]
    assert records[0]["type"] == "header" and records[-1]["type"] == "summary"


@pytest.mark.peers
def test_relaying_goes_on_when_the_recording_process_dies(net: Net, tmp_path: Path) -> None:
    """The recording process is killed: the proxy says so once on stderr, relays on, and
    exits with status 1."""
    scp = storescp(tmp_path, UPSTREAM_PORT)
    with (
        running(net, scp, tmp_path / "scp.log", port=UPSTREAM_PORT),
        proxy(net, tmp_path, "--upstream", f"127.0.0.1:{UPSTREAM_PORT}", env=_PROCESS) as px,
    ):
        echo = [dcmtk("echoscu"), "127.0.0.1", str(PROXY_PORT)]
        assert net.run(echo).returncode == 0
        px.wait_log(r"C-ECHO .* Success")
        (child,) = _children(px.proc.popen.pid)
        os.kill(child, signal.SIGKILL)
        for _ in range(3):
            result = net.run(echo)
            assert result.returncode == 0, result.stderr
        px.wait_log(r"recording stopped \(the recording process exited with status -9\)")
        assert px.stop() == 1  # the outputs miss what came after: the exit status says so
    assert len(re.findall("recording stopped", px.log())) == 1


def test_frames_carry_relayed_bytes_beside_the_pickle_unchanged() -> None:
    """Relayed bytes of every size, the same bytes sent twice, and frames split anyhow by the
    pipe reach the recording process as the relay had them, in order."""
    sizes = [0, 1, recwire.OUT_OF_BAND - 1, recwire.OUT_OF_BAND, 70_000, 300_000, 2_000_000]
    payloads = [os.urandom(n) for n in sizes]
    batches: list[list[tuple[Any, ...]]] = [
        [(recwire.Op.CLIENT_DATA, 7, 123, recwire.payload(p))] for p in payloads
    ]
    same = payloads[5]
    batches.append([(recwire.Op.FORWARDED, 7, True, 9, recwire.payload(same), recwire.SAME)])
    r, w = os.pipe()

    def write() -> None:
        for batch in batches:
            for piece in recwire.frame(batch):
                # a few bytes at a time first: frames and payloads cut at any point
                head = min(len(piece), 40)
                for i in range(0, head, 7):
                    os.write(w, piece[i : min(i + 7, head)])
                recwire.write_all(w, piece[head:])
        os.close(w)

    writer = threading.Thread(target=write)
    writer.start()
    got = list(recwire.batches(recwire.Reader(r), lambda now: None, 1.0))
    writer.join()
    os.close(r)
    assert [b[0][3] for b in got[: len(sizes)]] == payloads
    assert all(type(b[0][3]) is bytes for b in got[: len(sizes)])
    assert got[-1][0][4] == same and got[-1][0][5] is recwire.SAME
    assert len(got) == len(batches)


def test_a_frame_cut_short_ends_the_batches_without_an_error() -> None:
    """The proxy killed in the middle of a write: the recording process reads the whole
    frames before it, then the end of the pipe (and goes on to finish its files)."""
    whole = [(recwire.Op.CLIENT_DATA, 1, 5, recwire.payload(os.urandom(5000)))]
    cut = b"".join(recwire.frame([(recwire.Op.CLIENT_DATA, 1, 6, recwire.payload(b"x" * 4000))]))
    for end in (3, recwire.FRAME.size + 2, len(cut) - 1):  # in the head, its lengths, a buffer
        r, w = os.pipe()
        for piece in recwire.frame(whole):
            recwire.write_all(w, piece)
        recwire.write_all(w, cut[:end])
        os.close(w)
        got = list(recwire.batches(recwire.Reader(r), lambda now: None, 1.0))
        os.close(r)
        assert got == [whole_as_read(whole)], end


def whole_as_read(batch: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """A batch as the recording process gets it: relayed bytes as ``bytes``."""
    return [
        tuple(bytes(a.raw()) if isinstance(a, pickle.PickleBuffer) else a for a in m) for m in batch
    ]
