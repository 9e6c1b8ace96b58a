"""Access control, limits and rewrites: refusals answer with the right A-ASSOCIATE-RJ and are
logged; rewrites reach the upstream and are logged; nothing is changed unless asked."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.peers import Net, analyze, dcmtk, running

from .harness import PROXY_PORT, UPSTREAM_PORT, leg_records, proxy, script, storescp

pytestmark = pytest.mark.peers


def _echo(net: Net, calling: str, called: str = "PACS") -> subprocess.CompletedProcess[str]:
    return net.run(
        [dcmtk("echoscu"), "-aet", calling, "-aec", called, "127.0.0.1", str(PROXY_PORT)]
    )


def test_calling_ae_and_ip_allow_lists(net: Net, tmp_path: Path) -> None:
    with (
        running(net, storescp(tmp_path, UPSTREAM_PORT), tmp_path / "scp.log", port=UPSTREAM_PORT),
        proxy(
            net,
            tmp_path,
            "--upstream",
            f"127.0.0.1:{UPSTREAM_PORT}",
            "--allow-calling-ae",
            "GOOD",
            "--allow-ip",
            "127.0.0.0/8",
        ) as px,
    ):
        assert _echo(net, "GOOD").returncode == 0
        bad = _echo(net, "INTRUDER")
        assert bad.returncode != 0
        assert "Calling AE Title Not Recognized" in bad.stdout + bad.stderr
        px.wait_log(r"#2 refused INTRUDER→PACS: calling AE title not recognized \(RJ 1/1/3\)")
        assert px.stop() == 0
    assocs = [r for r in px.records() if r["type"] == "association"]
    assert [a["outcome"] for a in assocs] == ["released", "rejected"]
    assert (
        assocs[1]["reject"]["result"],
        assocs[1]["reject"]["source"],
        assocs[1]["reject"]["reason"],
    ) == (1, 1, 3)
    assert "#2 relaying" not in px.log()  # the upstream never heard of the intruder

    for policy, expect in (("reject", "RJ 1/1/1"), ("close", "closed")):
        port = PROXY_PORT + (2 if policy == "reject" else 3)
        with proxy(
            net,
            tmp_path,
            "--upstream",
            f"127.0.0.1:{UPSTREAM_PORT}",
            "--allow-ip",
            "10.99.0.0/16",
            "--on-ip-refused",
            policy,
            port=port,
        ) as px:
            result = net.run([dcmtk("echoscu"), "127.0.0.1", str(port)])
            assert result.returncode != 0
            if policy == "reject":
                assert "Rejected Permanent" in result.stdout + result.stderr
            px.wait_log(rf"#1 refused.*client address not allowed.*\({re.escape(expect)}\)")


def test_association_limit(net: Net, tmp_path: Path) -> None:
    with (
        running(net, storescp(tmp_path, UPSTREAM_PORT), tmp_path / "scp.log", port=UPSTREAM_PORT),
        proxy(
            net, tmp_path, "--upstream", f"127.0.0.1:{UPSTREAM_PORT}", "--max-associations", "1"
        ) as px,
    ):
        holder = subprocess.Popen(
            net.wrap(script("rawclient.py", "hold", "127.0.0.1", str(PROXY_PORT), "3")),
            stdout=subprocess.PIPE,
            text=True,
        )
        px.wait_log(r"#1 accepted 1 of 1 context")
        over = _echo(net, "SECOND")
        assert over.returncode != 0
        assert "Local Limit Exceeded" in over.stdout + over.stderr
        px.wait_log(r"#2 refused SECOND→PACS: too many concurrent associations \(RJ 2/3/2\)")
        out, _ = holder.communicate(timeout=30)
        assert out.splitlines() == ["got 2", "got 4", "got 6", "released"]
        deadline = time.monotonic() + 10
        while "#1 released" not in px.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _echo(net, "THIRD").returncode == 0  # the slot is free again
        assert px.stop() == 0
    rejected = [r for r in px.records() if r["type"] == "association" and r["reject"]]
    assert [(r["calling_ae"], r["reject"]["reason"]) for r in rejected] == [("SECOND", 2)]


def test_rewrites_reach_the_upstream(net: Net, tmp_path: Path) -> None:
    scp = [*storescp(tmp_path, UPSTREAM_PORT), "-d"]
    with (
        running(net, scp, tmp_path / "scp.log", port=UPSTREAM_PORT) as upstream,
        proxy(
            net,
            tmp_path,
            "--upstream",
            f"127.0.0.1:{UPSTREAM_PORT}",
            "--rewrite-calling-ae",
            "MODALITY=GATEWAY",
            "--rewrite-called-ae",
            "FRONT=ARCHIVE",
            "--clamp-max-pdu",
            "8192",
        ) as px,
    ):
        result = net.run(
            [
                dcmtk("echoscu"),
                "-d",
                "-aet",
                "MODALITY",
                "-aec",
                "FRONT",
                "127.0.0.1",
                str(PROXY_PORT),
            ],
        )
        assert result.returncode == 0, result.stderr
        px.wait_log(r"#1 released")
        seen = upstream.output()
        assert px.stop() == 0
    # storescp's debug dump of the A-ASSOCIATE-RQ it received.
    assert re.search(r"Calling Application Name:\s+GATEWAY", seen), seen
    assert re.search(r"Called Application Name:\s+ARCHIVE", seen), seen
    assert re.search(r"Their Max PDU Receive Size:\s+8192", seen), seen
    # The client got its own titles back and the clamped Maximum Length.
    assert re.search(r"Their Max PDU Receive Size:\s+8192", result.stdout + result.stderr)
    log = px.log()
    for change in (
        "calling AE MODALITY → GATEWAY",
        "called AE FRONT → ARCHIVE",
        "A-ASSOCIATE-RQ max PDU 16384 → 8192",
        "AC calling AE GATEWAY → MODALITY",
        "AC called AE ARCHIVE → FRONT",
    ):
        assert f"#1 rewrite: {change}" in log, log
    assert re.search(r"#1 rewrite: A-ASSOCIATE-AC max PDU \d+ → 8192", log)
    (client,) = [r for r in px.records() if r["type"] == "association"]
    assert (client["calling_ae"], client["called_ae"]) == ("MODALITY", "FRONT")
    assert client["max_pdu"]["acceptor"] == 8192
    from_pcap = analyze([px.pcap])
    assert leg_records(from_pcap, PROXY_PORT) == leg_records(px.records())
    (up,) = [
        r for r in from_pcap if r["type"] == "association" and r["server"]["port"] == UPSTREAM_PORT
    ]
    assert (up["calling_ae"], up["called_ae"], up["max_pdu"]["requestor"]) == (
        "GATEWAY",
        "ARCHIVE",
        8192,
    )
    assert up["max_pdu"]["acceptor"] != 8192


def test_no_rewrite_by_default(net: Net, tmp_path: Path) -> None:
    """Byte-transparent by default: the upstream leg carries exactly the client leg's bytes."""
    with (
        running(net, storescp(tmp_path, UPSTREAM_PORT), tmp_path / "scp.log", port=UPSTREAM_PORT),
        proxy(net, tmp_path, "--upstream", f"127.0.0.1:{UPSTREAM_PORT}") as px,
    ):
        assert _echo(net, "MODALITY").returncode == 0
        px.wait_log(r"#1 released")
        assert px.stop() == 0
    assert "rewrite" not in px.log()
    from_pcap = analyze([px.pcap])
    legs = [r for r in from_pcap if r["type"] == "association"]
    assert len(legs) == 2
    for key in ("calling_ae_raw", "called_ae_raw", "contexts", "user_information", "pdus"):
        assert legs[0][key] == legs[1][key], key
