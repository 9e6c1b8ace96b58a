"""Faults: the upstream down or reset, a client killed mid-PDU, a peer that stops reading,
garbage and absurd PDU lengths. The proxy answers or closes as configured, logs why, never
alters what it relays, and keeps serving."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.objects import big_image
from tests.peers import Net, Process, dcmtk, dicomtap_argv, running, tool

from .harness import PROXY_PORT, ROOT, UPSTREAM_PORT, proxy, script, storescp

pytestmark = pytest.mark.peers


def _echo(net: Net, port: int = PROXY_PORT) -> subprocess.CompletedProcess[str]:
    return net.run([dcmtk("echoscu"), "-aet", "CHECK", "127.0.0.1", str(port)])


def test_upstream_down_reject_close_and_dns(net: Net, tmp_path: Path) -> None:
    with proxy(
        net,
        tmp_path,
        "--upstream",
        f"127.0.0.1:{UPSTREAM_PORT}",
        "--route",
        "NODNS=no-such-host.invalid:104",
    ) as px:
        result = _echo(net)
        assert result.returncode != 0
        assert "Rejected Transient" in result.stdout + result.stderr
        assert "Temporary Congestion" in result.stdout + result.stderr
        px.wait_log(r"#1 cannot relay: upstream 127\.0\.0\.1:11113: refused")
        px.wait_log(r"#1 refused CHECK→ANY-SCP: upstream unreachable \(RJ 2/3/1\)")
        result = net.run([dcmtk("echoscu"), "-aec", "NODNS", "127.0.0.1", str(PROXY_PORT)])
        assert result.returncode != 0
        px.wait_log(r"#2 cannot relay: upstream no-such-host\.invalid:104: DNS")
        assert px.stop() == 0
    recs = [r for r in px.records() if r["type"] == "association"]
    assert [
        (r["outcome"], r["reject"]["result"], r["reject"]["source"], r["reject"]["reason"])
        for r in recs
    ] == [("rejected", 2, 3, 1)] * 2
    with proxy(
        net,
        tmp_path,
        "--upstream",
        f"127.0.0.1:{UPSTREAM_PORT}",
        "--on-upstream-failure",
        "close",
        port=PROXY_PORT + 2,
    ) as px:
        result = _echo(net, PROXY_PORT + 2)
        assert result.returncode != 0
        px.wait_log(r"#1 refused CHECK→ANY-SCP: upstream unreachable \(closed\)")
        # The proxy closed, not the PACS: a third party (marked so in the pcapng, too).
        px.wait_log(r"#1 ended: TCP connection closed by a third party")
        assert px.stop() == 0
    # No A-ASSOCIATE-RJ went out: the client leg shows the proxy closing.
    (closed,) = [r for r in px.records() if r["type"] == "association"]
    assert closed["reject"] is None and closed["outcome"] == "transport-dropped"
    assert closed["closed_by"] == "third-party"


def test_upstream_connect_timeout_and_tls_failure(net: Net, tmp_path: Path) -> None:
    with (
        running(net, script("fullqueue.py", "11140"), tmp_path / "fq.log", port=11140),
        running(net, storescp(tmp_path, UPSTREAM_PORT), tmp_path / "scp.log", port=UPSTREAM_PORT),
        proxy(
            net,
            tmp_path,
            "--route",
            "SLOW=127.0.0.1:11140",
            "--connect-timeout",
            "1",
            "--upstream",
            f"127.0.0.1:{UPSTREAM_PORT}",
            "--upstream-tls",
            "--upstream-tls-no-verify",
        ) as px,
    ):
        started = time.monotonic()
        slow = net.run([dcmtk("echoscu"), "-aec", "SLOW", "127.0.0.1", str(PROXY_PORT)])
        assert slow.returncode != 0 and time.monotonic() - started < 10
        px.wait_log(
            r"#1 cannot relay: upstream 127\.0\.0\.1:11140: timeout \(no connection after 1 s\)"
        )
        plain = net.run([dcmtk("echoscu"), "127.0.0.1", str(PROXY_PORT)])  # TLS to a plain SCP
        assert plain.returncode != 0
        assert "Temporary Congestion" in plain.stdout + plain.stderr
        px.wait_log(r"#2 cannot relay: upstream 127\.0\.0\.1:11113: TLS: ")
        assert px.stop() == 0


@pytest.mark.parametrize("fault", ["rst", "stops-reading"])
def test_upstream_reset_or_stops_reading(net: Net, tmp_path: Path, fault: str) -> None:
    big = big_image(tmp_path / "big.dcm", 16_000_000)
    if net.name is not None:  # slow the namespace's loopback so the fault lands mid-transfer
        tbf = "tbf rate 100mbit burst 256kb latency 200ms"
        net.run(["tc", "qdisc", "add", "dev", "lo", "root", *tbf.split()])
    scp = Process(net, storescp(tmp_path, UPSTREAM_PORT, "--ignore"), tmp_path / "scp.log")
    try:
        net.wait_listening(UPSTREAM_PORT, scp)
        with proxy(
            net, tmp_path, "--upstream", f"127.0.0.1:{UPSTREAM_PORT}", "--write-timeout", "2"
        ) as px:
            client = subprocess.Popen(
                net.wrap(
                    [dcmtk("storescu"), "-aet", "BIG", "127.0.0.1", str(PROXY_PORT), str(big)]
                ),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            px.wait_log(r"#1 accepted \d+ of \d+ contexts?")
            time.sleep(0.1)
            os.kill(scp.popen.pid, signal.SIGSTOP)  # the upstream stops reading
            if fault == "rst":
                time.sleep(0.5)
                os.kill(scp.popen.pid, signal.SIGKILL)  # unread data: the kernel sends RST
            started = time.monotonic()
            out, _ = client.communicate(timeout=60)
            assert client.returncode != 0, out
            assert time.monotonic() - started < 20
            if fault == "rst":
                px.wait_log(r"#1 upstream reset .*; reset passed on")
            else:
                px.wait_log(
                    r"#1 write timeout: the upstream read nothing for 2 s; "
                    r"A-ABORT \(source 2\) sent to client"
                )
            px.wait_log(r"#1 .*(aborted|closed by)")
            # Still serving: a fresh upstream, a fresh association.
            os.kill(scp.popen.pid, signal.SIGKILL)
            scp.stop()
            with running(
                net, storescp(tmp_path, UPSTREAM_PORT), tmp_path / "scp2.log", port=UPSTREAM_PORT
            ):
                assert _echo(net).returncode == 0
                px.wait_log(r"#2 released")
            assert px.stop() == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(scp.popen.pid, signal.SIGKILL)
        scp.stop()
    first = next(r for r in px.records() if r["type"] == "association")
    assert first["calling_ae"] == "BIG"
    if fault == "rst":
        assert first["outcome"] == "transport-dropped"
    else:
        assert first["outcome"] == "aborted" and first["abort"]["source"] == 2
        # The proxy wrote that A-ABORT: a third party's, not the PACS's (the client saw it
        # come from the acceptor's side, hence source 2).
        assert first["abort"]["by"] == "third-party" and first["ended_by"] == "third-party"
        # The pcapng marks the A-ABORT as written by the proxy, not by the upstream.
        marked = subprocess.run(
            [
                tool("tshark"),
                "-r",
                str(px.pcap),
                "-Y",
                'frame.comment contains "dicomtap proxy"',
                "-T",
                "fields",
                "-e",
                "frame.interface_id",
                "-e",
                "tcp.payload",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.splitlines()
        # On the client leg: the A-ABORT (source 2), then the proxy's own close (FIN, and a
        # RST if the client did not close its side in time).
        client_leg = [line.split("\t") for line in marked if line.startswith("0")]
        assert client_leg[0] == ["0", "07000000000400000200"]
        assert {payload for _, payload in client_leg[1:]} == {""}


def test_client_killed_mid_pdu(net: Net, tmp_path: Path) -> None:
    with (
        running(net, storescp(tmp_path, UPSTREAM_PORT), tmp_path / "scp.log", port=UPSTREAM_PORT),
        proxy(net, tmp_path, "--upstream", f"127.0.0.1:{UPSTREAM_PORT}") as px,
    ):
        result = net.run(script("rawclient.py", "killmid", "127.0.0.1", str(PROXY_PORT)))
        assert result.returncode == -signal.SIGKILL, result
        # storescp answers the half-sent PDU with an A-ABORT: the outcome is whatever the wire
        # says, what matters is that the requestor's close was seen and nothing broke.
        px.wait_log(r"#1 ended: (TCP connection closed by the requestor|aborted by the acceptor)")
        assert _echo(net).returncode == 0
        px.wait_log(r"#2 released")
        assert px.stop() == 0
    first = next(r for r in px.records() if r["type"] == "association")
    assert first["closed_by"] == "requestor"
    assert first["outcome"] in ("transport-dropped", "aborted")
    assert "internal error" not in px.log() and "asyncio:" not in px.log()


def test_4gb_pdu_relayed_untouched_garbage_not_at_all(net: Net, tmp_path: Path) -> None:
    """A P-DATA-TF declaring 4 GB after a valid A-ASSOCIATE-RQ is relayed byte for byte
    (what comes of its body after the first read is left out of the record); garbage and an
    empty A-ASSOCIATE-RQ header are closed without reaching the upstream."""
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(hashlib.sha256(b"x").digest() * 4000 + os.urandom(50_000))
    bigpdu = tmp_path / "bigpdu.bin"
    empty_rq = tmp_path / "empty_rq.bin"
    empty_rq.write_bytes(b"\x01\x00\x00\x00\x00\x00")
    sink_dir = tmp_path / "sink"
    with (
        running(
            net,
            script("sink.py", str(UPSTREAM_PORT), str(sink_dir)),
            tmp_path / "sink.log",
            port=UPSTREAM_PORT,
        ),
        proxy(net, tmp_path, "--upstream", f"127.0.0.1:{UPSTREAM_PORT}") as px,
    ):
        result = net.run(
            script("rawclient.py", "garbage", "127.0.0.1", str(PROXY_PORT), str(garbage))
        )
        assert result.stdout.strip() == "closed", result
        result = net.run(
            script("rawclient.py", "bigpdu", "127.0.0.1", str(PROXY_PORT), str(bigpdu))
        )
        assert result.stdout.strip() == "closed", result
        px.wait_log(
            r"#2 P-DATA-TF declares 4294967295 bytes, above the parse limit of 67108864: "
            r"its body is neither captured nor observed"
        )
        result = net.run(
            script("rawclient.py", "garbage", "127.0.0.1", str(PROXY_PORT), str(empty_rq))
        )
        assert result.stdout.strip() == "closed", result
        deadline = time.monotonic() + 20
        while not list(sink_dir.glob("*.bin")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _echo(net).returncode != 0  # the sink is no DICOM peer, but the proxy serves
        px.wait_log(r"#4 connection from")
        px.wait_log(r"#4 relaying to")
        assert px.stop() == 0
    assert (sink_dir / "1.bin").read_bytes() == bigpdu.read_bytes()
    assert sorted(p.name for p in sink_dir.iterdir()) in (["1.bin", "2.bin"], ["1.bin", "2.part"])
    log = px.log()
    assert "#1 no DICOM PDU (first bytes" in log and "#1 relaying" not in log
    assert "#3 an A-ASSOCIATE-RQ header declaring 0 bytes" in log and "#3 relaying" not in log
    recs = [r for r in px.records() if r["type"] == "association"]
    assert recs[0]["outcome"] == "never-associated"
    assert recs[1]["calling_ae"] == "RAWCLIENT"


def test_first_pdu_and_idle_timeouts(net: Net, tmp_path: Path) -> None:
    with (
        running(net, storescp(tmp_path, UPSTREAM_PORT), tmp_path / "scp.log", port=UPSTREAM_PORT),
        proxy(
            net,
            tmp_path,
            "--upstream",
            f"127.0.0.1:{UPSTREAM_PORT}",
            "--first-pdu-timeout",
            "1",
            "--idle-timeout",
            "1",
        ) as px,
    ):
        silent = net.run(script("rawclient.py", "silent", "127.0.0.1", str(PROXY_PORT)))
        assert silent.stdout.strip() == "closed"
        px.wait_log(r"#1 no A-ASSOCIATE-RQ within 1 s; closed")
        idle = net.run(script("rawclient.py", "hold", "127.0.0.1", str(PROXY_PORT), "10"))
        assert idle.stdout.splitlines() == ["got 2", "got 7 source 2 reason 0"]
        px.wait_log(
            r"#2 idle timeout: nothing relayed for 1 s; A-ABORT \(source 2\) sent to "
            r"client and upstream"
        )
        assert px.stop() == 0
    second = [r for r in px.records() if r["type"] == "association"][-1]
    assert second["outcome"] == "aborted" and second["abort"]["source"] == 2


def test_client_abort_then_close_frees_the_relay_after_linger(net: Net, tmp_path: Path) -> None:
    """The client aborts and closes; the upstream never closes: the proxy closes it once
    nothing was relayed for --linger seconds, and the association slot is free again."""
    seen = tmp_path / "stubborn.txt"
    with (
        running(
            net,
            script("stubborn.py", str(UPSTREAM_PORT), str(seen)),
            tmp_path / "stubborn.log",
            port=UPSTREAM_PORT,
        ),
        proxy(
            net,
            tmp_path,
            "--upstream",
            f"127.0.0.1:{UPSTREAM_PORT}",
            "--linger",
            "1",
            "--max-associations",
            "1",
        ) as px,
    ):
        result = net.run(script("rawclient.py", "abortclose", "127.0.0.1", str(PROXY_PORT)))
        assert result.stdout.splitlines() == ["got 2", "aborted"], result
        px.wait_log(r"#1 the upstream did not close within 1 s of the client closing; closed", 10)
        px.wait_log(r"#1 ended: aborted by the requestor")
        assert seen.read_text().splitlines() == ["eof 1"]  # the client's close was passed on
        again = net.run(script("rawclient.py", "hold", "127.0.0.1", str(PROXY_PORT), "0"))
        assert again.stdout.splitlines() == ["got 2", "got 4", "got 6", "released"], again
        assert px.stop() == 0


def test_a_terminal_nobody_reads_does_not_stall_relaying(net: Net, tmp_path: Path) -> None:
    """The live log goes to a pipe that is never read: once it is full the proxy must go on
    relaying (lines for the terminal are dropped, the files keep everything)."""
    live = tmp_path / "live.log"
    argv = dicomtap_argv(
        "proxy",
        "--listen",
        f"127.0.0.1:{PROXY_PORT}",
        "--upstream",
        f"127.0.0.1:{UPSTREAM_PORT}",
        "--log",
        str(live),
    )
    count = 300  # a live log line each: several times what the pipe holds
    with running(net, storescp(tmp_path, UPSTREAM_PORT), tmp_path / "scp.log", port=UPSTREAM_PORT):
        proc = subprocess.Popen(
            net.wrap(argv),
            stdout=subprocess.PIPE,  # never read
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
            start_new_session=True,
        )
        assert proc.stdout is not None
        fcntl.fcntl(proc.stdout, fcntl.F_SETPIPE_SZ, 4096)  # the smallest pipe: full at once
        try:
            deadline = time.monotonic() + 20
            while not net.listening(PROXY_PORT) and time.monotonic() < deadline:
                time.sleep(0.05)
            result = net.run(
                script("rawclient.py", "echoes", "127.0.0.1", str(PROXY_PORT), str(count)),
                timeout=120,
            )
            assert result.stdout.splitlines()[:2] == ["got 2", f"echoed {count}"], result
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    text = live.read_text()
    assert text.count("C-ECHO Verification SOP Class: 0x0000 Success") == count
    assert "#1 released" in text


def test_a_full_disk_is_said_once_and_relaying_goes_on(net: Net, tmp_path: Path) -> None:
    """Files the proxy cannot write (here /dev/full) cost one line on stderr each, never a
    traceback, and the associations are relayed as ever."""
    with (
        running(net, storescp(tmp_path, UPSTREAM_PORT), tmp_path / "scp.log", port=UPSTREAM_PORT),
        proxy(
            net,
            tmp_path,
            "--upstream",
            f"127.0.0.1:{UPSTREAM_PORT}",
            "--jsonl",
            "/dev/full",
            "--log",
            "/dev/full",
            outputs=False,
        ) as px,
    ):
        for _ in range(3):
            assert _echo(net).returncode == 0
        px.wait_log(r"#3 released")
        assert px.stop() == 0
    log = px.log()
    assert "Traceback" not in log
    assert log.count("dicomtap proxy: cannot write /dev/full: No space left on device") == 1
