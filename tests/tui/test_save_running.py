"""Saving associations as pcapng from a source that is still running, in a real terminal,
between real DCMTK peers in a network namespace: ``proxy --tui --pcap`` (the frames read
back from the proxy's pcapng) and ``live --tui --write`` (from the capture it keeps).

The saved file holds the association's frames and nothing else (tshark says so), and
``dicomtap analyze`` on it gives the records the UI saved as JSON Lines for the same
association. Every wait is bounded; tmux sessions, peers and namespaces are stopped.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.objects import write_study
from tests.peers import Net, dcmtk, running, tool

from .test_smoke_tmux import WAIT, Terminal, command, terminal, toasts

__all__ = ["terminal"]  # the fixture, shared with the other tmux tests

pytestmark = pytest.mark.peers

INJECTED = "written by dicomtap proxy"
#: Keys whose values depend on where the records were read from: numbers given in the
#: order of a capture (association ids, frame numbers), the sources read (and the summary
#: records, about the source as a whole, are left out).
_NUMBERING = {"id", "association", "frames", "frame", "sources", "generator"}


def _comparable(records: list[dict[str, Any]]) -> list[Any]:
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: strip(v)
                for k, v in value.items()
                if k not in _NUMBERING and not k.endswith("_frame")
            }
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return [strip(r) for r in records if r.get("type") not in ("header", "summary")]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _analyze(path: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [*command(), "analyze", str(path), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def _tshark(path: Path, *args: str) -> list[list[str]]:
    out = subprocess.run(
        [tool("tshark"), "-r", str(path), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return [line.split("\t") for line in out.stdout.splitlines()]


def _store_twice(net: Net, port: int, files: list[Path]) -> None:
    """Two associations from storescu: MODALITY sends every file, SCANNER the first."""
    for calling, sent in (("MODALITY", files), ("SCANNER", files[:1])):
        argv = [dcmtk("storescu"), "-aet", calling, "-aec", "PACS", "127.0.0.1", str(port)]
        store = net.run([*argv, *map(str, sent)])
        assert store.returncode == 0, store.stderr


def _save(t: Terminal, key: str, expression: str, path: Path) -> None:
    """Filter the list with ``expression``, then save with ``key`` (w: what is shown)."""
    t.keys("/", "C-a", "C-k")
    t.type(expression)
    t.keys("Enter")
    t.wait(lambda s: "1 of " in s and " shown" in s, f"the list filtered by {expression}")
    t.keys(key)
    t.wait(lambda s: "enter: save" in s, "the save box")
    t.keys("C-a", "C-k")
    t.type(str(path))
    t.keys("Enter")
    t.wait(
        lambda s: "saved 1 association" in toasts(s) and str(path) in toasts(s).replace(" ", ""),
        "saved",
    )


def _save_both(t: Terminal, expression: str, stem: Path) -> None:
    """What matches ``expression`` saved as pcapng (frames) and JSON Lines (the UI's
    records)."""
    for suffix in (".pcapng", ".jsonl"):
        _save(t, "w", expression, stem.with_suffix(suffix))


def _check_saved(pcap: Path, records: Path, capture: Path, server_port: int) -> dict[str, Any]:
    """The saved pcapng holds exactly the frames of the association the saved records
    describe, as ``capture`` holds them; analyze reads the same records from it."""
    saved = _jsonl(records)
    (assoc,) = [r for r in saved if r["type"] == "association"]
    ports = {assoc["client"]["port"], assoc["server"]["port"]}
    assert assoc["server"]["port"] == server_port
    rows = _tshark(pcap, "-T", "fields", "-e", "tcp.srcport", "-e", "tcp.dstport")
    assert rows and all({int(a), int(b)} == ports for a, b in rows), rows
    same = f"tcp.port=={min(ports)} && tcp.port=={max(ports)}"
    whole = _tshark(capture, "-Y", same, "-T", "fields", "-e", "frame.time_epoch", "-e", "tcp.len")
    kept = _tshark(pcap, "-T", "fields", "-e", "frame.time_epoch", "-e", "tcp.len")
    assert kept == whole  # every frame of the association, in order, with its time and size
    again = _analyze(pcap)
    assert [r["type"] for r in again].count("association") == 1
    assert _comparable(again) == _comparable(saved)
    return assoc


def test_proxy_tui_saves_associations_as_pcapng_from_its_pcap(
    terminal: Callable[[list[str]], Terminal], tmp_path: Path
) -> None:
    """While the proxy relays, an association saved as pcapng holds its client-leg frames
    read back from --pcap; one the proxy refused keeps the mark of what the proxy wrote."""
    relay = tmp_path / "relay.pcapng"
    out = tmp_path / "out"
    out.mkdir()
    files = write_study(tmp_path / "in", 2)
    with Net() as net:
        listen, upstream = net.port(11104), net.port(11105)
        scp = [dcmtk("storescp"), "-aet", "PACS", "--ignore", str(upstream)]
        with running(net, scp, tmp_path / "scp.log", upstream):
            t = terminal(
                net.wrap(
                    [
                        *command(),
                        "proxy",
                        "--listen",
                        f"127.0.0.1:{listen}",
                        "--upstream",
                        f"127.0.0.1:{upstream}",
                        "--allow-calling-ae",
                        "MODALITY",
                        "--allow-calling-ae",
                        "SCANNER",
                        "--pcap",
                        str(relay),
                        "--tui",
                    ]
                )
            )
            t.wait(lambda s: "live" in s and "0 associations" in s, "the empty live list")
            deadline = time.monotonic() + WAIT
            while not net.listening(listen):
                assert time.monotonic() < deadline, t.screen()
                time.sleep(0.1)
            _store_twice(net, listen, files)
            refused = net.run([dcmtk("echoscu"), "-aet", "INTRUDER", "127.0.0.1", str(listen)])
            assert refused.returncode != 0
            t.wait(lambda s: "3 associations" in s and "INTRUDER" in s, "three associations")

            _save_both(t, "calling=SCANNER", out / "scanner")
            _save_both(t, "calling=INTRUDER", out / "refused")
            t.keys("q", "y")
            t.wait(lambda s: "EXITED 0" in s, "the proxy to shut down")

    scanner = _check_saved(out / "scanner.pcapng", out / "scanner.jsonl", relay, listen)
    assert scanner["calling_ae"] == "SCANNER" and scanner["outcome"] == "released"
    refused_assoc = _check_saved(out / "refused.pcapng", out / "refused.jsonl", relay, listen)
    # the proxy's A-ASSOCIATE-RJ is a third party's: the saved file still says so
    assert refused_assoc["outcome"] == "rejected", refused_assoc
    assert refused_assoc["ended_by"] == "third-party", refused_assoc
    comments = _tshark(out / "refused.pcapng", "-T", "fields", "-e", "frame.comment")
    assert any(INJECTED in row[0] for row in comments), comments
    assert all(f"{relay.name} frame " in row[0] for row in comments), comments


def test_live_tui_saves_associations_as_pcapng_from_its_capture(
    terminal: Callable[[list[str]], Terminal], tmp_path: Path
) -> None:
    """While ``live --tui --write`` captures, an association saved as pcapng holds its
    frames read back from the capture it keeps, and nothing else."""
    tool("dumpcap")
    cap = tmp_path / "live.pcapng"
    out = tmp_path / "out"
    out.mkdir()
    files = write_study(tmp_path / "in", 2)
    with Net() as net:
        if net.name is None:
            pytest.skip("a live capture on the host's loopback would hold other traffic")
        port = net.port(11106)
        scp = [dcmtk("storescp"), "-aet", "PACS", "--ignore", str(port)]
        with running(net, scp, tmp_path / "scp.log", port):
            t = terminal(net.wrap([*command(), "live", "-i", "lo", "--tui", "-w", str(cap)]))
            t.wait(lambda s: "live: lo (tcp)" in s, "the capture")
            _store_twice(net, port, files)
            t.wait(lambda s: "2 associations" in s and "SCANNER" in s, "two associations")
            _save_both(t, "calling=SCANNER", out / "scanner")
            t.keys("q", "y")
            t.wait(lambda s: "EXITED 0" in s, "the capture to stop")

    scanner = _check_saved(out / "scanner.pcapng", out / "scanner.jsonl", cap, port)
    assert scanner["calling_ae"] == "SCANNER" and scanner["outcome"] == "released"
