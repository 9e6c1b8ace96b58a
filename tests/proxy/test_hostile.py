"""Hostile openings: whatever a client sends first that is not an A-ASSOCIATE-RQ never reaches
an upstream (with or without allow lists); an oversized A-ASSOCIATE-RQ is answered with an
A-ASSOCIATE-RJ and never read to its declared end; wire text in the proxy's log is escaped."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from tests import factories as f
from tests.peers import Net, analyze, dcmtk, running

from .harness import PROXY_PORT, UPSTREAM_PORT, proxy, script

pytestmark = pytest.mark.peers

ALLOW = ("--allow-calling-ae", "GOOD", "--allow-ip", "127.0.0.0/8")

#: What a client may open with, and how the proxy's log names it.
OPENINGS = {
    "garbage": (bytes(range(7, 256)) * 64, r"no DICOM PDU \(first bytes 07 08 09"),
    "http": (b"GET / HTTP/1.1\r\nHost: pacs\r\n\r\n", r"an HTTP request \('GET / HTTP/1\.1'\)"),
    "release-first": (f.release_rq() + f.associate_rq(calling="GOOD"), r"an A-RELEASE-RQ before"),
    "p-data-first": (f.echo_rq() + f.associate_rq(calling="GOOD"), r"a P-DATA-TF before any"),
    "empty-rq": (b"\x01\x00\x00\x00\x00\x00", r"an A-ASSOCIATE-RQ header declaring 0 bytes"),
    "partial-rq": (f.associate_rq(calling="GOOD")[:40], r"client closed before a whole"),
}


def _sink_saw(sink: Path) -> list[Path]:
    """What the upstream (a raw TCP sink) received: one file per connection, even empty."""
    return sorted(sink.glob("*")) if sink.exists() else []


@pytest.mark.parametrize("allow", [True, False], ids=["allow-lists", "no-allow-list"])
def test_nothing_but_an_rq_reaches_the_upstream(net: Net, tmp_path: Path, allow: bool) -> None:
    sink = tmp_path / "sink"
    args = ("--upstream", f"127.0.0.1:{UPSTREAM_PORT}", *(ALLOW if allow else ()))
    with (
        running(
            net,
            script("sink.py", str(UPSTREAM_PORT), str(sink)),
            tmp_path / "sink.log",
            port=UPSTREAM_PORT,
        ),
        proxy(net, tmp_path, *args) as px,
    ):
        for n, (name, (data, _)) in enumerate(OPENINGS.items(), 1):
            path = tmp_path / f"{name}.bin"
            path.write_bytes(data)
            result = net.run(
                script("rawclient.py", "opening", "127.0.0.1", str(PROXY_PORT), str(path))
            )
            assert result.stdout.splitlines()[-1:] == ["closed"], (name, result)
            px.wait_log(rf"#{n} .*(closed|reset)")
        # A real TLS client (DCMTK, anonymous TLS) on this plain listener.
        tls = net.run([dcmtk("echoscu"), "+tla", "127.0.0.1", str(PROXY_PORT)])
        assert tls.returncode != 0
        tls_n = len(OPENINGS) + 1
        px.wait_log(rf"#{tls_n} a TLS handshake \(ClientHello\) on a plain DICOM listener")
        assert px.stop() == 0
    assert _sink_saw(sink) == []  # not one connection, not one byte
    log = px.log()
    assert "relaying to" not in log and "cannot relay" not in log
    for n, (name, (_, said)) in enumerate(OPENINGS.items(), 1):
        assert re.search(rf"#{n} {said}", log), (name, log)
    # The records say the same from the proxy's log and from its pcapng.
    recs = [r for r in px.records() if r["type"] == "association"]
    assert {r["outcome"] for r in recs} <= {"never-associated", "rejected", "transport-dropped"}
    assert len(analyze([px.pcap])) > 0


def test_oversized_rq_is_rejected_not_relayed(net: Net, tmp_path: Path) -> None:
    sink = tmp_path / "sink"
    with (
        running(
            net,
            script("sink.py", str(UPSTREAM_PORT), str(sink)),
            tmp_path / "sink.log",
            port=UPSTREAM_PORT,
        ),
        proxy(net, tmp_path, "--upstream", f"127.0.0.1:{UPSTREAM_PORT}") as px,
    ):
        # The header of an A-ASSOCIATE-RQ declaring 4 GB, then as many zeros as the proxy takes
        # in 5 seconds.
        result = net.run(script("rawclient.py", "bigrq", "127.0.0.1", str(PROXY_PORT), "5"))
        lines = result.stdout.splitlines()
        assert "got 3 result 1 source 3 reason 2" in lines, result
        sent = int(lines[-1].split()[1])
        assert sent < 64 << 20  # the proxy stopped reading: not gigabytes
        px.wait_log(
            r"#1 refused: A-ASSOCIATE-RQ too large \(an A-ASSOCIATE-RQ "
            r"declaring 4294967295 bytes, more than the 1048576 any A-ASSOCIATE-RQ needs\) "
            r"\(RJ 1/3/2\)"
        )
        assert px.stop() == 0
    assert _sink_saw(sink) == []
    log = px.log()
    assert "no A-ASSOCIATE-RQ was sent" not in log.split("refused:")[0]
    assert "relaying to" not in log
    # The pcapng holds the header, not the flood after it.
    assert px.pcap.stat().st_size < 1 << 20


def _hostile_rq(calling: bytes, called: bytes) -> bytes:
    rq = bytearray(f.associate_rq(calling="X", called="Y"))
    rq[10:26] = called.ljust(16)
    rq[26:42] = calling.ljust(16)
    return bytes(rq)


def test_wire_text_is_escaped_in_the_log(net: Net, tmp_path: Path) -> None:
    forged = b"\n#7 FORGED\x1b[2J\x07"  # 15 bytes: a fake line, a screen clear, a bell
    title = b"\x1b]0;pwned\x07\r\n#8"
    assert len(forged) <= 16 and len(title) <= 16
    data = tmp_path / "rq.bin"
    data.write_bytes(_hostile_rq(forged, title))
    with (
        running(
            net,
            script("sink.py", str(UPSTREAM_PORT), str(tmp_path / "sink")),
            tmp_path / "sink.log",
            port=UPSTREAM_PORT,
        ),
        proxy(
            net,
            tmp_path,
            "--upstream",
            f"127.0.0.1:{UPSTREAM_PORT}",
            "--allow-calling-ae",
            "GOOD",
            "--rewrite-called-ae",
            "*=ARCHIVE",
            "--log",
            str(tmp_path / "live.log"),
        ) as px,
    ):
        result = net.run(script("rawclient.py", "opening", "127.0.0.1", str(PROXY_PORT), str(data)))
        assert "got 3 result 1 source 1 reason 3" in result.stdout, result
        px.wait_log(r"#1 refused ")
        assert px.stop() == 0
    for text in (px.log(), (tmp_path / "live.log").read_text()):
        assert "\x1b" not in text and "\x07" not in text and "\r" not in text
        assert not re.search(r"^#[78]", text, re.MULTILINE)  # no forged line
        assert r"refused \x0a#7 FORGED\x1b[2J\x07→\x1b]0;pwned\x07\x0d\x0a#8:" in text, text
    # The records keep the titles as they came, escaped by JSON itself.
    (a,) = [r for r in px.records() if r["type"] == "association"]
    assert a["calling_ae"].startswith("\n#7 FORGED\x1b")


def test_rewrite_lines_escape_wire_text(net: Net, tmp_path: Path) -> None:
    data = tmp_path / "rq.bin"
    data.write_bytes(_hostile_rq(b"MOD\x1b[31m", b"\nFAKE"))
    with (
        running(
            net,
            script("sink.py", str(UPSTREAM_PORT), str(tmp_path / "sink")),
            tmp_path / "sink.log",
            port=UPSTREAM_PORT,
        ),
        proxy(
            net,
            tmp_path,
            "--upstream",
            f"127.0.0.1:{UPSTREAM_PORT}",
            "--rewrite-calling-ae",
            "*=GATEWAY",
        ) as px,
    ):
        net.run(script("rawclient.py", "opening", "127.0.0.1", str(PROXY_PORT), str(data)))
        px.wait_log(r"#1 ended")
        assert px.stop() == 0
    log = px.log()
    assert "\x1b" not in log and not re.search(r"^FAKE", log, re.MULTILINE)
    assert r"#1 rewrite: calling AE MOD\x1b[31m → GATEWAY" in log
    # The rewritten RQ reached the upstream with the new title.
    (received,) = (tmp_path / "sink").glob("*.bin")
    body = received.read_bytes()
    assert struct.unpack(">BBI", body[:6])[0] == 1 and body[26:42] == b"GATEWAY".ljust(16)
