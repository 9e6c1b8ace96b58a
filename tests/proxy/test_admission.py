"""Connections that never send an A-ASSOCIATE-RQ hold no association slot: they wait in a
place of their own, bounded in number (globally and per address) and in time, and a real
modality still associates however many of them there are."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from analyzer.sources.proxy.admission import Admission
from analyzer.sources.proxy.config import Limits
from tests.peers import Net, dcmtk, running

from .harness import PROXY_PORT, UPSTREAM_PORT, proxy, script, storescp


def test_admission_makes_room_from_the_longest_waiting() -> None:
    adm: Admission[str] = Admission(Limits(max_associations=2, max_pending=3, max_pending_per_ip=2))
    assert adm.arrive("a1", "10.0.0.1") == []
    assert adm.arrive("a2", "10.0.0.1") == []
    assert adm.arrive("a3", "10.0.0.1") == ["a1"]  # per address: its own oldest goes
    assert adm.arrive("b1", "10.0.0.2") == []
    assert adm.arrive("c1", "10.0.0.3") == ["a2"]  # globally: the oldest of all goes
    assert adm.pending == 3
    assert adm.associate("b1") and adm.associate("c1")
    assert not adm.associate("a3")  # two associations already
    assert (adm.pending, adm.associations) == (0, 2)
    adm.leave("b1")
    assert adm.associations == 1
    adm.leave("a3")  # refused: held nothing, frees nothing
    assert adm.associations == 1


def _flood(net: Net, count: int, sources: int, seconds: float) -> subprocess.Popen[str]:
    flood = subprocess.Popen(
        net.wrap(
            script("flood.py", "127.0.0.1", str(PROXY_PORT), str(count), str(sources), str(seconds))
        ),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert flood.stdout is not None
    assert flood.stdout.readline().strip() == f"open {count}"
    return flood


@pytest.mark.peers
@pytest.mark.parametrize("sources", [1, 50], ids=["same-address", "many-addresses"])
def test_silent_connections_do_not_lock_out_a_modality(
    net: Net, tmp_path: Path, sources: int
) -> None:
    with (
        running(net, storescp(tmp_path, UPSTREAM_PORT), tmp_path / "scp.log", port=UPSTREAM_PORT),
        proxy(net, tmp_path, "--upstream", f"127.0.0.1:{UPSTREAM_PORT}", "-q") as px,
    ):
        # 300 connections that send nothing (default limits: 200 associations, 100 pending,
        # 10 pending per address), from the modality's own address or from 50 others.
        flood = _flood(net, 300, sources, 30)
        started = time.monotonic()
        echo = net.run([dcmtk("echoscu"), "-aet", "MODALITY", "127.0.0.1", str(PROXY_PORT)])
        assert echo.returncode == 0, echo.stdout + echo.stderr
        assert time.monotonic() - started < 10
        flood.kill()
        flood.wait(10)
        assert px.stop() == 0
    recs = [r for r in px.records() if r["type"] == "association"]
    (modality,) = [r for r in recs if r["calling_ae"] == "MODALITY"]
    assert modality["outcome"] == "released" and modality["reject"] is None
    assert not any(r["reject"] for r in recs)  # nobody got RJ 2/3/2


@pytest.mark.peers
def test_silent_connections_time_out_and_free_their_places(net: Net, tmp_path: Path) -> None:
    with (
        running(net, storescp(tmp_path, UPSTREAM_PORT), tmp_path / "scp.log", port=UPSTREAM_PORT),
        proxy(
            net,
            tmp_path,
            "--upstream",
            f"127.0.0.1:{UPSTREAM_PORT}",
            "--first-pdu-timeout",
            "2",
            "--max-pending",
            "20",
            "--max-associations",
            "1",
        ) as px,
    ):
        flood = _flood(net, 20, 20, 15)
        out, _ = flood.communicate(timeout=30)
        assert out.strip() == "closed 20"  # every one closed by the first-PDU timeout
        px.wait_log(r"no A-ASSOCIATE-RQ within 2 s; closed")
        assert px.log().count("no A-ASSOCIATE-RQ within 2 s; closed") == 20
        # One slot, and it is free: the silent crowd never held it.
        echo = net.run([dcmtk("echoscu"), "127.0.0.1", str(PROXY_PORT)])
        assert echo.returncode == 0, echo.stdout + echo.stderr
        assert px.stop() == 0
