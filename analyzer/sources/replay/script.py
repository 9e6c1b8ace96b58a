"""One association of a capture as a script: what the played side sent, what it waited for.

The capture is read again, as it streams, through the one TCP reassembler
(:class:`~dissectors.FlowTable`) and its observer, fed only the segments of the
association's connection. The observer's payload tap gives the framer records of the
played side (what will be sent, data sets included, chunk by chunk); its events give what
the other side did, in capture order. Together they make the script, a lazy sequence of
:data:`Step`:

* :class:`Send`: framer records of the played side, with the time they were captured;
* :class:`Await`: something the other side did that the played side answered (an
  A-ASSOCIATE-AC, a request, the final response to one of our requests, an A-RELEASE-RQ
  or -RP, an A-ABORT, a close); the replay waits for the live equivalent before going on;
* :class:`Close`: the played side closed (FIN) or reset (RST) the connection;
* :class:`Message`: a DIMSE message of the played side (for ``--dry-run`` and notes).

Nothing is held beyond the records of one TCP segment: the bytes are sent before the next
segment is read.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

from analyzer.model import Association
from analyzer.sources.pcap import CaptureFile
from dissectors import (
    AssociationEnded,
    CloseKind,
    ConnectionClosed,
    DimseMessageObserved,
    DissectorEvent,
    FlowTable,
    PduObserved,
)
from dissectors.dimse import PENDING_STATUSES, CommandField, CommandSet
from dissectors.dimse.assembly import AssembledMessage
from dissectors.framing import FramerRecord
from dissectors.observer import DEFAULT_KEEP
from dissectors.pdu import Abort, AssociateAc, AssociateRj, AssociateRq, ReleaseRp, ReleaseRq

__all__ = ["Await", "AwaitKind", "Close", "Message", "Send", "Step", "script"]


@dataclass(frozen=True, slots=True)
class Send:
    """Framer records of the played side (memoryviews valid until the next step)."""

    records: tuple[FramerRecord, ...]
    ts: int
    frame: int | None


class AwaitKind(StrEnum):
    """What the other side did."""

    ASSOCIATE_RQ = "A-ASSOCIATE-RQ"
    ASSOCIATE_ANSWER = "A-ASSOCIATE answer"
    REQUEST = "request"
    FINAL = "final response"
    RELEASE_RQ = "A-RELEASE-RQ"
    RELEASE_RP = "A-RELEASE-RP"
    ABORT = "A-ABORT"
    CLOSE = "close"
    UNDEFINED_PDU = "PDU of an undefined type"


@dataclass(frozen=True, slots=True)
class Await:
    """The other side did something, at ``ts``; the replay waits for the live equivalent.

    REQUEST: the ``index``-th request of the other side (from 1), ``command`` its captured
    command set. FINAL: the final response to the played side's ``index``-th request.
    UNDEFINED_PDU: the ``index``-th PDU of a type PS3.8 does not define.
    ``pdu``: the captured control PDU (AC, RJ, A-ABORT ...).
    """

    kind: AwaitKind
    ts: int
    frame: int | None
    index: int = 0
    command: CommandSet | None = None
    pdu: AssociateRq | AssociateAc | AssociateRj | ReleaseRq | ReleaseRp | Abort | None = None
    close: CloseKind | None = None


@dataclass(frozen=True, slots=True)
class Close:
    """The played side closed its end of the connection."""

    kind: CloseKind
    ts: int
    frame: int | None


@dataclass(frozen=True, slots=True)
class Message:
    """A DIMSE message the played side sent (complete when this step comes)."""

    message: AssembledMessage
    pending: bool = False
    """A response with a Pending status (more follow)."""


Step = Send | Await | Close | Message


class _Builder:
    """Turns the observer's output for one connection into steps."""

    def __init__(self, requestor: bool, lossy: bool) -> None:
        self.requestor = requestor  # the played side is the requestor
        # The capture lost bytes of the other side: its messages are incomplete for that
        # reason, not because the connection ended in the middle of them.
        self.lossy = lossy
        self.steps: list[Step] = []
        self.connection: int | None = None
        self.ended = False
        self._their_requests = 0
        self._their_undefined = 0
        self._our_requests = 0
        self._outstanding: dict[int, int] = {}  # our request's message ID -> its index

    def _ours(self, from_requestor: bool) -> bool:
        return from_requestor == self.requestor

    def _mine(self, connection: int) -> bool:
        if self.connection is None:
            self.connection = connection
        return connection == self.connection

    def tap(
        self,
        connection: int,
        from_requestor: bool,
        records: Sequence[FramerRecord],
        ts: int,
        frame: int | None,
    ) -> None:
        if self._mine(connection) and self._ours(from_requestor) and not self.ended:
            self.steps.append(Send(tuple(records), ts, frame))

    def event(self, event: DissectorEvent) -> None:
        if not self._mine(event.connection) or self.ended:
            return
        match event:
            case PduObserved(from_requestor=by_requestor, pdu=pdu) if pdu is not None:
                if not self._ours(by_requestor):
                    self._their_pdu(pdu, event.ts, event.frame)
            case PduObserved(from_requestor=by_requestor, pdu_type=pdu_type, complete=True):
                if not self._ours(by_requestor) and not 1 <= pdu_type <= 7:
                    self._their_undefined += 1
                    self.steps.append(
                        Await(
                            AwaitKind.UNDEFINED_PDU,
                            event.end_ts,
                            event.end_frame,
                            index=self._their_undefined,
                        )
                    )
            case DimseMessageObserved(from_requestor=by_requestor, message=message):
                if self._ours(by_requestor):
                    self._our_message(message)
                else:
                    self._their_message(message)
            case ConnectionClosed(by_requestor=by_requestor, kind=kind, ts=ts, frame=frame):
                if self._ours(by_requestor):
                    self.steps.append(Close(kind, ts, frame))
                else:
                    self.steps.append(Await(AwaitKind.CLOSE, ts, frame, close=kind))
            case AssociationEnded():
                self.ended = True
            case _:
                pass

    def _their_pdu(
        self,
        pdu: AssociateRq | AssociateAc | AssociateRj | ReleaseRq | ReleaseRp | Abort,
        ts: int,
        frame: int | None,
    ) -> None:
        kind = {
            AssociateRq: AwaitKind.ASSOCIATE_RQ,
            AssociateAc: AwaitKind.ASSOCIATE_ANSWER,
            AssociateRj: AwaitKind.ASSOCIATE_ANSWER,
            ReleaseRq: AwaitKind.RELEASE_RQ,
            ReleaseRp: AwaitKind.RELEASE_RP,
            Abort: AwaitKind.ABORT,
        }[type(pdu)]
        self.steps.append(Await(kind, ts, frame, pdu=pdu))

    def _our_message(self, message: AssembledMessage) -> None:
        cmd = message.command
        if not cmd.is_response and cmd.command_field != CommandField.C_CANCEL_RQ:
            self._our_requests += 1
            self._outstanding[cmd.message_id if cmd.message_id is not None else -1] = (
                self._our_requests
            )
        self.steps.append(Message(message, cmd.is_response and cmd.status in PENDING_STATUSES))

    def _their_message(self, message: AssembledMessage) -> None:
        if not message.complete and not self.lossy:
            return  # cut by the end of the connection: nothing answered it
        cmd = message.command
        if not cmd.is_response:
            self._their_requests += 1
            self.steps.append(
                Await(
                    AwaitKind.REQUEST,
                    message.ts,
                    message.frame,
                    index=self._their_requests,
                    command=cmd,
                )
            )
            return
        if cmd.status in PENDING_STATUSES:
            return
        mid = cmd.message_id_being_responded_to
        index = self._outstanding.pop(mid if mid is not None else -1, None)
        if index is not None:
            self.steps.append(
                Await(AwaitKind.FINAL, message.end_ts, message.end_frame, index=index, command=cmd)
            )


def _packed(ip: str) -> bytes:
    return ipaddress.ip_address(ip).packed


def script(
    path: str,
    association: Association,
    *,
    requestor: bool,
    lossy: bool = False,
    keep: int = DEFAULT_KEEP,
) -> Iterator[Step]:
    """The steps of ``association`` (read from ``path`` again), played as the requestor (or
    the acceptor); ``lossy``: the capture lost bytes of the other side. Raises
    :class:`~analyzer.errors.InputError` if the file cannot be read."""
    a = association
    ends = {(_packed(a.client.ip), a.client.port), (_packed(a.server.ip), a.server.port)}
    first = a.start_frame or 0
    last = a.end_frame
    builder = _Builder(requestor, lossy)
    table = FlowTable(builder.event, keep=keep, payload=builder.tap)
    with CaptureFile(path) as capture:
        for seg in capture.segments():
            frame = seg.frame or 0
            if frame < first:
                continue
            if last is not None and frame > last:
                break
            if (seg.src, seg.sport) not in ends or (seg.dst, seg.dport) not in ends:
                continue
            table.feed(seg)
            if builder.steps:
                yield from builder.steps
                builder.steps.clear()
            if builder.ended:
                return
        table.finish()
        yield from builder.steps
