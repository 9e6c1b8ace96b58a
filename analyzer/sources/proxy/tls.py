"""TLS contexts for both sides of the proxy: terminate from clients, originate to upstreams.

Terminating TLS means the client's certificate cannot be passed on to the upstream: the proxy
presents its own (``cert``/``key`` of the upstream side) if the upstream asks for one.
``SSLKEYLOGFILE`` (or ``keylog``) is honoured so captures of the encrypted legs stay
decryptable in Wireshark.
"""

from __future__ import annotations

import os
import ssl

from .config import ConfigError, TlsConfig

__all__ = ["client_context", "server_context"]


def server_context(tls: TlsConfig) -> ssl.SSLContext:
    """An SSL context terminating TLS from clients."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _common(ctx, tls, "listener")
    if tls.ca:
        ctx.verify_mode = ssl.CERT_REQUIRED if tls.verify else ssl.CERT_OPTIONAL
    return ctx


def client_context(tls: TlsConfig) -> ssl.SSLContext:
    """An SSL context originating TLS towards an upstream."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not tls.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    _common(ctx, tls, "upstream")
    if not tls.ca and tls.verify:
        ctx.load_default_certs()
    return ctx


def _common(ctx: ssl.SSLContext, tls: TlsConfig, what: str) -> None:
    ctx.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if tls.min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    )
    try:
        if tls.cert and tls.key:
            ctx.load_cert_chain(tls.cert, tls.key)
        if tls.ca:
            ctx.load_verify_locations(tls.ca)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load {what} TLS files: {exc}") from None
    keylog = tls.keylog or os.environ.get("SSLKEYLOGFILE")
    if keylog:
        # Wireshark reads this NSS key log to decrypt a raw capture of the TLS legs.
        ctx.keylog_filename = keylog
