"""One association of the probe: a new :class:`~.wire.Wire`, pynetdicom's A-ASSOCIATE over
it, and an orderly end (A-RELEASE, or A-ABORT when the release is not answered)."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pynetdicom.pdu_primitives import (
    AsynchronousOperationsWindowNegotiation,
    UserIdentityNegotiation,
)
from pynetdicom.presentation import build_context, build_role

from analyzer.sources.proxy.pcapng import PcapngWriter
from dissectors.observer import Emit

from .catalog import ContextSpec
from .client import ProbeAE
from .options import ProbeOptions
from .wire import TroubleError, Wire

__all__ = ["Link", "Target", "open_association"]


@dataclass(frozen=True, slots=True)
class Target:
    """Where the probe connects, resolved once per run, and what every connection shares."""

    ip: str
    family: int
    tls: ssl.SSLContext | None
    emit: Emit
    pcap: PcapngWriter | None
    keep: int


@dataclass(slots=True)
class Link:
    """A connection and the association on it (``assoc`` None: it never got that far)."""

    wire: Wire
    assoc: Any | None

    @property
    def established(self) -> bool:
        return self.assoc is not None and bool(self.assoc.is_established)

    def close(self) -> None:
        """Release (pynetdicom aborts when the release is not answered in time), then end
        the connection and its observation."""
        assoc = self.assoc
        if assoc is not None and assoc.is_established:
            with contextlib.suppress(Exception):
                assoc.release()
        if assoc is not None:
            with contextlib.suppress(Exception):
                assoc.kill()  # the reactor threads, when the association never got going
        self.wire.finish()


def _ext_neg(opts: ProbeOptions, roles: bool) -> list[Any]:
    items: list[Any] = [
        build_role(r.sop_class, scu_role=r.scu, scp_role=r.scp) for r in opts.roles if roles
    ]
    if opts.async_window is not None:
        window = AsynchronousOperationsWindowNegotiation()
        window.maximum_number_operations_invoked = opts.async_window[0]
        window.maximum_number_operations_performed = opts.async_window[1]
        items.append(window)
    if opts.identity is not None:
        identity = UserIdentityNegotiation()
        identity.user_identity_type = int(opts.identity.kind)
        identity.primary_field = opts.identity.primary
        if opts.identity.secondary:
            identity.secondary_field = opts.identity.secondary
        identity.positive_response_requested = opts.identity.response_requested
        items.append(identity)
    return items


def open_association(
    opts: ProbeOptions,
    target: Target,
    connection: int,
    contexts: Sequence[ContextSpec],
    *,
    roles: bool = True,
    handlers: Sequence[tuple[Any, Any]] = (),
) -> Link:
    """Connect and request an association proposing ``contexts`` (at most 128).

    The asynchronous window and user identity of ``opts`` are sent on every association (an
    SCP that requires a user identity would reject a scan without it); ``roles``: its role
    selections too (the check association's; a scan proposes other SOP classes). A
    connection that fails is returned with its wire's ``trouble`` set and no association.
    """
    wire = Wire(
        connection,
        target.ip,
        opts.port,
        target.family,
        timeout=opts.timeout,
        emit=target.emit,
        pcap=target.pcap,
        keep=target.keep,
        pdu_limit=opts.pdu_limit,
        tls=target.tls,
        server_hostname=opts.host if target.tls is not None else None,
    )
    try:
        wire.connect()
    except TroubleError:
        return Link(wire, None)
    ae = ProbeAE(opts.calling_ae, wire)
    ae.acse_timeout = opts.timeout
    ae.dimse_timeout = opts.timeout
    ae.network_timeout = opts.timeout
    proposed = [build_context(c.abstract_syntax, list(c.transfer_syntaxes)) for c in contexts]
    assoc = ae.associate(
        target.ip,
        opts.port,
        proposed,
        ae_title=opts.called_ae,
        max_pdu=opts.max_pdu,
        ext_neg=_ext_neg(opts, roles),
        evt_handlers=list(handlers),
    )
    return Link(wire, assoc)
