"""TCP health on the DICOM timeline: retransmissions, zero windows, keep-alives, round trips,
silences and resets, per association, in JSON, in the text view and as findings.

The captures in samples/ were made with real peers (DCMTK storescu/storescp in a network
namespace; samples/make_samples.sh): ``fail_tcp_loss`` through a token bucket that drops
packets, ``fail_tcp_zero_window`` with a receiver that sleeps while its buffer is full.
Wireshark's ``tcp.analysis`` fields are the reference for the counts. A middlebox cannot be
put between two peers here (no packet filter in the test kernel), so the reset after an
idle time and the retransmissions nobody acknowledges are crafted captures.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.factories import associate_ac, associate_rq, echo_rq, echo_rsp, release_rp, release_rq
from tests.pcapgen import Conversation, write_pcap
from tests.peers import analyze, dicomtap_argv, tool

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def _associations(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["type"] == "association"]


def _codes(records: list[dict[str, Any]]) -> Counter[str]:
    return Counter(r["code"] for r in records if r["type"] == "finding")


def _tshark_frames(path: Path, display_filter: str) -> list[int]:
    out = subprocess.run(
        [
            tool("tshark"),
            "-r",
            str(path),
            "-Y",
            display_filter,
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [int(n) for n in out.stdout.split()]


def _tshark_count(path: Path, display_filter: str) -> int:
    return len(_tshark_frames(path, display_filter))


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
        == _tshark_frames(SAMPLES / "fail_tcp_loss.pcap", RETRANSMISSIONS)[0]
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
