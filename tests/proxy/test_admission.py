"""Connections that never send an A-ASSOCIATE-RQ hold no association slot: they wait in a
place of their own, bounded in number (globally and per address) and in time, and a real
modality still associates however many of them there are."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from analyzer.sources.proxy.admission import HARD_LIMIT, Admission
from analyzer.sources.proxy.config import Limits
from tests.peers import Net, dcmtk, running

from .harness import PROXY_PORT, UPSTREAM_PORT, proxy, script, storescp


def test_admission_closes_the_longest_waiting_past_the_grace() -> None:
    limits = Limits(max_associations=1, max_pending=4, max_pending_per_ip=2)
    adm: Admission[str] = Admission(limits, grace=2.0)
    for who, ip, now in [("a1", "A", 0.0), ("a2", "A", 1.0), ("b1", "B", 2.0)]:
        assert adm.arrive(who, ip, now)
    assert not adm.over
    assert adm.arrive("a3", "A", 3.0)  # over the per-address limit
    assert adm.excess(3.5) == (["a1"], None)  # the longest waiting of that address goes
    assert adm.arrive("a4", "A", 4.0)
    assert adm.excess(4.1) == (["a2"], None)
    assert adm.arrive("a5", "A", 4.2)  # over again, but a3 and a4 are within their grace
    assert adm.excess(4.3) == ([], 5.0)
    assert adm.associate("a3")  # a3's A-ASSOCIATE-RQ came: it no longer waits
    assert not adm.over and adm.excess(4.4) == ([], None)
    assert adm.arrive("c1", "C", 6.0) and adm.arrive("d1", "D", 6.0)  # five pending
    assert adm.excess(6.5) == (["b1"], None)  # over the global limit: the oldest goes
    assert not adm.associate("c1")  # one association at most
    adm.leave("a3")
    assert adm.associations == 0 and adm.associate("d1")


def test_admission_turns_away_far_too_many() -> None:
    adm: Admission[int] = Admission(Limits(max_pending=2, max_pending_per_ip=1))
    assert all(adm.arrive(n, f"10.0.0.{n}", 0.0) for n in range(HARD_LIMIT * 2))
    assert not adm.arrive(99, "10.0.0.99", 0.0)


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
        px.wait_log(r"no A-ASSOCIATE-RQ within 2 s; closed", count=20)
        assert px.log().count("no A-ASSOCIATE-RQ within 2 s; closed") == 20
        # One slot, and it is free: the silent crowd never held it.
        echo = net.run([dcmtk("echoscu"), "127.0.0.1", str(PROXY_PORT)])
        assert echo.returncode == 0, echo.stdout + echo.stderr
        assert px.stop() == 0
