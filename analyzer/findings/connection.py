"""Connections to a DICOM port that never became an association: probes, refusals, TLS."""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.model import Finding, Outcome, Party, Severity

from .facts import Facts, seconds


def never_associated(f: Facts) -> Iterator[Finding]:
    a = f.a
    if a.outcome != Outcome.NEVER_ASSOCIATED:
        yield from _tls_answer(f)
        return
    sent = a.requestor_pdus.bytes
    lasted = seconds(a.duration_ns or 0)
    frames = (a.start_frame, a.end_frame)
    if a.tls_client_hello:
        yield f.finding(
            "tls-on-dicom-port",
            Severity.ERROR,
            "TLS on one side only",
            f"The client {a.client} opened the connection to {a.server} with a TLS handshake "
            "(ClientHello), but the server answered as a plain DICOM port: no association was "
            f"made and the connection ended after {lasted}.",
            "Make both sides agree: either enable DICOM TLS on the server (usually on its own "
            "port, 2762 by convention) and point the client there, or turn TLS off on the client "
            f"for port {a.server.port}.",
            frames=frames,
            ts=a.start_ts,
            requestor_sent=True,
        )
        return
    if not a.syn_answered:
        if a.close_kind is not None and a.closed_by == Party.ACCEPTOR:
            yield f.finding(
                "connection-refused",
                Severity.ERROR,
                "Connection refused",
                f"{a.client} tried to connect to {a.server} and was refused (TCP reset): nothing "
                f"listens on port {a.server.port} at {a.server.ip}, or a firewall rejects it.",
                f"Check that the DICOM application on {a.server.ip} is running and listens on port "
                f"{a.server.port} (not 104 vs 11112 or a vendor port), and that no firewall "
                "rejects "
                f"connections from {a.client.ip}.",
                frames=frames,
                ts=a.start_ts,
            )
        else:
            yield f.finding(
                "connection-unanswered",
                Severity.ERROR,
                "Connection attempt unanswered",
                f"{a.client} tried to connect to {a.server} and got no answer in the capture: "
                "the host is down or unreachable, or a firewall drops the packets.",
                f"Check the IP address and port configured for the server ({a.server}), that the "
                "host is up, and that firewalls on the way allow the connection.",
                frames=frames,
                ts=a.start_ts,
            )
        return
    who = {Party.REQUESTOR: "the client", Party.ACCEPTOR: "the server"}.get(
        a.closed_by or Party.THIRD_PARTY, "nobody"
    )
    yield f.finding(
        "never-associated",
        Severity.WARNING,
        "Connection without an association",
        f"{a.client} connected to the DICOM port {a.server} but sent no A-ASSOCIATE-RQ "
        f"({sent} byte(s) sent); {who} closed the connection after {lasted}.",
        "This is what a port probe, a load balancer's health check or a network scanner does. "
        "If the client is a DICOM device, it may be speaking another protocol or using TLS "
        "while this port expects plain DICOM.",
        frames=frames,
        ts=a.start_ts,
    )


#: The port IANA registered for DICOM over TLS (PS3.15 B.1).
DICOM_TLS_PORT = 2762


def _tls_answer(f: Facts) -> Iterator[Finding]:
    """A plain A-ASSOCIATE-RQ that a TLS server could not read: it answers with a TLS alert,
    or (on the DICOM TLS port) closes without a word."""
    a = f.a
    if a.outcome == Outcome.NEVER_ASSOCIATED:
        return
    silent_close = (
        a.server.port == DICOM_TLS_PORT
        and a.outcome == Outcome.TRANSPORT_DROPPED
        and a.closed_by == Party.ACCEPTOR
        and a.acceptor_pdus.total == 0
        and not a.server_head
    )
    if not a.tls_server_answer and not silent_close:
        return
    answer = (
        "answered with a TLS record"
        if a.tls_server_answer
        else f"closed the connection without answering, on port {DICOM_TLS_PORT} (DICOM over TLS)"
    )
    yield f.finding(
        "tls-on-dicom-port",
        Severity.ERROR,
        "TLS on one side only",
        f"The client {a.client} sent a plain A-ASSOCIATE-RQ, but the server {a.server} {answer}: "
        "it expects DICOM over TLS on this port.",
        "Enable TLS on the client for this server (with the certificates the server trusts), or "
        "point the client to the server's plain DICOM port.",
        frames=(a.rq_frame, a.end_frame),
        ts=a.start_ts,
        requestor_sent=False,
    )
