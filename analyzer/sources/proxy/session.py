"""One relayed connection: admission, the A-ASSOCIATE-RQ, decisions, upstream connect, relay.

From accept until its A-ASSOCIATE-RQ is whole a connection is *pending* (see
:mod:`.admission`): it holds no association slot, and must get there within the first-PDU
timeout (TLS handshake included). Its first PDU header decides (see :mod:`.opening`) before
any upstream is contacted: only an A-ASSOCIATE-RQ goes on; anything else is closed, an
oversized A-ASSOCIATE-RQ answered with an A-ASSOCIATE-RJ. The opening is framed here, by a
framer of its own (the observer's framer, :class:`~dissectors.framing.PduFramer`, on the same
bytes): deciding never waits for recording. Every byte the client sent is recorded on the
client leg (pcapng, observer) as it arrives.

Then: refuse (an A-ASSOCIATE-RJ with the PS3.8 codes of :mod:`.access`, or a close, as
configured; both logged) for an address or calling AE title not allowed, a called AE title
without a route, or no association slot left; else connect to the upstream (bounded by the
connect timeout; a failure is refused and logged with its class: refused, timeout, DNS,
TLS) and hand over to :class:`~.relay.Relay`.
"""

from __future__ import annotations

import asyncio
import ssl
import time

from dissectors import CloseKind
from dissectors.framing import PduFramer
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
from .frames import ControlPdu, PduStream, first_header
from .opening import Opening, OpeningKind, classify
from .relay import Relay, internal_error
from .rewrite import rewrite_rq
from .runtime import Runtime, Target
from .sides import Side
from .transport import close, ends, reset, upstream_error

__all__ = ["Session"]

#: How long a client the proxy closed on is given to close its side (ARTIM), before a reset.
_LINGER = 2.0
#: Bytes such a client may still send that are recorded (the rest is read and dropped) ...
_RECORDED_AFTER_CLOSE = 64 << 10
#: ... and that are read at all, before it is reset.
_READ_AFTER_CLOSE = 16 << 20


