"""TLS on both legs (terminated from the client, originated to the upstream, key log written)
and graceful shutdown (SIGTERM: open associations finish within the grace period, or are
aborted with A-ABORT source 2 on both sides when it runs out)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.objects import write_image
from tests.peers import Net, analyze, dcmtk, running, tool

from .harness import PROXY_PORT, UPSTREAM_PORT, leg_records, proxy, script, storescp

pytestmark = pytest.mark.peers


def _openssl(tmp: Path, *args: str) -> None:
    subprocess.run([tool("openssl"), *args], cwd=tmp, check=True, capture_output=True, timeout=60)


def make_pki(tmp: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all made here."""
    _openssl(
        tmp,
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=dicomtap test CA",
    )
    (tmp / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        _openssl(
            tmp,
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={name}",
        )
        _openssl(
            tmp,
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        )


def test_tls_terminated_and_originated_with_keylog(net: Net, tmp_path: Path) -> None:
    make_pki(tmp_path)
    pki = {
        n: str(tmp_path / n)
        for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")
    }
    keylog = tmp_path / "keys.log"
    scp = [
        *storescp(tmp_path, UPSTREAM_PORT),
        "+tls",
        pki["server.key"],
        pki["server.pem"],
        "+cf",
        pki["ca.pem"],
    ]  # storescp requires a client certificate (its default)
    image = tmp_path / "img.dcm"
    write_image(image, index=1)
    with (
        running(net, scp, tmp_path / "scp.log", port=UPSTREAM_PORT),
        proxy(
            net,
            tmp_path,
            "--upstream",
            f"127.0.0.1:{UPSTREAM_PORT}",
            "--tls-cert",
            pki["server.pem"],
            "--tls-key",
            pki["server.key"],
            "--upstream-tls-ca",
            pki["ca.pem"],
            "--upstream-tls-cert",
            pki["client.pem"],
            "--upstream-tls-key",
            pki["client.key"],
            env={"SSLKEYLOGFILE": str(keylog)},
        ) as px,
    ):
        result = net.run(
            [
                dcmtk("storescu"),
                "+tls",
                pki["client.key"],
                pki["client.pem"],
                "+cf",
                pki["ca.pem"],
                "-aet",
                "SECURE",
                "127.0.0.1",
                str(PROXY_PORT),
                str(image),
            ],
        )
        assert result.returncode == 0, result.stdout + result.stderr
        px.wait_log(r"#1 released")
        # A plain client on the TLS listener is no DICOM: refused by the handshake, logged.
        plain = net.run([dcmtk("echoscu"), "127.0.0.1", str(PROXY_PORT)])
        assert plain.returncode != 0
        assert px.stop() == 0
    log = px.log()
    assert "#1 connection from 127.0.0.1:" in log and "(TLS) on 127.0.0.1:11112" in log
    assert "#1 relaying to 127.0.0.1:11113 (TLS)" in log
    assert "C-STORE CT Image Storage" in log
    assert "#2 TLS handshake from 127.0.0.1:" in log  # the plain client, logged
    secrets = keylog.read_text()
    assert "CLIENT_TRAFFIC_SECRET_0" in secrets or "CLIENT_RANDOM" in secrets
    assert len(secrets.splitlines()) >= 2  # both legs' handshakes
    # The pcapng holds the relayed plaintext: both legs analyse as the same association.
    from_pcap = analyze([px.pcap])
    assert leg_records(from_pcap, PROXY_PORT) == leg_records(px.records())
    legs = [r for r in from_pcap if r["type"] == "association"]
    # The plain client that failed the handshake is on the client leg, with no association.
    assert sorted(r["server"]["port"] for r in legs) == [PROXY_PORT, PROXY_PORT, UPSTREAM_PORT]
    assert [r["outcome"] for r in legs if r["calling_ae"] is None] == ["never-associated"]
    assert {r["calling_ae"] for r in legs} == {"SECURE", None}
    assert [r["status"] for r in from_pcap if r["type"] == "exchange"] == [0, 0]


@pytest.mark.parametrize("grace", ["finish", "abort"])
def test_sigterm_with_grace(net: Net, tmp_path: Path, grace: str) -> None:
    hold, seconds = ("2", "10") if grace == "finish" else ("60", "1")
    with (
        running(net, storescp(tmp_path, UPSTREAM_PORT), tmp_path / "scp.log", port=UPSTREAM_PORT),
        proxy(net, tmp_path, "--upstream", f"127.0.0.1:{UPSTREAM_PORT}", "--grace", seconds) as px,
    ):
        client = subprocess.Popen(
            net.wrap(script("rawclient.py", "hold", "127.0.0.1", str(PROXY_PORT), hold)),
            stdout=subprocess.PIPE,
            text=True,
        )
        px.wait_log(r"#1 accepted 1 of 1 context")
        started = time.monotonic()
        os.kill(px.proc.popen.pid, signal.SIGTERM)
        px.wait_log(r"shutting down: 1 association\(s\) open")
        refused = net.run([dcmtk("echoscu"), "127.0.0.1", str(PROXY_PORT)])
        assert refused.returncode != 0  # no longer accepting
        out, _ = client.communicate(timeout=90)
        assert px.proc.popen.wait(30) == 0
        elapsed = time.monotonic() - started
    recs = px.records()
    assert recs[-1]["type"] == "summary"
    (first,) = [r for r in recs if r["type"] == "association" and r["calling_ae"] == "RAWCLIENT"]
    if grace == "finish":
        assert out.splitlines() == ["got 2", "got 4", "got 6", "released"]
        assert first["outcome"] == "released"
        assert "grace period over" not in px.log()
    else:
        assert out.splitlines() == ["got 2", "got 7 source 2 reason 0"]
        assert elapsed < 20
        assert (
            "#1 shutdown: grace period over; A-ABORT (source 2) sent to client and upstream"
            in px.log()
        )
        assert first["outcome"] == "aborted" and first["abort"]["source"] == 2
        up = [
            r
            for r in analyze([px.pcap])
            if r["type"] == "association" and r["server"]["port"] == UPSTREAM_PORT
        ]
        # On the upstream leg the proxy's A-ABORT stands where the requestor's would: marked
        # in the pcapng as the proxy's own, it is a third party's.
        assert [(r["outcome"], r["abort"]["by"], r["abort"]["source"]) for r in up] == [
            ("aborted", "third-party", 2)
        ]
