"""TCP health on the DICOM timeline: retransmissions, zero windows, keep-alives, round trips,
silences and resets, per association, in JSON, in the text view and as findings.

The captures in samples/ were made with real peers (DCMTK storescu/storescp in a network
namespace; samples/make_samples.sh): ``fail_tcp_loss`` through a token bucket that drops
packets, ``fail_tcp_zero_window`` with a receiver that sleeps while its buffer is full.
Wireshark's ``tcp.analysis`` fields are the reference for the counts. A middlebox cannot be
put between two peers here (no packet filter in the test kernel), so the reset after an
idle time and the retransmissions nobody acknowledges are crafted captures. A reset that
``dicomtap proxy`` writes itself is a third party's: in a crafted pcapng carrying the proxy's
mark, and in a real proxy run whose write timeout resets an SCP that stopped reading.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import dpkt
import pytest

from analyzer.sources.pcap import INJECTED_COMMENT
from tests.factories import associate_ac, associate_rq, echo_rq, echo_rsp, release_rp, release_rq
from tests.objects import big_image
from tests.pcapgen import Conversation, write_pcap
from tests.peers import Net, analyze, dcmtk, dicomtap_argv, running, tool, tshark_frames
from tests.proxy.harness import PROXY_PORT, UPSTREAM_PORT, proxy, script

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def _associations(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["type"] == "association"]


def _codes(records: list[dict[str, Any]]) -> Counter[str]:
    return Counter(r["code"] for r in records if r["type"] == "finding")


def _tshark_count(path: Path, display_filter: str) -> int:
    return len(tshark_frames(path, display_filter))


def _tshark_initial_rtts(path: Path) -> list[float]:
    """Wireshark's ``tcp.analysis.initial_rtt`` of each connection, in ms."""
    out = subprocess.run(
        [
            tool("tshark"),
            "-r",
            str(path),
            "-Y",
            "tcp.analysis.initial_rtt",
            "-T",
            "fields",
            "-e",
            "tcp.stream",
            "-e",
            "tcp.analysis.initial_rtt",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rtts = dict(line.split("\t") for line in out.stdout.splitlines())
    return sorted(round(float(v) * 1000, 3) for v in rtts.values())


RETRANSMISSIONS = (
    "tcp.len > 0 && (tcp.analysis.retransmission || tcp.analysis.fast_retransmission "
    "|| tcp.analysis.spurious_retransmission || tcp.analysis.out_of_order)"
)


@pytest.mark.parametrize(
    "name",
    ["fail_tcp_loss.pcap", "fail_tcp_zero_window.pcap", "store.pcap", "fail_idle_timeout.pcap"],
)
def test_counts_agree_with_wireshark(name: str) -> None:
    path = SAMPLES / name
    assocs = _associations(analyze([path]))
    assert assocs and all(a["tcp"] is not None for a in assocs)

    def total(field: str) -> int:
        return sum(a["tcp"][s][field] for a in assocs for s in ("requestor", "acceptor"))

    assert total("retransmissions") == _tshark_count(path, RETRANSMISSIONS)
    assert total("zero_windows") == _tshark_count(path, "tcp.analysis.zero_window")
    assert total("keepalives") == _tshark_count(path, "tcp.analysis.keep_alive")
    ours = sorted(a["tcp"]["handshake_rtt_ms"] for a in assocs)
    assert ours == _tshark_initial_rtts(path)


def test_packet_loss_on_a_real_transfer() -> None:
    records = analyze([SAMPLES / "fail_tcp_loss.pcap"])
    (a,) = _associations(records)
    assert a["outcome"] == "released"  # TCP recovered: DICOM saw nothing wrong
    req = a["tcp"]["requestor"]
    assert req["retransmissions"] >= 5 and req["retransmission_bursts"] >= 1
    assert a["tcp"]["acceptor"]["retransmissions"] == 0
    assert a["tcp"]["unanswered_retransmissions"] is None
    assert req["rtt"]["samples"] > 0 and req["rtt"]["min_ms"] <= req["rtt"]["max_ms"]
    assert _codes(records)["tcp-retransmissions"] == 1
    (finding,) = [r for r in records if r.get("code") == "tcp-retransmissions"]
    assert (
        finding["evidence"]["frames"][0]
        == tshark_frames(SAMPLES / "fail_tcp_loss.pcap", RETRANSMISSIONS)[0]
    )


def test_zero_window_of_a_receiver_that_stops_reading() -> None:
    records = analyze([SAMPLES / "fail_tcp_zero_window.pcap"])
    (a,) = _associations(records)
    acc = a["tcp"]["acceptor"]
    assert acc["zero_window_episodes"] >= 1
    assert acc["longest_zero_window_ms"] >= 1500  # storescp sleeps 2 s with its buffer full
    assert a["tcp"]["requestor"]["zero_windows"] == 0
    (finding,) = [r for r in records if r.get("code") == "tcp-zero-window"]
    assert finding["evidence"]["direction"] == "acceptor->requestor"
    assert "acceptor STORESCP" in finding["title"]
    notes = subprocess.run(
        dicomtap_argv("analyze", str(SAMPLES / "fail_tcp_zero_window.pcap")),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "TCP: " in notes and "acceptor advertised a zero window" in notes


def test_healthy_captures_have_no_tcp_findings() -> None:
    """Near misses: store.pcap holds one zero window of 55 µs (a receiver catching up) and
    no retransmission; the idle-timeout sample a silence ended by a FIN, not by a reset."""
    for name in ("store.pcap", "fail_idle_timeout.pcap", "move_orthanc.pcap"):
        records = analyze([SAMPLES / name])
        assert not [c for c in _codes(records) if c.startswith("tcp-")], name
        text = subprocess.run(
            dicomtap_argv("analyze", str(SAMPLES / name)),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        assert "TCP: " not in text or name == "fail_idle_timeout.pcap", name
    (a,) = [
        x
        for x in _associations(analyze([SAMPLES / "store.pcap"]))
        if x["tcp"]["acceptor"]["zero_windows"]
    ]
    assert a["tcp"]["acceptor"]["longest_zero_window_ms"] < 1


# --- crafted: what a middlebox does ------------------------------------------------------

CLIENT, SERVER = ("10.0.0.1", 50123), ("10.0.0.2", 104)


def _associated(idle: float) -> tuple[Conversation, bytes]:
    talk = Conversation(CLIENT, SERVER).handshake()
    talk.send(True, associate_rq()).send(False, associate_ac())
    talk.send(True, echo_rq(1)).send(False, echo_rsp(1))
    second = echo_rq(2)
    talk.send(True, second, dt=idle)
    return talk, second


def test_reset_answering_the_first_data_after_a_silence(tmp_path: Path) -> None:
    talk, _ = _associated(idle=300.0)
    talk.reset(False, dt=0.0004)
    records = analyze([write_pcap(tmp_path / "reset.pcap", talk.frames)])
    (a,) = _associations(records)
    assert a["outcome"] == "transport-dropped"
    reset = a["tcp"]["reset"]
    assert reset["by"] == "acceptor"
    assert reset["after_silence_ms"] == pytest.approx(300_000, abs=5)
    assert a["tcp"]["silences"] == 1
    (finding,) = [r for r in records if r.get("code") == "tcp-reset-after-idle"]
    assert finding["title"] == "Connection reset after 300 s idle"
    assert "not of either AE" in finding["explanation"]


def test_reset_without_a_silence_is_not_a_middlebox(tmp_path: Path) -> None:
    """Near miss: the same reset right after the echo, without the silence before it."""
    talk, _ = _associated(idle=0.5)
    talk.reset(False, dt=0.0004)
    records = analyze([write_pcap(tmp_path / "reset.pcap", talk.frames)])
    (a,) = _associations(records)
    assert a["tcp"]["reset"]["after_silence_ms"] is None
    assert "tcp-reset-after-idle" not in _codes(records)
    assert "transport-dropped" in _codes(records)


def test_retransmissions_nobody_acknowledges(tmp_path: Path) -> None:
    talk, second = _associated(idle=120.0)
    for i in range(5):
        talk.retransmit(True, second, dt=0.2 * 2**i)
    talk.reset(True, dt=1.0)
    records = analyze([write_pcap(tmp_path / "stall.pcap", talk.frames)])
    (a,) = _associations(records)
    stall = a["tcp"]["unanswered_retransmissions"]
    assert stall["by"] == "requestor" and stall["count"] == 5
    assert stall["duration_ms"] == pytest.approx(200 * (2 + 4 + 8 + 16), abs=1)
    codes = _codes(records)
    assert codes["tcp-unanswered"] == 1 and "tcp-retransmissions" not in codes
    (finding,) = [r for r in records if r.get("code") == "tcp-unanswered"]
    assert "after 120 s of silence" in finding["explanation"]


def test_retransmissions_that_are_acknowledged_are_not_a_dead_peer(tmp_path: Path) -> None:
    """Near miss: the same retransmissions, then the acceptor answers and all goes on."""
    talk, second = _associated(idle=120.0)
    for i in range(5):
        talk.retransmit(True, second, dt=0.2 * 2**i)
    talk.send(False, echo_rsp(2)).send(True, release_rq()).send(False, release_rp()).close()
    records = analyze([write_pcap(tmp_path / "late.pcap", talk.frames)])
    (a,) = _associations(records)
    assert a["outcome"] == "released"
    assert a["tcp"]["unanswered_retransmissions"] is None
    assert a["tcp"]["requestor"]["retransmission_bursts"] == 1
    assert "tcp-unanswered" not in _codes(records)


# --- a relay's own reset ------------------------------------------------------------------


def _pcapng(path: Path, frames: list[tuple[float, bytes]], marked: set[int]) -> Path:
    """``frames`` as a pcapng; those at the indices ``marked`` carry the comment with which
    ``dicomtap proxy`` marks what it writes itself."""
    with open(path, "wb") as f:
        writer = dpkt.pcapng.Writer(f, snaplen=0, linktype=dpkt.pcap.DLT_EN10MB)
        for i, (ts, data) in enumerate(frames):
            opts = []
            if i in marked:
                opts = [
                    dpkt.pcapng.PcapngOptionLE(
                        code=dpkt.pcapng.PCAPNG_OPT_COMMENT, text=INJECTED_COMMENT
                    ),
                    dpkt.pcapng.PcapngOptionLE(code=dpkt.pcapng.PCAPNG_OPT_ENDOFOPT),
                ]
            block = dpkt.pcapng.EnhancedPacketBlockLE(pkt_data=data, opts=opts)
            writer.writepkt(block, ts=ts)
    return path


def test_a_reset_the_relay_wrote_is_a_third_partys(tmp_path: Path) -> None:
    talk, _ = _associated(idle=300.0)
    talk.reset(False, dt=0.0004)  # in the acceptor's name, written by the relay
    records = analyze([_pcapng(tmp_path / "relay.pcapng", talk.frames, {len(talk.frames) - 1})])
    (a,) = _associations(records)
    tcp = a["tcp"]
    assert tcp["reset"]["by"] == "third-party"
    assert tcp["reset"]["after_silence_ms"] == pytest.approx(300_000, abs=5)
    assert (tcp["requestor"]["resets"], tcp["acceptor"]["resets"]) == (0, 0)
    assert tcp["third_party_resets"] == 1
    assert (a["outcome"], a["closed_by"], a["ended_by"]) == (
        "transport-dropped",
        "third-party",
        "third-party",
    )
    findings = {r["code"]: r for r in records if r["type"] == "finding"}
    idle = findings["tcp-reset-after-idle"]
    assert idle["title"] == "Connection reset by the relay after 300 s idle"
    assert "neither AE reset the connection" in idle["explanation"]
    assert idle["evidence"]["direction"] is None  # nobody's direction: the relay's
    dropped = findings["transport-dropped"]
    assert dropped["explanation"].startswith("A third party between them")
    assert "neither AE did" in dropped["hint"]
    for f in findings.values():  # no finding blames an AE for the reset
        assert "on that side died" not in f["hint"], f
    text = subprocess.run(
        [*dicomtap_argv("analyze", "--no-progress", str(tmp_path / "relay.pcapng"))],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "reset (RST) by the relay between them (in the acceptor's name)" in text


def test_the_same_reset_unmarked_is_the_acceptors(tmp_path: Path) -> None:
    """Near miss: the same capture as a pcapng without the relay's mark."""
    talk, _ = _associated(idle=300.0)
    talk.reset(False, dt=0.0004)
    records = analyze([_pcapng(tmp_path / "plain.pcapng", talk.frames, set())])
    (a,) = _associations(records)
    assert a["tcp"]["reset"]["by"] == "acceptor"
    assert (a["tcp"]["acceptor"]["resets"], a["tcp"]["third_party_resets"]) == (1, 0)
    (idle,) = [r for r in records if r.get("code") == "tcp-reset-after-idle"]
    assert idle["title"] == "Connection reset after 300 s idle"


@pytest.mark.peers
def test_the_proxy_resetting_an_upstream_that_stopped_reading_blames_neither_ae(
    net: Net, tmp_path: Path
) -> None:
    """A real proxy run: storescu → dicomtap proxy → an SCP that accepts the association and
    never reads again. The proxy's write timeout resets the upstream leg (in the name of the
    requestor, the proxy being its client there) and aborts the client leg: neither AE reset
    anything, in the proxy's own records and in ``dicomtap analyze`` of its pcapng."""
    big = big_image(tmp_path / "big.dcm", 16_000_000)
    seen = tmp_path / "stubborn.txt"
    upstream = script("stubborn.py", str(UPSTREAM_PORT), str(seen), "stall")
    with (
        running(net, upstream, tmp_path / "stubborn.log", port=UPSTREAM_PORT),
        proxy(
            net, tmp_path, "--upstream", f"127.0.0.1:{UPSTREAM_PORT}", "--write-timeout", "2"
        ) as px,
    ):
        client = net.run([dcmtk("storescu"), "-aet", "BIG", "127.0.0.1", str(PROXY_PORT), str(big)])
        assert client.returncode != 0, client.stdout
        px.wait_log(r"#1 write timeout: the upstream read nothing for 2 s")
        px.wait_log(r"#1 .*(aborted|closed by)")
        assert px.stop() == 0
    # The proxy's own records hold the client leg; its pcapng both legs.
    legs = _associations(analyze([px.pcap]))
    assert [a["server"]["port"] for a in legs] == [PROXY_PORT, UPSTREAM_PORT]
    (live,) = _associations(px.records())
    client_leg, upstream_leg = legs
    assert live["tcp"] == client_leg["tcp"]
    # The client leg: the proxy's A-ABORT, then its reset of a client that did not close
    # (storescu, blocked sending), both in the acceptor's name.
    assert client_leg["abort"]["by"] == "third-party"
    # The upstream leg: the proxy's reset of the SCP that stopped reading, in the requestor's.
    assert upstream_leg["closed_by"] == "third-party"
    for a in legs:
        tcp = a["tcp"]
        assert tcp["reset"]["by"] == "third-party", tcp["reset"]
        assert (tcp["requestor"]["resets"], tcp["acceptor"]["resets"]) == (0, 0)
        assert tcp["third_party_resets"] == 1
    findings = [r for r in analyze([px.pcap]) if r["type"] == "finding"]
    (dropped,) = [f for f in findings if f["code"] == "transport-dropped"]
    assert "neither AE did" in dropped["hint"]
    assert all("on that side died" not in f["hint"] for f in findings)