class Session:
    """Relays one client connection; :meth:`run` returns when both sides are closed."""

    def __init__(
        self,
        rt: Runtime,
        connection: int,
        listener: Listener,
        client: Side,
        *,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.rt = rt
        self.id = connection
        self.listener = listener
        self.client = client
        self.tls = tls
        self.task: asyncio.Task[None] | None = None
        self.relay: Relay | None = None
        self._rq: AssociateRq | None = None
        self._evicted = False
        self._accepted = time.monotonic()
        assert client.transport is not None
        peer = client.transport.get_extra_info("peername")
        local = client.transport.get_extra_info("sockname")
        self.peer = Address(peer[0], peer[1])
        # The client leg starts at accept, so that connections are numbered in the order
        # they were accepted.
        self.rec = rt.recording.connection(
            connection, (peer[0], peer[1]), (local[0], local[1]), rt.now()
        )

    # --- entry -----------------------------------------------------------------------

    def evict(self) -> None:
        """Reset this pending connection at once: too many connections are pending."""
        waited = time.monotonic() - self._accepted
        what = "refused and closing" if self._rq is not None else "without an A-ASSOCIATE-RQ"
        self._evicted = True
        self.rt.event(self.id, f"{what} for {waited:.1f} s while too many connections wait; reset")
        self._reset_client()
        if self.task is not None:
            self.task.cancel()

    def turn_away(self) -> None:
        """Reset this new connection at once: far too many connections are pending."""
        self.rt.event(self.id, f"connection from {self.peer}: far too many pending; reset")
        self._reset_client()
        self.rec.ended(self.rt.now())

    async def run(self) -> None:
        """Relay until both sides have closed; never raises but for cancellation."""
        try:
            await self._run()
        except asyncio.CancelledError:
            if self._evicted:
                return
            if self.relay is not None:
                self.relay.abort_both("shutdown: grace period over")
            raise
        except Exception as exc:  # one connection's bug must not stop the proxy
            self.rt.event(self.id, f"{internal_error(exc)}; closing")
            if self.relay is not None:
                self.relay.abort_both("internal error")
        finally:
            self.rt.admission.leave(self)
            relay = self.relay
            upstream = relay.upstream if relay else None
            for side in (self.client, upstream):
                if side is not None and side.transport and not side.transport.is_closing():
                    reset(side.transport)
            self.rec.ended(self.rt.now())

    async def _run(self) -> None:
        rt = self.rt
        self.relay = relay = Relay(rt, self.id, self.client, self.rec)
        tls = " (TLS)" if self.listener.tls is not None else ""
        rt.event(self.id, f"connection from {self.peer}{tls} on {self.listener.address}")
        ip_allowed = rt.access.ip_allowed(self.peer.host)
        if not ip_allowed and rt.config.access.on_ip_refused == FailurePolicy.CLOSE:
            rt.event(self.id, f"refused {self.peer.host}: {IP_NOT_ALLOWED.text} (closed)")
            await self._close_client()
            return
        timeout = rt.config.timeouts.first_pdu
        try:
            async with asyncio.timeout(timeout):
                if self.tls is not None and not await self._start_tls():
                    return
                got = await self._read_opening()
        except TimeoutError:
            rt.event(self.id, f"no A-ASSOCIATE-RQ within {timeout:g} s; closed")
            await self._close_client()
            return
        if got is None:
            return
        opening, initial, control = got
        if opening.kind == OpeningKind.RQ_TOO_LARGE:
            # Answered at once, and not read further: what follows is not worth reading.
            rt.event(
                self.id, f"refused: {RQ_TOO_LARGE.text} ({opening.text}) ({RQ_TOO_LARGE.codes})"
            )
            relay.inject(True, RQ_TOO_LARGE.reject_pdu())
            self._reset_client()
            return
        if control is None:
            rt.event(self.id, f"{opening.text}: not an association; reset")
            self._reset_client()
            return
        rq, _ = decode_control_pdu(PduType.A_ASSOCIATE_RQ, control.body)
        assert isinstance(rq, AssociateRq)
        self._rq = rq
        calling, called = ae_title_text(rq.calling_ae), ae_title_text(rq.called_ae)
        refusal: Refusal | None = None
        if not ip_allowed:
            refusal = IP_NOT_ALLOWED
        elif not rt.access.calling_allowed(calling):
            refusal = CALLING_AE_NOT_ALLOWED
        target = rt.target(called)
        if refusal is None and target is None:
            refusal = CALLED_AE_UNKNOWN
        if refusal is None and not rt.admission.associate(self):
            refusal = OVER_LIMIT
        if refusal is not None or target is None:
            await self._refuse(refusal or CALLED_AE_UNKNOWN, FailurePolicy.REJECT, calling, called)
            return
        sent = bytes(initial)
        if rt.config.rewrite.active:
            rewritten = rewrite_rq(sent[: control.end], rq, rt.config.rewrite)
            for change in rewritten.changes:
                rt.event(self.id, f"rewrite: {change}")
            if rewritten.refused:
                rt.event(self.id, f"rewrite not applied: {rewritten.refused}")
            sent = rewritten.data + sent[control.end :]
            relay.hold_ac(rq, rewritten)
        if not await self._connect(target, calling, called):
            return
        await relay.run(sent)

    # --- before the relay --------------------------------------------------------------

    async def _start_tls(self) -> bool:
        assert self.tls is not None
        try:
            await self.client.start_tls(self.tls)
        except (OSError, ssl.SSLError) as exc:
            why = getattr(exc, "reason", None) or exc or type(exc).__name__
            self.rt.event(self.id, f"TLS handshake from {self.peer} failed: {why}; closed")
            return False
        return True

    async def _read_opening(self) -> tuple[Opening, bytearray, ControlPdu | None] | None:
        """Read until the first PDU header says what the client is doing, and for an
        A-ASSOCIATE-RQ until it is whole. Returns the verdict, the bytes read and the
        A-ASSOCIATE-RQ (None for anything else), or None when the client went away."""
        rt, rec = self.rt, self.rec
        framer, stream = PduFramer(), PduStream()
        initial = bytearray()
        while True:
            try:
                data = await self.client.read()
            except ConnectionError:
                rec.closed(True, CloseKind.RST, rt.now())
                rt.event(self.id, "client reset the connection before its A-ASSOCIATE-RQ")
                return None
            if not data:
                rec.closed(True, CloseKind.FIN, rt.now())
                what = "a whole A-ASSOCIATE-RQ" if initial else "sending anything"
                rt.event(self.id, f"client closed before {what}")
                assert self.client.transport is not None
                self.client.transport.close()
                rec.proxy_closed(True, CloseKind.FIN, rt.now())
                return None
            rec.client_data(rt.now(), data)
            initial += data
            stream.consume(framer.receive_data(memoryview(data)))
            opening = classify(initial, first_header(initial))
            if opening is None:
                continue
            if opening.kind != OpeningKind.ASSOCIATE_RQ:
                return opening, initial, None
            if stream.controls:
                return opening, initial, stream.controls[0]

    async def _refuse(
        self, refusal: Refusal, policy: FailurePolicy, calling: str, called: str
    ) -> None:
        """Turn the client away: an A-ASSOCIATE-RJ if the policy says so, then a close."""
        assert self.relay is not None
        answer = policy == FailurePolicy.REJECT
        how = refusal.codes if answer else "closed"
        self.rt.event(self.id, f"refused {calling}→{called}: {refusal.text} ({how})")
        if answer:
            self.relay.inject(True, refusal.reject_pdu())
        await self._close_client()

    def _reset_client(self) -> None:
        """Reset the connection: a client that is not speaking DICOM gets no more of the
        proxy's time (nor a lingering socket)."""
        assert self.client.transport is not None
        reset(self.client.transport)
        self.rec.proxy_closed(True, CloseKind.RST, self.rt.now())

    async def _close_client(self) -> None:
        """FIN to the client, then give it a moment to close its side, as the acceptor's
        ARTIM timer would; what it still sends is read and (up to a bound) recorded. A client
        that does not close is reset."""
        rt, rec = self.rt, self.rec
        transport = self.client.transport
        assert transport is not None
        half = transport.can_write_eof()
        close(transport, half=half)
        rec.proxy_closed(True, CloseKind.FIN, rt.now())
        if not half:
            return
        read = 0
        try:
            async with asyncio.timeout(_LINGER):
                await self.client.drain()
                while data := await self.client.read():
                    if read < _RECORDED_AFTER_CLOSE:
                        rec.client_data(rt.now(), data)
                    else:
                        rec.discarded(len(data))
                    read += len(data)
                    if read > _READ_AFTER_CLOSE:
                        raise ConnectionError("too much after the close")
        except (TimeoutError, ConnectionError):
            reset(transport)
            rec.proxy_closed(True, CloseKind.RST, rt.now())
            return
        if read > _RECORDED_AFTER_CLOSE:
            rec.acknowledged(rt.now())
        rec.closed(True, CloseKind.FIN, rt.now())
        transport.close()

    async def _connect(self, target: Target, calling: str, called: str) -> bool:
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
            local, remote = ends(transport)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            reason = upstream_error(exc, target, timeout)
            rt.event(self.id, f"cannot relay: {reason}")
            await self._refuse(UPSTREAM_UNREACHABLE, rt.config.on_upstream_failure, calling, called)
            return False
        self.relay.upstream = upstream
        route = f" (route {target.route})" if target.route else ""
        tls = " (TLS)" if target.tls else ""
        where = f"{target.address}{tls}"
        self.rec.upstream_opened(local, remote, rt.now(), where)
        rt.event(self.id, f"relaying to {where}{route}")
        return True
