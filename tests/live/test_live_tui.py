"""``dicomtap live --tui`` in a real terminal (tmux), inside a namespace: an association shows
in the UI while the capture runs; quitting stops the capture, prints the summary, and
--fail-on-error gives the exit status."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.peers import Net, dcmtk, dicomtap_argv, running, tool

from .harness import WAIT

pytestmark = pytest.mark.peers


def _pane(session: str) -> str:
    out = subprocess.run(
        ["tmux", "capture-pane", "-p", "-J", "-S", "-60", "-t", session],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return out.stdout


def _until(session: str, condition: Callable[[str], bool], what: str) -> str:
    deadline = time.monotonic() + WAIT
    while True:
        text = _pane(session)
        if condition(text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {WAIT} s:\n{text}")
        time.sleep(0.1)


def test_live_tui_shows_associations_and_quits_with_a_summary(net: Net, tmp_path: Path) -> None:
    tool("tmux")
    port = 4100
    cap = tmp_path / "tui.pcapng"
    session = f"dtlive{os.getpid()}"
    argv = net.wrap(dicomtap_argv("live", "-i", "lo", "--tui", "-w", str(cap), "--fail-on-error"))
    shell = f"TERM=xterm-256color {shlex.join(argv)}; echo EXITED $?; sleep 60"
    refuser = [dcmtk("storescp"), "--refuse", str(port)]
    with running(net, refuser, tmp_path / "refuser.log", port):
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", session, "-x", "110", "-y", "30", shell],
            check=True,
            timeout=10,
        )
        try:
            _until(session, lambda t: "live: lo (tcp)" in t, "terminal UI")
            rejected = net.run([dcmtk("echoscu"), "-aec", "ARCHIVE", "127.0.0.1", str(port)])
            assert rejected.returncode != 0
            _until(session, lambda t: bool(re.search(r"ECHOSCU → ARCHIVE\s+rejected", t)), "row")
            subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True, timeout=10)
            text = _until(session, lambda t: "EXITED" in t, "exit")
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    assert "Verdict: 1 of 1 association failed: association rejected (1)." in text
    assert f"Capture kept in {cap}." in text
    assert "EXITED 1" in text, text  # --fail-on-error: the rejection is an error finding
    assert cap.stat().st_size > 0
