"""The relay proper: both sides of one connection once the upstream is connected.

Each chunk a side's transport reads is written unchanged to the other side at once; recording
it (both legs' packets, the client leg's observation) is the connection's
:class:`~.records.Record`'s, after relaying. The only exception is an opt-in rewrite of the
upstream's A-ASSOCIATE-AC, for which its first PDU is held until whole (the framer bounds a
control PDU). Flow control is asyncio's: when a side's transport buffers more than its
high-water mark, the other side stops being read until it drains
(:meth:`Relay.relay_paused`), and a write timer starts; a peer that stops reading for
``write`` seconds ends the relay. A FIN is passed on as a FIN (half-close), a reset as a
reset. Once one side has closed, the other is closed when nothing was relayed for ``linger``
seconds (a peer that never closes must not keep the relay for the idle timeout).

When the proxy ends an association itself (idle or write timeout, shutdown) it sends an
A-ABORT (source 2) to each side that is between PDUs, then closes. Every byte the proxy
writes on its own goes through :meth:`Relay.inject`, which records it as the proxy's.
"""

from __future__ import annotations

import asyncio
import traceback
from pathlib import Path

from analyzer.textsafe import printable
from dissectors import CloseKind
from dissectors.framing import PduFramer
from dissectors.pdu import (
    Abort,
    AbortSource,
    AssociateAc,
    AssociateRq,
    PduType,
    decode_control_pdu,
)

from .frames import PduStream
from .records import Record
from .rewrite import Rewritten, rewrite_ac
from .runtime import Runtime
from .sides import Side, SideEvents
from .transport import Stop, StopReason, close, reset, send

__all__ = ["Relay"]

_ABORT = Abort(AbortSource.SERVICE_PROVIDER, 0).encode()


def _name(client: bool) -> str:
    return "client" if client else "upstream"


