"""``run_live`` in-process, filling a store from a background thread (the terminal UI's
way), inside a namespace with DCMTK traffic; see scripts/run_live_thread.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.peers import Net, dcmtk, running

from .harness import script

pytestmark = pytest.mark.peers


def test_run_live_in_a_thread_stops_on_event_and_on_progress(net: Net, tmp_path: Path) -> None:
    port = 11112
    cap = tmp_path / "thread.pcapng"
    scp = [dcmtk("storescp"), "-aet", "ARCHIVE", str(port)]
    with running(net, scp, tmp_path / "scp.log", port):
        out = net.run(script("run_live_thread.py", dcmtk("echoscu"), str(port), str(cap)), 90)
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout.splitlines()[-1])

    event = result["event"]
    assert event["echo"] == 0
    assert event["released_seen_live"]  # in the store while the capture was still running
    assert event["listener_threads"] == ["ingest"]  # listeners run in the feeding thread only
    assert event["stop_seconds"] < 10
    assert event["finished"] and event["stopped"] and event["error"] is None
    assert event["outcomes"] == ["released"]
    assert event["files"] == [str(cap)] and cap.stat().st_size > 0
    assert event["packets"] > 0

    progress = result["progress"]
    assert progress["echo"] == 0
    assert progress["raised"] == "Cancelled"  # raised again once the store was finished
    assert progress["progress_calls"] >= 1
    assert progress["finished"] and progress["stopped"] and progress["error"] is None
    assert progress["outcomes"] == ["released"]
