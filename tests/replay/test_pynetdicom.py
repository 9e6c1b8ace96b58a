"""The replay against the pynetdicom peers the samples were captured from (samples/
peer_scp.py, samples/pynetdicom_scp.py), configured alike and otherwise, the pace of the
capture where timing is the symptom, and the replayed acceptor played to a pynetdicom SCU
whose Message IDs differ from the captured ones (the responses are renumbered)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.peers import Net

from .harness import HOST, SAMPLES, acceptor, json_lines, make_objects, python_peer, replay, script

pytestmark = pytest.mark.peers

PORT = 11114


@pytest.mark.parametrize(
    ("capture", "association", "mode", "extra"),
    [
        ("fail_dimse_status.pcap", 1, "statuses", ()),
        ("fail_async_window.pcap", 1, "async1", ()),
        ("fail_cleartext_credentials.pcap", 1, "identity", ()),
        ("fail_no_context.pcap", 1, "ct-only", ()),
        ("fail_no_context.pcap", 2, "ct-only", ()),
        ("fail_abort_provider.pcap", 1, "verification", ()),
        ("fail_pdu_too_long.pcap", 2, "pdu4096", ()),
        ("fail_unaccepted_context.pcap", 2, "verification", ()),
        ("fail_unanswered.pcap", 1, "slow-echo", ("--pace", "captured")),
        ("fail_idle_timeout.pcap", 1, "idle-timeout", ("--pace", "captured")),
    ],
)
def test_peer_scp_configured_alike_answers_as_captured(
    net: Net, tmp_path: Path, capture: str, association: int, mode: str, extra: tuple[str, ...]
) -> None:
    port = net.port(PORT)
    args = {"slow-echo": ("4",), "idle-timeout": ("3",)}.get(mode, ())
    with python_peer(net, tmp_path, port, "peer_scp.py", HOST, str(port), "PYSCP", mode, *args):
        run = replay(
            net, str(SAMPLES / capture), "-a", str(association), "--to", f"{HOST}:{port}", *extra
        )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.result.startswith("Result: no difference"), run.stdout


def test_statuses_are_those_of_the_capture(net: Net, tmp_path: Path) -> None:
    port = net.port(PORT)
    with python_peer(net, tmp_path, port, "peer_scp.py", HOST, str(port), "PYSCP", "statuses"):
        run = replay(
            net,
            str(SAMPLES / "fail_dimse_status.pcap"),
            "-a",
            "1",
            "--to",
            f"{HOST}:{port}",
            "--all",
        )
    assert run.returncode == 0, run.stdout
    assert "0xA700" in run.row("exchange 1 (SCU C-STORE)")[1]
    assert "0xB000" in run.row("exchange 2 (SCU C-STORE)")[1]
    assert "0x0000" in run.row("exchange 3 (SCU C-STORE)")[1]


def test_the_captured_pace_keeps_the_requestors_wait(net: Net, tmp_path: Path) -> None:
    """echoscu waited 2 s for the C-ECHO-RSP before it aborted. With --pace captured the
    replay waits as long before its A-ABORT; at full speed the abort follows at once."""
    port = net.port(PORT)
    peer = ("peer_scp.py", HOST, str(port), "PYSCP", "slow-echo", "4")
    with python_peer(net, tmp_path, port, *peer):
        fast = replay(
            net, str(SAMPLES / "fail_unanswered.pcap"), "-a", "1", "--to", f"{HOST}:{port}"
        )
    with python_peer(net, tmp_path, port, *peer):
        paced = replay(
            net,
            str(SAMPLES / "fail_unanswered.pcap"),
            "-a",
            "1",
            "--to",
            f"{HOST}:{port}",
            "--pace",
            "captured",
        )
    assert fast.returncode == 0 and paced.returncode == 0, fast.stdout + paced.stdout

    def seconds(text: str) -> float:
        value, unit = text.split()
        return float(value) * {"s": 1, "ms": 1e-3, "µs": 1e-6}[unit]

    for run, low, high in ((paced, 1.95, 3.5), (fast, 0, 1.0)):
        cells = run.row("duration")[1].split("duration", 1)[1].split()
        assert seconds(" ".join(cells[:2])) == 2.0
        assert low <= seconds(" ".join(cells[2:4])) < high, run.stdout


def test_pynetdicom_sample_against_its_scp(net: Net, tmp_path: Path) -> None:
    port = net.port(PORT)
    out = tmp_path / "received"
    argv = (HOST, str(port), "PYSCP", str(out))
    with python_peer(net, tmp_path, port, "pynetdicom_scp.py", *argv):
        run = replay(net, str(SAMPLES / "pynetdicom.pcap"), "-a", "1", "--to", f"{HOST}:{port}")
    assert run.returncode == 0, run.stdout
    assert len(list(out.iterdir())) == 2


def test_an_scp_without_verification_and_mr_is_a_difference(net: Net, tmp_path: Path) -> None:
    port = net.port(PORT)
    with python_peer(net, tmp_path, port, "peer_scp.py", HOST, str(port), "PYSCP", "ct-only"):
        run = replay(net, str(SAMPLES / "pynetdicom.pcap"), "-a", "1", "--to", f"{HOST}:{port}")
    assert run.returncode == 1, run.stdout
    assert run.mark("context 1 Verification SOP Class") == "≠"
    assert run.mark("context 3 CT Image Storage") == "="
    assert run.mark("context 5 MR Image Storage") == "≠"
    assert run.mark("exchange 2 (SCU C-STORE)") == "≠"  # the C-ECHO was left out: CT is #1 now
    assert "2 requests left out" in run.stdout


def test_responses_renumbered_for_the_live_message_ids(net: Net, tmp_path: Path) -> None:
    """The captured storescu numbered its C-STOREs 1, 2, 3; this SCU numbers them 7, 8, 9.
    The replayed acceptor answers each with the captured status, responding to 7, 8, 9."""
    objects = make_objects(tmp_path)
    port = net.port(11113)
    files = [str(objects / f"ct{i}.dcm") for i in (1, 2, 3)]
    with acceptor(net, tmp_path, "fail_dimse_status.pcap", 1, port) as acc:
        scu = net.run(script("store_scu.py", HOST, str(port), "PYSCP", "7", *files), timeout=60)
        run = acc.wait()
    assert scu.returncode == 0, scu.stdout + scu.stderr
    assert json_lines(scu.stdout) == [
        {"message_id": 7, "status": 0xA700},
        {"message_id": 8, "status": 0xB000},
        {"message_id": 9, "status": 0x0000},
    ]
    assert "3 responses renumbered" in run.stdout
    assert run.mark("exchange 1 (SCU C-STORE)") == "="
    assert run.mark("exchange 3 (SCU C-STORE)") == "="
    # pynetdicom proposes other contexts than the captured storescu, and gets the captured
    # A-ASSOCIATE-AC all the same: those are differences of the requestor under test.
    assert run.returncode == 1, run.stdout
    assert run.mark("context 1 proposed") == "≠" and run.mark("requestor implementation") == "~"
