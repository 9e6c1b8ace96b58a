"""Real peers through the proxy: the bytes arrive unchanged and the records are right.

DCMTK storescu → proxy → storescp (+B writes data sets exactly as received), echoscu, and
the outputs: the proxy's JSON Lines log, its pcapng read back by ``dicomtap analyze`` (both
legs, the client leg equal to the log) and by tshark's DICOM dissector.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.objects import big_image, write_study
from tests.peers import Net, analyze, dcmtk, running, tool

from .harness import (
    PROXY_PORT,
    UPSTREAM_PORT,
    dataset_digest,
    leg_records,
    proxy,
    script,
    storescp,
)

pytestmark = pytest.mark.peers


def test_storescu_through_proxy_bytes_and_records(net: Net, tmp_path: Path) -> None:
    files = write_study(tmp_path / "sent", 3, size=128)
    files.append(big_image(tmp_path / "sent" / "big.dcm", 3_000_000))
    scp = storescp(tmp_path, UPSTREAM_PORT, "+B")
    with (
        running(net, scp, tmp_path / "storescp.log", port=UPSTREAM_PORT),
        proxy(net, tmp_path, "--upstream", f"127.0.0.1:{UPSTREAM_PORT}") as px,
    ):
        result = net.run(
            [dcmtk("storescu"), "-aet", "MODALITY", "-aec", "PACS", "127.0.0.1", str(PROXY_PORT)]
            + [str(f) for f in files],
        )
        assert result.returncode == 0, result.stderr
        px.wait_log(r"#1 released after .*: 4 exchanges")
        assert px.stop() == 0
    received = sorted((tmp_path / "received").iterdir())
    assert len(received) == 4
    assert sorted(dataset_digest(f) for f in files) == sorted(dataset_digest(f) for f in received)

    log = px.log()
    assert "started MODALITY → PACS" in log and "accepted" in log
    assert log.count("C-STORE CT Image Storage") == 4

    recs = px.records()
    assert recs[0]["type"] == "header" and recs[-1]["type"] == "summary"
    assocs = [r for r in recs if r["type"] == "association"]
    assert len(assocs) == 1
    a = assocs[0]
    assert (a["calling_ae"], a["called_ae"], a["outcome"]) == ("MODALITY", "PACS", "released")
    assert a["server"]["port"] == PROXY_PORT
    exchanges = [r for r in recs if r["type"] == "exchange"]
    assert [e["command"] for e in exchanges] == ["C-STORE"] * 4
    assert all(e["status"] == 0 and e["association"] == a["id"] for e in exchanges)
    assert max(e["request_dataset_bytes"] for e in exchanges) > 2_900_000

    # The pcapng: both legs, the client leg equal to the proxy's own records.
    from_pcap = analyze([px.pcap])
    client_leg = leg_records(from_pcap, PROXY_PORT)
    upstream_leg = leg_records(from_pcap, UPSTREAM_PORT)
    assert client_leg == leg_records(recs)
    assert len([r for r in upstream_leg if r["type"] == "association"]) == 1
    up = upstream_leg[0]
    assert (up["calling_ae"], up["called_ae"], up["outcome"]) == ("MODALITY", "PACS", "released")
    assert [r["status"] for r in upstream_leg if r["type"] == "exchange"] == [0] * 4

    # tshark's own DICOM dissector reads it too.
    shown = subprocess.run(
        [
            tool("tshark"),
            "-r",
            str(px.pcap),
            "-d",
            f"tcp.port=={PROXY_PORT},dicom",
            "-d",
            f"tcp.port=={UPSTREAM_PORT},dicom",
            "-Y",
            "dicom",
            "-T",
            "fields",
            "-e",
            "frame.interface_id",
            "-e",
            "_ws.col.Info",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.splitlines()
    requests = [line for line in shown if "A-ASSOCIATE request" in line]
    assert sorted(line.split("\t")[0] for line in requests) == ["0", "1"]
    assert sum("C-STORE-RSP" in line for line in shown) == 8


def test_echoscu_and_routing_by_called_ae(net: Net, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        running(net, storescp(tmp_path / "a", 11120), tmp_path / "a.log", port=11120),
        running(net, storescp(tmp_path / "b", 11121), tmp_path / "b.log", port=11121),
        proxy(
            net,
            tmp_path,
            "--route",
            "ARCHIVE_A=127.0.0.1:11120",
            "--route",
            "ARCHIVE_B=127.0.0.1:11121",
            "--log",
            str(tmp_path / "live.log"),
            "--log-max-size",
            "4000",
        ) as px,
    ):
        for called in ("ARCHIVE_B", "ARCHIVE_A", "ARCHIVE_B"):
            result = net.run([dcmtk("echoscu"), "-aec", called, "127.0.0.1", str(PROXY_PORT)])
            assert result.returncode == 0, result.stderr
        result = net.run([dcmtk("echoscu"), "-aec", "NOWHERE", "127.0.0.1", str(PROXY_PORT)])
        assert result.returncode != 0
        assert "Called AE Title Not Recognized" in result.stdout + result.stderr
        px.wait_log(r"#4 .*rejected")
        assert px.stop() == 0
    log = px.log()
    assert log.count("relaying to 127.0.0.1:11121 (route ARCHIVE_B)") == 2
    assert log.count("relaying to 127.0.0.1:11120 (route ARCHIVE_A)") == 1
    assert "refused ECHOSCU→NOWHERE: no route for the called AE title (RJ 1/1/7)" in log
    # The log size cap: rotated JSON Lines files, each starting with its header.
    files = px.jsonl_files()
    assert len(files) > 1 and all(f.stat().st_size <= 4000 for f in files)
    recs = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert [r["type"] for r in recs].count("header") == len(files)
    recs = [r for r in recs if r["type"] != "header"]
    assert (
        (tmp_path / "live.log").read_text().splitlines()[0].endswith("listening on 127.0.0.1:11112")
    )
    assocs = [r for r in recs if r["type"] == "association"]
    assert [a["outcome"] for a in assocs] == ["released"] * 3 + ["rejected"]
    assert assocs[3]["reject"]["reason"] == 7
    assert [r["command"] for r in recs if r["type"] == "exchange"] == ["C-ECHO"] * 3
    from_pcap = analyze([px.pcap])
    assert leg_records(from_pcap, PROXY_PORT) == leg_records(recs)
    ports = sorted(r["server"]["port"] for r in from_pcap if r["type"] == "association")
    assert ports == sorted([11120, 11121, 11121] + [PROXY_PORT] * 4)


def test_ipv6_listener(net: Net, tmp_path: Path) -> None:
    with (
        running(net, storescp(tmp_path, UPSTREAM_PORT), tmp_path / "scp.log", port=UPSTREAM_PORT),
        proxy(net, tmp_path, "--upstream", f"127.0.0.1:{UPSTREAM_PORT}", host="::1") as px,
    ):
        # DCMTK 3.6.7's echoscu cannot call an IPv6 address: a raw client does the C-ECHO.
        result = net.run(script("rawclient.py", "hold", "::1", str(PROXY_PORT), "0"))
        assert result.stdout.splitlines() == ["got 2", "got 4", "got 6", "released"], result
        px.wait_log(r"#1 released")
        assert px.stop() == 0
    (a,) = [r for r in px.records() if r["type"] == "association"]
    assert a["client"]["ip"] == "::1" and a["server"] == {"ip": "::1", "port": PROXY_PORT}
    from_pcap = analyze([px.pcap])
    assert leg_records(from_pcap, PROXY_PORT) == leg_records(px.records())
    assert {r["server"]["ip"] for r in from_pcap if r["type"] == "association"} == {
        "::1",
        "127.0.0.1",
    }
