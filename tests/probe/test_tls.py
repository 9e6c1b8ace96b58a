"""DICOM over TLS: a DCMTK storescp with certificates made here by openssl (as the proxy's
TLS tests make them), probed with and without TLS, with and without a client certificate."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.peers import Net
from tests.proxy.test_tls_shutdown import make_pki

from .harness import probe, storescp

pytestmark = pytest.mark.peers

TLS_PORT = 2762  # IANA's port for DICOM over TLS
PLAIN_PORT = 11112


def test_tls(net: Net, tmp_path: Path) -> None:
    make_pki(tmp_path)
    pki = {n: str(tmp_path / n) for n in ("ca.pem", "client.pem", "client.key", "server.pem")}
    tls_scp = ["+tls", str(tmp_path / "server.key"), pki["server.pem"], "+cf", pki["ca.pem"]]
    target = f"127.0.0.1:{TLS_PORT}"
    client = ["--tls-cert", pki["client.pem"], "--tls-key", pki["client.key"]]
    with (
        storescp(net, tmp_path, *tls_scp, port=TLS_PORT),
        storescp(net, tmp_path, port=PLAIN_PORT),
    ):
        good = probe(
            net,
            target,
            "--called",
            "S",
            "--tls",
            "--tls-ca",
            pki["ca.pem"],
            *client,
            "--format",
            "json",
        )
        no_cert = probe(net, target, "--called", "S", "--tls", "--tls-ca", pki["ca.pem"])
        untrusted = probe(net, target, "--called", "S", "--tls", *client)
        plain_to_tls = probe(net, target, "--called", "S", "--format", "json")
        tls_to_plain = probe(
            net, f"127.0.0.1:{PLAIN_PORT}", "--called", "S", "--tls", "--tls-ca", pki["ca.pem"]
        )
    assert good.returncode == 0, good.stdout
    doc = good.json()
    assert doc["tls"] is True and doc["timing_ms"]["tls_handshake"] > 0
    assert doc["services"][0]["status"] == 0
    assert no_cert.returncode == 2
    assert "TLS: the server ended the TLS session (does the SCP require a client certificate?" in (
        no_cert.first_line
    )
    assert untrusted.returncode == 2
    assert "TLS handshake: the server's certificate was not accepted" in untrusted.first_line
    assert plain_to_tls.returncode == 2
    plain = plain_to_tls.json()
    assert plain["summary"].startswith(
        f"DICOM CRITICAL - {target} DICOMTAP->S: the SCP reset the connection without answering"
    )
    # On the DICOM TLS port, the findings rules name the mismatch too.
    assert "tls-on-dicom-port" in [f["code"] for f in plain["findings"]]
    assert tls_to_plain.returncode == 2
    assert "TLS handshake" in tls_to_plain.first_line and "plain DICOM port?" in (
        tls_to_plain.first_line
    )
