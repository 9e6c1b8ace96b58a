"""Bad input never ends in a traceback: captures that cannot be replayed, usage errors,
unreachable targets, peers that are not DICOM or say nothing, hostile peers and crafted
captures. Every case ends in bounded time with one clear line and its exit status."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from analyzer.cli import main
from tests.factories import (
    CT_STORAGE,
    IMPLICIT,
    VERIFICATION,
    associate_ac,
    associate_rq,
    command,
    echo_rq,
    echo_rsp,
    message,
    release_rp,
    release_rq,
)
from tests.pcapgen import Conversation, write_pcap
from tests.peers import Net

from .harness import HOST, ROOT, SAMPLES, acceptor, python_peer, replay, script

DATA = ROOT / "tests" / "data"


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["replay", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output + result.stderr
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((str(SAMPLES / "echo.pcap"), "-a", "4", "--dry-run"), "holds no association 4"),
        (
            (str(SAMPLES / "fail_never_associated.pcap"), "-a", "1", "--dry-run"),
            "carried no DICOM",
        ),
        (
            (str(SAMPLES / "fail_partial_association.pcap"), "-a", "1", "--dry-run"),
            "the capture began after its A-ASSOCIATE-RQ",
        ),
        (
            (str(SAMPLES / "fail_capture_gap.pcap"), "-a", "1", "--dry-run"),
            "--allow-incomplete sends zeros",
        ),
        (
            (
                str(SAMPLES / "fail_plain_client_to_tls.pcap"),
                "-a",
                "1",
                "--as-acceptor",
                "--listen",
                "127.0.0.1:1",
                "--dry-run",
            ),
            "its A-ASSOCIATE-AC (or -RJ) was not captured",
        ),
        ((str(ROOT / "README.md"), "-a", "1", "--dry-run"), "is not a pcap or pcapng capture"),
        ((str(ROOT / "no-such.pcap"), "-a", "1", "--dry-run"), "no such file"),
        (("-", "-a", "1", "--dry-run"), "give a file, not standard input"),
    ],
)
def test_captures_that_cannot_be_replayed(args: tuple[str, ...], words: str) -> None:
    code, out, err = cli(*args)
    assert code == 2 and not out, out
    assert err.startswith("dicomtap: error: ") and words in err and err.count("\n") == 1, err


def test_a_capture_without_dicom(tmp_path: Path) -> None:
    path = tmp_path / "http.pcap"
    talk = Conversation(("10.0.0.1", 40000), ("10.0.0.2", 8080)).handshake()
    talk.send(True, b"GET / HTTP/1.0\r\n\r\n").send(False, b"HTTP/1.0 200 OK\r\n\r\n").close()
    write_pcap(path, talk.frames)
    code, _, err = cli(str(path), "-a", "1", "--dry-run")
    assert code == 2 and "holds no DICOM association: nothing to replay" in err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--to", "127.0.0.1:1", "--as-acceptor", "--listen", "127.0.0.1:2"), "choose one"),
        (("--as-acceptor",), "--as-acceptor needs --listen"),
        (("--listen", "127.0.0.1:2"), "--listen goes with --as-acceptor"),
        (("--as-acceptor", "--listen", "127.0.0.1:2", "--calling-ae", "X"), "not with"),
        ((), "say where to replay"),
        (("--to", "nowhere"), "expected HOST:PORT"),
        (("--to", "127.0.0.1:70000"), "not in 1..65535"),
        (("--to", "127.0.0.1:1", "--calling-ae", "A\x1bB"), "is not an AE title"),
        (("--to", "127.0.0.1:1", "--max-pdu", "10"), "--max-pdu"),
    ],
)
def test_usage_errors(args: tuple[str, ...], words: str) -> None:
    code, _, err = cli(str(SAMPLES / "echo.pcap"), "-a", "1", *args)
    assert code == 2 and words in err, err


def test_escaped_wire_text_in_the_dry_run() -> None:
    code, out, _ = cli(str(DATA / "repros" / "ae_escape.pcap"), "-a", "1", "--dry-run")
    assert code == 0 and "\x1b" not in out and "\\x1b" in out, out


def test_crafted_resync_capture_dry_run() -> None:
    code, out, _ = cli(str(DATA / "hostile" / "resync_recursion.pcap"), "-a", "1", "--dry-run")
    assert code == 0 and "A-ASSOCIATE-RQ" in out, out


def test_dry_run_lists_what_would_be_sent() -> None:
    code, out, _ = cli(
        str(SAMPLES / "get_orthanc.pcap"), "-a", "1", "--dry-run", "--calling-ae", "TESTSCU"
    )
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].endswith("as the requestor (dry run: nothing is sent)")
    assert "  (A-ASSOCIATE-RQ calling AE GETSCU → TESTSCU)" in lines
    assert any(line.startswith("  send  A-ASSOCIATE-RQ  TESTSCU → ORTHANC, 121") for line in lines)
    assert sum("wait for request" in line for line in lines) == 3
    assert sum("send  C-STORE-RSP" in line for line in lines) == 3
    assert lines[-2] == "  close the connection (FIN)" or "A-RELEASE-RQ" in out


def test_help_lists_each_example_and_exit_status_on_its_own_line() -> None:
    code, out, _ = cli("--help")
    assert code == 0, out
    lines = [line.strip() for line in out.splitlines()]
    assert "dicomtap replay night.pcap -a 3 --dry-run" in lines
    assert "dicomtap replay night.pcap -a 3 --as-acceptor --listen 0.0.0.0:11112" in lines
    assert "1  it did not (the differences are printed)" in lines


# --- live peers that are not good DICOM peers ---------------------------------------------


@pytest.mark.peers
def test_nothing_listens_there(net: Net) -> None:
    run = replay(net, str(SAMPLES / "echo.pcap"), "-a", "1", "--to", f"{HOST}:{net.port(11199)}")
    assert run.returncode == 3, run.stdout
    assert "Not replayed: connection refused by 127.0.0.1:" in run.stdout


@pytest.mark.peers
def test_nobody_connects_to_the_acceptor(net: Net) -> None:
    port = net.port(11198)
    run = replay(
        net,
        str(SAMPLES / "echo.pcap"),
        "-a",
        "1",
        "--as-acceptor",
        "--listen",
        f"{HOST}:{port}",
        "--timeout",
        "1",
    )
    assert run.returncode == 3 and "nobody connected to 127.0.0.1:" in run.stdout, run.stdout
    assert run.seconds < 30


@pytest.mark.peers
@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("http", "the target closed the connection where the capture has its answer"),
        ("silent", "waited 1 s for its answer to the A-ASSOCIATE-RQ"),
        ("reset", "the target reset the connection"),
    ],
)
def test_a_target_that_is_not_a_dicom_peer(net: Net, tmp_path: Path, mode: str, words: str) -> None:
    port = net.port(11197)
    with python_peer(net, tmp_path, port, "badpeer.py", mode, HOST, str(port)):
        run = replay(
            net, str(SAMPLES / "echo.pcap"), "-a", "1", "--to", f"{HOST}:{port}", "--timeout", "1"
        )
    assert run.returncode == 1, run.stdout
    assert words in run.stdout, run.stdout
    assert run.seconds < 30


@pytest.mark.peers
def test_a_requestor_sending_a_4_gb_pdu_to_the_acceptor(net: Net, tmp_path: Path) -> None:
    port = net.port(11196)
    with acceptor(net, tmp_path, "echo.pcap", 1, port, "--timeout", "8") as acc:
        t0 = time.monotonic()
        net.run(script("badpeer.py", "huge", HOST, str(port)), timeout=60)
        run = acc.wait()
    assert run.returncode == 1, run.stdout
    assert "for its request 1 (C-ECHO-RQ)" in run.stdout
    assert time.monotonic() - t0 < 40


@pytest.mark.peers
def test_a_capture_declaring_a_4_gb_pdu_is_replayed_in_bounded_memory(
    net: Net, tmp_path: Path
) -> None:
    """The captured requestor declared a P-DATA-TF of 4 GB and sent 2 MB of it: the replay
    streams what was captured (it never allocates by the declared length) and ends."""
    path = tmp_path / "huge.pcap"
    talk = Conversation((HOST, 40000), (HOST, 11112)).handshake()
    talk.send(True, associate_rq(((1, VERIFICATION, (IMPLICIT,)),), called="SELF"))
    talk.send(False, associate_ac(called="SELF"))
    talk.send(True, struct.pack(">BBI", 4, 0, 0xFFFFFFFF) + struct.pack(">IBB", 0xFFFFFFF0, 1, 2))
    talk.send(True, bytes(2 << 20), mss=65000).close()
    write_pcap(path, talk.frames)
    port = net.port(11195)
    # The acceptor waits for the requestor's connection as long as the requestor's own
    # analysis of the capture may take on a loaded machine; the close ends it.
    with acceptor(net, tmp_path, path, 1, port, "--timeout", "60") as acc:
        run = replay(net, str(path), "-a", "1", "--to", f"{HOST}:{port}", "--timeout", "3")
        served = acc.wait()
    assert served.returncode in (0, 1), served.stdout
    assert run.returncode in (0, 1), run.stdout
    assert "Peer 127.0.0.1:" in run.stdout and "sent 2048.2 KiB" in run.stdout, run.stdout


def test_echo_factories_are_what_the_capture_tests_use() -> None:
    # The generated captures above rely on the factories' C-ECHO being a whole message.
    assert echo_rq().startswith(b"\x04") and echo_rsp().startswith(b"\x04")


@pytest.mark.peers
def test_the_captured_pace_follows_the_capture_not_each_send(net: Net, tmp_path: Path) -> None:
    """A data set the captured requestor sent in 2000 segments, 0.5 ms apart (1 s in all):
    with --pace captured each segment goes at its captured time after the A-ASSOCIATE-AC,
    so the replay takes about that second, not 2000 times the captured gap plus the time
    each send and wait takes."""
    path = tmp_path / "paced.pcap"
    talk = Conversation((HOST, 40000), (HOST, 11112)).handshake()
    talk.send(True, associate_rq(((1, CT_STORAGE, (IMPLICIT,)),), called="SELF"))
    talk.send(False, associate_ac(called="SELF"))
    store = command(
        command_field=0x0001,
        message_id=1,
        affected_sop_class_uid=CT_STORAGE,
        affected_sop_instance_uid="1.2.3.4",
        priority=0,
        dataset_type=0x0102,
    )
    data = message(1, store, bytes(2000 * 1000 - 200), fragment=16000)
    for i in range(0, len(data), 1000):
        talk.send(True, data[i : i + 1000], mss=1000, dt=0.0005)
    rsp = command(
        command_field=0x8001,
        message_id_being_responded_to=1,
        affected_sop_class_uid=CT_STORAGE,
        affected_sop_instance_uid="1.2.3.4",
        status=0,
    )
    talk.send(False, message(1, rsp)).send(True, release_rq()).send(False, release_rp())
    write_pcap(path, talk.close().frames)
    port = net.port(11194)
    with acceptor(net, tmp_path, path, 1, port, "--timeout", "60") as acc:
        run = replay(net, str(path), "-a", "1", "--to", f"{HOST}:{port}", "--pace", "captured")
        acc.wait()
    assert run.returncode == 0, run.stdout
    captured, replayed = run.row("duration")[1].split("duration", 1)[1].split()[::2][:2]
    assert float(captured) == 1.0, run.stdout  # seconds, as captured
    # Each step paced after the previous send took 4.8 s here.
    assert 0.95 <= float(replayed) < 2.5 and run.row("duration")[1].endswith(" s"), run.stdout