def internal_error(exc: BaseException) -> str:
    """The log's words for a defect of the proxy itself, with where it happened (the
    innermost frame), so that a user's log is enough to find it."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"internal error ({type(exc).__name__}: {printable(str(exc))}{where})"


class Relay(SideEvents):
    """The state of one relayed connection: its sides, legs and timers."""

    def __init__(self, rt: Runtime, connection: int, client: Side, rec: Record) -> None:
        self.rt = rt
        self.id = connection
        self.client = client
        self.rec = rec
        self.upstream: Side | None = None
        self.ended = False
        self._done: asyncio.Future[None] | None = None
        self._eof = {True: False, False: False}
        self._timers: dict[bool, asyncio.TimerHandle] = {}
        self._idle: asyncio.TimerHandle | None = None
        self._linger: asyncio.TimerHandle | None = None
        self._last_activity = 0.0
        self._ac: tuple[AssociateRq, Rewritten] | None = None
        self._held = bytearray()
        self._held_frames: PduStream | None = None
        self._held_framer = PduFramer()

    def hold_ac(self, rq: AssociateRq, rewritten: Rewritten) -> None:
        """Rewrite the upstream's A-ASSOCIATE-AC to match the rewritten RQ."""
        self._ac = (rq, rewritten)
        self._held_frames = PduStream()

    # --- running ---------------------------------------------------------------------

    async def run(self, initial: bytes) -> None:
        """Send ``initial`` (the RQ, maybe rewritten, and what followed it) upstream and
        relay until both sides are closed or the relay is stopped."""
        assert self.upstream is not None
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        self._last_activity = loop.time()
        self._forward(False, initial, None)
        for side in (self.client, self.upstream):
            side.events = self
            for chunk in side.take_buffered():
                self.relay_data(side, chunk)
            if side.transport is not None and not side.lost:
                side.transport.resume_reading()
            if side.lost and not self.ended:
                self.relay_lost(side, side.error)
            elif side.eof and not self.ended:
                self.relay_eof(side)
        self._arm_idle()
        try:
            await self._done
        finally:
            self._cancel_timers()

    def _other(self, side: Side) -> Side | None:
        return self.upstream if side.is_client else self.client

    def _end(self) -> None:
        self.ended = True
        self._cancel_timers()
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _cancel_timers(self) -> None:
        for timer in (*self._timers.values(), self._idle, self._linger):
            if timer is not None:
                timer.cancel()
        self._timers.clear()
        self._idle = self._linger = None

    def _arm_idle(self) -> None:
        loop = asyncio.get_running_loop()
        idle = self.rt.config.timeouts.idle
        remaining = self._last_activity + idle - loop.time()
        if remaining <= 0:
            self._stop(Stop(StopReason.IDLE, None, f"idle timeout: nothing relayed for {idle:g} s"))
            return
        self._idle = loop.call_later(remaining, self._arm_idle)

    def _arm_linger(self) -> None:
        """One side has closed: close the other once nothing was relayed for ``linger`` s."""
        self._linger = None
        if self.ended:
            return
        loop = asyncio.get_running_loop()
        linger = self.rt.config.timeouts.linger
        remaining = self._last_activity + linger - loop.time()
        if remaining > 0:
            self._linger = loop.call_later(remaining, self._arm_linger)
            return
        closed_client = self._eof[True]
        self.rt.event(
            self.id,
            f"the {_name(not closed_client)} did not close within {linger:g} s of the "
            f"{_name(closed_client)} closing; closed",
        )
        for client in (True, False):
            side = self.client if client else self.upstream
            if side is not None and side.transport is not None:
                close(side.transport, half=False)
            self._closed_by_proxy(client, CloseKind.FIN)
        self._end()

    # --- SideEvents ------------------------------------------------------------------

    def relay_data(self, side: Side, data: bytes) -> None:
        if self.ended:
            return
        try:
            self._last_activity = asyncio.get_running_loop().time()
            sent = data
            if not side.is_client and self._ac is not None:
                held = self._hold(data)
                if held is None:
                    return
                sent, data = held
            self._forward(not side.is_client, sent, data)
        except Exception as exc:  # a bug here must not take the proxy down
            self._internal(exc)

    def relay_eof(self, side: Side) -> None:
        if self.ended or self._eof[side.is_client]:
            return
        self._eof[side.is_client] = True
        ts = self.rt.now()
        other = self._other(side)
        rec = self.rec
        if side.is_client:
            rec.closed(True, CloseKind.FIN, ts)
            if other is not None and other.transport is not None:
                close(other.transport, half=True)
                rec.upstream_fin(True, ts)
        else:
            if self._ac is not None and self._held:
                held = bytes(self._held)  # a first PDU cut short: passed on as it came
                self._ac = self._held_frames = None
                self._held = bytearray()
                self._forward(True, held, held)
            rec.upstream_fin(False, ts)
            if self.client.transport is not None:
                close(self.client.transport, half=True)
            rec.closed(False, CloseKind.FIN, ts)
        if all(self._eof.values()):
            for s in (self.client, self.upstream):
                if s is not None and s.transport is not None:
                    s.transport.close()
            self._end()
        elif self._linger is None:
            self._arm_linger()

    def relay_lost(self, side: Side, exc: Exception | None) -> None:
        if self.ended:
            return
        if exc is None:
            self.relay_eof(side)  # a clean close (TLS closes whole): as a FIN
            return
        self._stop(Stop(StopReason.RESET, side.is_client, f"{_name(side.is_client)} reset ({exc})"))

    def relay_paused(self, side: Side) -> None:
        other = self._other(side)
        if other is not None and other.transport is not None and not other.lost:
            other.transport.pause_reading()
        timeout = self.rt.config.timeouts.write
        text = f"write timeout: the {_name(side.is_client)} read nothing for {timeout:g} s"
        stop = Stop(StopReason.WRITE, side.is_client, text)
        self._timers[side.is_client] = asyncio.get_running_loop().call_later(
            timeout, self._stop, stop
        )

    def relay_resumed(self, side: Side) -> None:
        timer = self._timers.pop(side.is_client, None)
        if timer is not None:
            timer.cancel()
        other = self._other(side)
        if other is not None and other.transport is not None and not other.lost:
            other.transport.resume_reading()

    # --- moving bytes ------------------------------------------------------------------

    def _forward(self, to_client: bool, sent: bytes, received: bytes | None) -> None:
        """Write ``sent`` to one side; both legs record it after (the source leg what was
        ``received``, None when already recorded; they differ only where a rewrite applied)."""
        dst = self.client if to_client else self.upstream
        assert dst is not None and dst.transport is not None
        if not dst.transport.is_closing():
            dst.transport.write(sent)
        self.rec.forwarded(to_client, self.rt.now(), sent, received)

    def inject(self, to_client: bool, pdu: bytes) -> bool:
        """The proxy itself writes ``pdu`` to a side (an A-ASSOCIATE-RJ, an A-ABORT) and
        records it as written by the proxy; False if the side no longer takes data."""
        side = self.client if to_client else self.upstream
        if side is None or side.transport is None or not send(side.transport, pdu):
            return False
        self.rec.injected(to_client, self.rt.now(), pdu)
        return True

    def _hold(self, data: bytes) -> tuple[bytes, bytes] | None:
        """Hold the upstream's first PDU until whole; rewrite it if it is an AC. Returns
        (bytes to send, bytes received), or None while more is needed."""
        assert self._ac is not None and self._held_frames is not None
        frames = self._held_frames
        self._held += data
        # The upstream leg is not observed: the first PDU is framed here, by the same framer.
        frames.consume(self._held_framer.receive_data(memoryview(data)))
        first = frames.controls[0] if frames.controls else None
        if first is None and (
            frames.first is None
            or (frames.first[0] == PduType.A_ASSOCIATE_AC and frames.current_end is not None)
        ):
            return None  # the AC is not whole yet
        rq, rewritten = self._ac
        held = bytes(self._held)
        self._ac = self._held_frames = None
        self._held = bytearray()
        if first is None or first.pdu_type != PduType.A_ASSOCIATE_AC:
            return held, held  # not an AC (or not one the framer could take): as it is
        ac, _ = decode_control_pdu(first.pdu_type, first.body)
        assert isinstance(ac, AssociateAc)
        done = rewrite_ac(held[: first.end], ac, self.rt.config.rewrite, rewritten, rq)
        for change in done.changes:
            self.rt.event(self.id, f"rewrite: {change}")
        if done.refused:
            self.rt.event(self.id, f"rewrite not applied: {done.refused}")
        return done.data + held[first.end :], held

    # --- ending it ourselves -----------------------------------------------------------

    def _internal(self, exc: Exception) -> None:
        self.rt.event(self.id, f"{internal_error(exc)}; closing")
        self.abort_both("internal error")

    def _stop(self, stop: Stop) -> None:
        if self.ended:
            return
        if stop.reason == StopReason.RESET:
            self.rt.event(self.id, f"{stop.text}; reset passed on")
            self.reset_both(stop.client)
        else:
            self.abort_both(stop.text, stuck=stop.client)

    def reset_both(self, by_client: bool | None) -> None:
        """A reset on one side: reset the other, record both."""
        self.rec.reset_both(by_client, self.rt.now())
        if self.upstream is not None and self.upstream.transport is not None:
            reset(self.upstream.transport)
        if self.client.transport is not None:
            reset(self.client.transport)
        self._end()

    def _closed_by_proxy(self, client: bool, kind: CloseKind) -> None:
        """Record that the proxy closed its socket to the client (or to the upstream)."""
        self.rec.proxy_closed(client, kind, self.rt.now())

    def abort_both(self, text: str, stuck: bool | None = None) -> None:
        """End the association ourselves: A-ABORT to each side between PDUs (a side that
        stopped reading is reset instead), then close; both legs record it."""
        if self.ended:
            return
        sent: list[str] = []
        for to_client in (True, False):
            side = self.client if to_client else self.upstream
            if side is None or side.transport is None or side.transport.is_closing():
                continue
            if stuck is to_client:
                reset(side.transport)
                self._closed_by_proxy(to_client, CloseKind.RST)
                continue
            if self.rec.at_boundary(to_client) and self.inject(to_client, _ABORT):
                sent.append(_name(to_client))
            side.transport.close()
            self._closed_by_proxy(to_client, CloseKind.FIN)
        told = f"A-ABORT (source 2) sent to {' and '.join(sent)}" if sent else "closed"
        self.rt.event(self.id, f"{text}; {told}")
        self._end()
