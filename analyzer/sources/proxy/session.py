"""One relayed connection: read the A-ASSOCIATE-RQ, decide, connect upstream, relay.

Before the A-ASSOCIATE-RQ is complete the proxy buffers it (at most 1 MiB), because the
upstream depends on its called AE title and a refusal must answer it; every byte the client
sent is on the client leg (pcapng, observer) as it arrives. Then: refuse (an
A-ASSOCIATE-RJ with the PS3.8 codes of :mod:`.access`, or a close, as configured; both
logged), or connect to the upstream (bounded by the connect timeout; a failure is refused
and logged with its class: refused, timeout, DNS, TLS) and hand over to :class:`~.relay.Relay`.
The first PDU must arrive within the first-PDU timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from dissectors import CloseKind
from dissectors.pdu import AssociateRq, PduType, ae_title_text, decode_control_pdu

from .access import (
    CALLED_AE_UNKNOWN,
    CALLING_AE_NOT_ALLOWED,
    IP_NOT_ALLOWED,
    OVER_LIMIT,
    RQ_TOO_LARGE,
    UPSTREAM_UNREACHABLE,
    Refusal,
)
from .config import Address, FailurePolicy, Listener
from .pcapng import Interface, TcpLeg
from .relay import Relay
from .rewrite import rewrite_rq
from .runtime import Runtime, Target
from .sides import Side
from .tap import ClientTap
from .transport import close, read_pdu, upstream_error

__all__ = ["Session"]

#: How long a refused client is given to close the connection itself after the RJ (ARTIM).
_LINGER = 2.0


class Session:
    """Relays one client connection; :meth:`run` returns when both sides are closed."""

    def __init__(
        self,
        rt: Runtime,
        connection: int,
        listener: Listener,
        client: Side,
        *,
        over_limit: bool,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.rt = rt
        self.id = connection
        self.listener = listener
        self.client = client
        self.over_limit = over_limit
        self.tls = tls
        self.relay: Relay | None = None
        self._rq: AssociateRq | None = None

    # --- entry -----------------------------------------------------------------------

    async def run(self) -> None:
        """Relay until both sides have closed; never raises but for cancellation."""
        try:
            await self._run()
        except asyncio.CancelledError:
            if self.relay is not None:
                self.relay.abort_both("shutdown: grace period over")
            raise
        except Exception as exc:  # one connection's bug must not stop the proxy
            self.rt.log.event(self.id, f"internal error ({type(exc).__name__}: {exc}); closing")
            if self.relay is not None:
                self.relay.abort_both("internal error")
        finally:
            relay = self.relay
            for side in (self.client, relay.upstream if relay else None):
                if side is not None and side.transport and not side.transport.is_closing():
                    side.transport.abort()
            if relay is not None:
                relay.tap.finish()
            if self.rt.pcap is not None:
                self.rt.pcap.flush()
            self.rt.log.forget(self.id)

    def _warn(self, text: str) -> None:
        self.rt.log.event(self.id, text)

    async def _run(self) -> None:
        rt = self.rt
        ts = rt.now()
        assert self.client.transport is not None
        peer = self.client.transport.get_extra_info("peername")
        local = self.client.transport.get_extra_info("sockname")
        client_text = str(Address(peer[0], peer[1]))
        if self.tls is not None:
            try:
                await self.client.start_tls(self.tls, rt.config.timeouts.first_pdu)
            except (OSError, TimeoutError, ssl.SSLError) as exc:
                why = getattr(exc, "reason", None) or exc or type(exc).__name__
                rt.log.event(self.id, f"TLS handshake from {client_text} failed: {why}; closed")
                return
        tap = ClientTap(
            self.id,
            (peer[0], peer[1]),
            (local[0], local[1]),
            ts,
            emit=rt.emit,
            pcap=rt.pcap,
            keep=rt.config.keep,
            parse_limit=rt.config.limits.max_parse_pdu,
            warn=self._warn,
        )
        self.relay = Relay(rt, self.id, self.client, tap)
        tls = " (TLS)" if self.listener.tls is not None else ""
        rt.log.event(self.id, f"connection from {client_text}{tls} on {self.listener.address}")
        refusal: Refusal | None = None
        if not rt.access.ip_allowed(peer[0]):
            refusal = IP_NOT_ALLOWED
            if rt.config.access.on_ip_refused == FailurePolicy.CLOSE:
                rt.log.event(self.id, f"refused {peer[0]}: {refusal.text} (closed)")
                self._close_client()
                return
        elif self.over_limit:
            refusal = OVER_LIMIT
        first = await self._read_first()
        if first is None:
            return
        initial, rq_length = first
        if rq_length:
            rq, _ = decode_control_pdu(PduType.A_ASSOCIATE_RQ, initial[6:rq_length])
            assert isinstance(rq, AssociateRq)
            self._rq = rq
        elif refusal is None and rt.config.needs_rq and initial[0] == PduType.A_ASSOCIATE_RQ:
            refusal = RQ_TOO_LARGE  # an RQ, but not buffered whole
        calling = ae_title_text(self._rq.calling_ae) if self._rq else None
        called = ae_title_text(self._rq.called_ae) if self._rq else None
        if refusal is None and calling is not None and not rt.access.calling_allowed(calling):
            refusal = CALLING_AE_NOT_ALLOWED
        target = rt.target(called)
        if refusal is None and target is None:
            refusal = CALLED_AE_UNKNOWN
        if refusal is not None or target is None:
            policy = (
                rt.config.access.on_ip_refused
                if refusal is IP_NOT_ALLOWED
                else FailurePolicy.REJECT
            )
            await self._refuse(refusal or CALLED_AE_UNKNOWN, policy, calling, called)
            return
        if self._rq is not None and rt.config.rewrite.active:
            rewritten = rewrite_rq(initial[:rq_length], rt.config.rewrite)
            for change in rewritten.changes:
                rt.log.event(self.id, f"rewrite: {change}")
            if rewritten.refused:
                rt.log.event(self.id, f"rewrite not applied: {rewritten.refused}")
            initial = rewritten.data + initial[rq_length:]
            self.relay.hold_ac(self._rq, rewritten)
        if not await self._connect(target, calling, called):
            return
        await self.relay.run(initial)

    # --- before the relay --------------------------------------------------------------

    async def _read_first(self) -> tuple[bytes, int] | None:
        """Read until the A-ASSOCIATE-RQ is whole (or the stream is plainly not one).

        Returns the bytes read and the RQ's length (0 when it is not a whole RQ, which the
        proxy then relays as it is), or None when the client went away or timed out."""
        assert self.relay is not None
        tap = self.relay.tap

        def record(data: bytes) -> None:
            tap.data(True, self.rt.now(), data)

        timeout = self.rt.config.timeouts.first_pdu
        try:
            async with asyncio.timeout(timeout):
                data, length, eof = await read_pdu(self.client.read, PduType.A_ASSOCIATE_RQ, record)
        except TimeoutError:
            self.rt.log.event(self.id, f"no A-ASSOCIATE-RQ within {timeout:g} s; closed")
            self._close_client()
            return None
        except ConnectionError:
            tap.close(True, CloseKind.RST, self.rt.now())
            self.rt.log.event(self.id, "client reset the connection before its A-ASSOCIATE-RQ")
            return None
        if eof:
            self.rt.log.event(self.id, "client closed before a whole PDU")
            tap.close(True, CloseKind.FIN, self.rt.now())
            self._close_client()
            return None
        return data, length

    async def _refuse(
        self, refusal: Refusal, policy: FailurePolicy, calling: str | None, called: str | None
    ) -> None:
        """Turn the client away: an A-ASSOCIATE-RJ (if the policy and the stream allow), then
        give it a moment to close its side, as the acceptor's ARTIM timer would."""
        assert self.relay is not None and self.client.transport is not None
        tap = self.relay.tap
        titles = f" {calling}→{called}" if calling is not None else ""
        answer = policy == FailurePolicy.REJECT and self._rq is not None
        how = refusal.codes if answer else "closed"
        self.rt.log.event(self.id, f"refused{titles}: {refusal.text} ({how})")
        if answer:
            pdu = refusal.reject_pdu()
            self.client.write(pdu)
            tap.data(False, self.rt.now(), pdu)
            with contextlib.suppress(TimeoutError, ConnectionError):
                async with asyncio.timeout(_LINGER):
                    await self.client.drain()
                    while data := await self.client.read():
                        tap.data(True, self.rt.now(), data)
                    tap.close(True, CloseKind.FIN, self.rt.now())
        self._close_client()

    def _close_client(self) -> None:
        assert self.relay is not None and self.client.transport is not None
        close(self.client.transport, half=False)
        self.relay.tap.close(False, CloseKind.FIN, self.rt.now())

    async def _connect(self, target: Target, calling: str | None, called: str | None) -> bool:
        rt = self.rt
        assert self.relay is not None
        timeout = rt.config.timeouts.connect
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, upstream = await loop.create_connection(
                    lambda: Side(False),
                    target.address.host,
                    target.address.port,
                    ssl=target.tls,
                    server_hostname=target.address.host if target.tls else None,
                )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            reason = upstream_error(exc, target, timeout)
            rt.log.event(self.id, f"cannot relay: {reason}")
            await self._refuse(UPSTREAM_UNREACHABLE, rt.config.on_upstream_failure, calling, called)
            return False
        local = transport.get_extra_info("sockname")
        remote = transport.get_extra_info("peername")
        leg = TcpLeg(rt.pcap, Interface.UPSTREAM_LEG, (local[0], local[1]), (remote[0], remote[1]))
        leg.open(rt.now())
        self.relay.upstream, self.relay.u_leg = upstream, leg
        route = f" (route {target.route})" if target.route else ""
        tls = " (TLS)" if target.tls else ""
        rt.log.upstream(self.id, f"{target.address}{tls}")
        rt.log.event(self.id, f"relaying to {target.address}{tls}{route}")
        return True
