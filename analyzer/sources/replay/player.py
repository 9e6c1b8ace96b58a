"""The player: runs the script of one association against a live peer.

It sends the played side's PDUs as the script gives them (through
:class:`~.pdata.PDataWriter`), and at each :class:`~.script.Await` waits until the live
peer has done the same (its AC, its k-th request, the final response to our k-th request,
its A-RELEASE-RP ...) as the :class:`~.live.LiveState` built from the replay's own observer
says. Every wait ends after ``timeout`` seconds without a byte from the peer. When the peer
cannot give what is waited for any more (it aborted, closed, rejected, or sent a request the
capture does not have), the player stops and says why; the association is then aborted.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from analyzer.sources.proxy.config import RewriteConfig
from analyzer.sources.proxy.rewrite import rewrite_rq
from analyzer.textsafe import printable
from dissectors import CloseKind
from dissectors.dimse import CommandField, decode_command_set
from dissectors.framing import PduBody, PduEnd, PduStart
from dissectors.pdu import (
    PDU_HEADER,
    Abort,
    AbortReason,
    AbortSource,
    AssociateAc,
    AssociateRj,
    AssociateRq,
    PduType,
    ReleaseRp,
    ReleaseRq,
    abort_reason_text,
    abort_source_text,
    context_result_text,
    decode_control_pdu,
    reject_reason_text,
)

from .captured import Captured
from .command import MESSAGE_ID_BEING_RESPONDED_TO, set_us
from .link import Link, LinkClosedError
from .live import LiveState
from .options import Framing, Pace, ReplayOptions
from .pdata import PDataWriter, WriterBrokenError
from .script import Await, AwaitKind, Close, Message, Send, Step

__all__ = ["Player", "rewritten_rq"]

#: How long to wait for the peer to close after a completed release (PS3.8 leaves it to
#: the requestor; either side may be first).
_CLOSE_GRACE = 2.0
_CONTROL_TYPES = range(1, 8)


def rewritten_rq(opts: ReplayOptions, pdu: bytes) -> tuple[bytes, list[str]]:
    """The A-ASSOCIATE-RQ with the AE titles and Maximum Length asked for (the proxy's
    rewrite: only the changed fields change), and what changed."""
    if opts.calling_ae is None and opts.called_ae is None and opts.max_pdu is None:
        return pdu, []
    rules = RewriteConfig(
        calling_ae={"*": opts.calling_ae} if opts.calling_ae else {},
        called_ae={"*": opts.called_ae} if opts.called_ae else {},
        max_pdu=opts.max_pdu,
    )
    rq, _ = decode_control_pdu(PduType.A_ASSOCIATE_RQ, pdu[PDU_HEADER.size :])
    assert isinstance(rq, AssociateRq)
    done = rewrite_rq(pdu, rq, rules)
    notes = [
        printable(c if c.startswith("A-ASSOCIATE-RQ") else f"A-ASSOCIATE-RQ {c}")
        for c in done.changes
    ]
    if done.refused is not None:
        notes.append(f"A-ASSOCIATE-RQ sent as captured: {done.refused}")
    return done.data, notes


class _Stop(Exception):
    """The script cannot go on (the reason is in ``Player.stopped``)."""


class Player:
    """Plays one side of ``captured`` over ``link``; ``live`` follows the peer."""

    def __init__(
        self, opts: ReplayOptions, captured: Captured, link: Link, live: LiveState
    ) -> None:
        self.opts = opts
        self.captured = captured
        self.link = link
        self.live = live
        self.notes: list[str] = []
        self.stopped: str | None = None
        """Why the script could not be played to its end (None: it was)."""
        self.skipped = 0
        self.renumbered = 0
        self._them = "the target" if opts.requestor else "the requestor"
        a = captured.association
        peer_info = a.acceptor_info if opts.requestor else a.requestor_info
        self.writer = PDataWriter(
            self._send,
            on_command=self._on_command,
            note=self.notes.append,
            captured_max=(peer_info.max_pdu_length or 0) if peer_info else 0,
            keep_framing=opts.framing == Framing.CAPTURED,
        )
        self._ours: list[tuple[int | None, bool]] = []  # our requests: (message ID, sent)
        self._their_ids: dict[int, int] = {}  # captured Message ID of a peer request -> live
        self._awaited_requests = 0
        self._sent_types: set[int] = set()
        self._unknown: tuple[int, int] | None = None  # a PDU of an undefined type being read
        self._anchor: tuple[int, float] | None = None  # (captured ts, monotonic) for pacing
        # What the peer did that the script has already waited for (so it is no surprise).
        self._awaited: set[AwaitKind] = set()

    # --- the script --------------------------------------------------------------------

    def play(self, steps: Iterable[Step]) -> None:
        """Play ``steps``, then end the association the way the script (or the peer) left it."""
        try:
            for step in steps:
                match step:
                    case Send():
                        self._pace(step.ts)
                        self._records(step)
                    case Await():
                        self._await(step)
                    case Close(kind):
                        self._pace(step.ts)
                        self._close(kind)
                    case Message():
                        pass
            self.writer.flush()
        except _Stop:
            pass
        except WriterBrokenError as exc:
            self.stopped = str(exc)
        except LinkClosedError:
            if self._peer_ends():
                self.notes.append(f"{self._gone()} while the replay was sending, as captured")
            else:
                self.stopped = self._gone()
        except TimeoutError:
            self.stopped = (
                f"{self._them} took no data for {self.opts.timeout:g} s while the replay "
                "was sending"
            )
        self._end()

    def _deadline(self) -> float:
        return self.link.last_activity + self.opts.timeout

    def _send(self, data: bytes | bytearray | memoryview) -> None:
        self.link.send(data, self._deadline)

    def _records(self, step: Send) -> None:
        records = step.records
        if (
            not any(type(r) is PduBody or type(r) is PduStart for r in records)
            and not self._unknown
        ):
            self.writer.feed(records)  # the bulk: payload of a data set
        else:
            for record in records:
                match record:
                    case PduBody(pdu_type, body):
                        self.writer.flush()
                        self._control(pdu_type, body)
                    case PduStart(pdu_type, length) if pdu_type not in _CONTROL_TYPES:
                        self._unknown = (pdu_type, length)
                    case PduEnd() if self._unknown is not None:
                        self._undefined_pdu(*self._unknown)
                        self._unknown = None
                    case _:
                        self.writer.feed((record,))

    def _pace(self, ts: int) -> None:
        """Wait until ``ts`` is due: as long after the last thing waited for (the anchor) as
        in the capture. The anchor stays on the captured timeline while the replay sends: a
        send that is late is caught up by the next, rather than every captured gap being
        added to the time each send took (a data set in thousands of segments would
        otherwise take several times as long as captured)."""
        if self.opts.pace != Pace.CAPTURED:
            return
        if self._anchor is None:
            self._anchor = (ts, time.monotonic())
            return
        cap, at = self._anchor
        due = at + max(0, ts - cap) / 1e9
        if due <= time.monotonic():
            return
        self.writer.send_complete()
        while time.monotonic() < due and self.link.receive(due):
            pass
        self._anchor = (ts, due)

    # --- sending -----------------------------------------------------------------------

    def _control(self, pdu_type: int, body: bytes) -> None:
        pdu = PDU_HEADER.pack(pdu_type, 0, len(body)) + body
        if pdu_type == 1 and self.opts.requestor:
            pdu = self._rewritten_rq(pdu)
        if self.writer.in_pdu:
            self.notes.append("a control PDU came in the middle of a P-DATA-TF: not sent")
            return
        self._sent_types.add(pdu_type)
        self._send(pdu)

    def _rewritten_rq(self, pdu: bytes) -> bytes:
        data, notes = rewritten_rq(self.opts, pdu)
        self.notes.extend(notes)
        return data

    def _undefined_pdu(self, pdu_type: int, length: int) -> None:
        """A PDU of a type PS3.8 does not define: the framer steps over its body, so the
        replay sends its header and as many zero bytes."""
        if length:
            self.notes.append(
                f"a PDU of undefined type 0x{pdu_type:02X} was sent with {length} zero byte(s) "
                "for its body (the framer does not keep it)"
            )
        self.writer.flush()
        self._send(PDU_HEADER.pack(pdu_type, 0, length) + bytes(min(length, 1 << 16)))
        left = length - min(length, 1 << 16)
        while left > 0:
            n = min(left, 1 << 16)
            self._send(bytes(n))
            left -= n

    def _on_command(self, context_id: int, raw: bytes) -> tuple[bool, bytes | None]:
        cmd, _ = decode_command_set(raw)
        if cmd is None:
            return False, None
        if cmd.is_response:
            captured = cmd.message_id_being_responded_to
            live = self._their_ids.get(captured) if captured is not None else None
            if live is None or live == captured:
                return False, None
            renumbered = set_us(raw, MESSAGE_ID_BEING_RESPONDED_TO, live)
            if renumbered is not None:
                self.renumbered += 1
            return False, renumbered
        if cmd.command_field == CommandField.C_CANCEL_RQ:
            return False, None
        reason = self._skip_reason(context_id, cmd.has_dataset)
        self._ours.append((cmd.message_id, reason is None))
        if reason is not None:
            self.skipped += 1
            self.notes.append(f"{cmd.label} (message ID {cmd.message_id}) not sent: {reason}")
        return reason is not None, None

    def _skip_reason(self, context_id: int, has_dataset: bool) -> str | None:
        if not self.opts.requestor:
            return None
        ac = self.live.accepted
        if ac is None:
            return "the target did not accept the association"
        captured = self.captured.association.context(context_id)
        if captured is None or not captured.accepted:
            return None  # the captured requestor used it anyway: that is what is replayed
        for ctx in ac.presentation_contexts:
            if ctx.context_id != context_id:
                continue
            if ctx.result != 0:
                return (
                    f"the target did not accept presentation context {context_id} "
                    f"({context_result_text(ctx.result)})"
                )
            wanted = captured.accepted_transfer_syntax
            if has_dataset and wanted and ctx.transfer_syntax != wanted:
                return (
                    f"the target accepted presentation context {context_id} with "
                    f"{printable(str(ctx.transfer_syntax))}; the data set was captured in {wanted}"
                )
            return None
        return f"the target's A-ASSOCIATE-AC does not answer presentation context {context_id}"

    # --- waiting -----------------------------------------------------------------------

    def _released(self) -> bool:
        return self.live.release_rp or 6 in self._sent_types

    def _await(self, step: Await) -> None:
        if not self._satisfied(step):
            self.writer.flush()
            # After a release (or once the replay closed), either side may close first.
            grace = step.kind == AwaitKind.CLOSE and (
                self._released() or self.link.we_closed is not None
            )
            start = time.monotonic()
            while not self._satisfied(step):
                if not grace:
                    self._check_alive(step)
                limit = start + _CLOSE_GRACE if grace else self._deadline()
                if time.monotonic() >= limit:
                    if grace:
                        return
                    self._stop(
                        f"waited {self.opts.timeout:g} s for {self._what(step)}: {self._them} "
                        "sent nothing more"
                    )
                if not self.link.receive(limit) and self.link.peer_closed is not None and grace:
                    return
        self._after(step)

    def _what(self, step: Await) -> str:
        match step.kind:
            case AwaitKind.REQUEST:
                label = step.command.label if step.command else "request"
                return f"its request {step.index} ({label})"
            case AwaitKind.FINAL:
                label = step.command.label if step.command else "response"
                return f"the {label} to request {step.index}"
            case AwaitKind.ASSOCIATE_ANSWER:
                return "its answer to the A-ASSOCIATE-RQ"
            case AwaitKind.ASSOCIATE_RQ:
                return "an A-ASSOCIATE-RQ"
            case AwaitKind.CLOSE:
                return "it to close the connection"
            case _:
                return f"its {step.kind.value}"

    def _satisfied(self, step: Await) -> bool:
        live = self.live
        match step.kind:
            case AwaitKind.ASSOCIATE_RQ:
                return live.rq is not None
            case AwaitKind.ASSOCIATE_ANSWER:
                return live.answer is not None
            case AwaitKind.REQUEST:
                return len(live.requests) >= step.index
            case AwaitKind.FINAL:
                if step.index > len(self._ours):
                    return True
                mid, sent = self._ours[step.index - 1]
                if not sent or mid is None:
                    return True
                occurrence = sum(1 for m, s in self._ours[: step.index] if s and m == mid)
                return live.finals[mid] >= occurrence
            case AwaitKind.RELEASE_RQ:
                return live.release_rq
            case AwaitKind.RELEASE_RP:
                return live.release_rp
            case AwaitKind.ABORT:
                return live.abort is not None
            case AwaitKind.CLOSE:
                return self.link.peer_closed is not None
            case AwaitKind.UNDEFINED_PDU:
                return live.undefined >= step.index

    def _check_alive(self, step: Await) -> None:
        """Stop when the peer can no longer do what ``step`` waits for: it did something
        else the capture does not show there."""
        live = self.live
        kind = step.kind
        seen = self._awaited
        if live.abort is not None and AwaitKind.ABORT not in seen and kind != AwaitKind.ABORT:
            self._stop(
                f"{self._them} aborted the association (A-ABORT from the "
                f"{abort_source_text(live.abort.source)}: "
                f"{abort_reason_text(live.abort.source, live.abort.reason)}) where the capture "
                f"has {self._what(step)}"
            )
        if isinstance(live.answer, AssociateRj) and AwaitKind.ASSOCIATE_ANSWER not in seen:
            self._stop(
                "the target rejected the association "
                f"({reject_reason_text(live.answer.source, live.answer.reason)})"
            )
        if self.link.peer_closed is not None and kind != AwaitKind.CLOSE:
            self._stop(f"{self._gone()} where the capture has {self._what(step)}")
        if live.release_rq and AwaitKind.RELEASE_RQ not in seen and kind != AwaitKind.RELEASE_RQ:
            self._stop(
                f"the {self.opts.peer_side} asked to release the association where the "
                f"capture has {self._what(step)}"
            )
        if kind != AwaitKind.REQUEST and len(live.requests) > self._awaited_requests:
            extra = live.requests[self._awaited_requests]
            self._stop(
                f"the {self.opts.peer_side} sent a {extra.label} the capture does not have "
                f"(its request {self._awaited_requests + 1})"
            )

    def _peer_ends(self) -> bool:
        """The capture shows the peer ending the connection (abort, close or reset first)."""
        a = self.captured.association
        peer_is_requestor = not self.opts.requestor
        if a.abort is not None and a.abort.by_requestor == peer_is_requestor:
            return True
        return a.closed_by_requestor is not None and a.closed_by_requestor == peer_is_requestor

    def _gone(self) -> str:
        how = "reset" if self.link.peer_closed == CloseKind.RST else "closed"
        return f"{self._them} {how} the connection"

    def _after(self, step: Await) -> None:
        live = self.live
        self._awaited.add(step.kind)
        match step.kind:
            case AwaitKind.ASSOCIATE_ANSWER:
                ac = live.accepted
                if ac is not None and ac.user_information is not None:
                    self.writer.max_length = ac.user_information.maximum_length or 0
                if isinstance(live.answer, AssociateRj) and isinstance(step.pdu, AssociateAc):
                    self._stop(
                        "the target rejected the association the capture shows accepted ("
                        f"{reject_reason_text(live.answer.source, live.answer.reason)})"
                    )
            case AwaitKind.ASSOCIATE_RQ:
                rq = live.rq
                if rq is not None and rq.user_information is not None:
                    self.writer.max_length = rq.user_information.maximum_length or 0
            case AwaitKind.REQUEST:
                got = live.requests[step.index - 1]
                want = step.command
                self._awaited_requests = max(self._awaited_requests, step.index)
                if want is not None and got.command_field != want.command_field:
                    self._stop(
                        f"request {step.index} of the {self.opts.peer_side} is a {got.label}; "
                        f"the capture has a {want.label} there"
                    )
                if want is not None and want.message_id is not None and got.message_id is not None:
                    self._their_ids[want.message_id] = got.message_id
            case _:
                pass
        if self._anchor is not None or self.opts.pace == Pace.CAPTURED:
            self._anchor = (step.ts, time.monotonic())

    def _stop(self, why: str) -> None:
        self.stopped = why
        raise _Stop

    # --- ending ------------------------------------------------------------------------

    def _close(self, kind: CloseKind) -> None:
        self.writer.flush()
        self.link.close(kind)

    def _established(self) -> bool:
        up = self.live.accepted is not None if self.opts.requestor else 2 in self._sent_types
        return up and self.live.abort is None and 7 not in self._sent_types

    def _end(self) -> None:
        link = self.link
        try:
            if link.open and self._established() and not self._released():
                if self.live.release_rq and not self.writer.in_pdu:
                    self.notes.append("the replay answered the peer's A-RELEASE-RQ")
                    self._send(ReleaseRp().encode())
                    self._sent_types.add(6)
                elif (
                    self.stopped is None
                    and self.opts.requestor
                    and (self.captured.association.ac_ts is None)
                ):
                    self.notes.append(
                        "the target accepted the association the capture shows rejected: the "
                        "replay released it"
                    )
                    self._send(ReleaseRq().encode())
                    self._sent_types.add(5)
                    self._wait(lambda: self.live.release_rp or self.live.abort is not None)
                elif not self.writer.in_pdu:
                    why = self.stopped or "the captured association ended without a release"
                    self.notes.append(f"the replay aborted the association: {why}")
                    self._send(
                        Abort(AbortSource.SERVICE_USER, AbortReason.REASON_NOT_SPECIFIED).encode()
                    )
                    self._sent_types.add(7)
        except (LinkClosedError, TimeoutError):
            pass
        if link.we_closed is None:
            link.close(CloseKind.FIN)
        self._wait(lambda: link.peer_closed is not None, _CLOSE_GRACE)
        link.finish()

    def _wait(self, done: object, most: float | None = None) -> None:
        """Read until ``done()`` or the timeout (or ``most`` seconds)."""
        assert callable(done)
        limit = time.monotonic() + (most if most is not None else self.opts.timeout)
        while not done() and time.monotonic() < limit:
            if not self.link.receive(limit) and self.link.peer_closed is not None:
                return
