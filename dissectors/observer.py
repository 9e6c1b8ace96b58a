"""The association observer: bytes of one TCP connection in, typed events out.

One :class:`AssociationObserver` per connection. Whoever owns the bytes (the flow table for
a capture, the proxy for a relayed connection) calls :meth:`~AssociationObserver.data`,
:meth:`~AssociationObserver.gap`, :meth:`~AssociationObserver.closed` and finally
:meth:`~AssociationObserver.finish`; events go to the ``emit`` callable given at
construction, in the order they happened. The observer never raises for what it is fed:
anything malformed becomes a :class:`~dissectors.events.Violation`.

Payload tap. Tools that need the bytes themselves (export of data sets to Part-10 files,
in-place anonymization of a capture, replay of one side) get them from the same framer,
with their stream offsets, by passing ``payload``: a callable given, after the observer has
acted on them, the :mod:`~dissectors.framing` records each call produced, with the
connection, the direction, and the time and frame of the bytes. Among them are
:class:`~dissectors.framing.PdvStart` (presentation context, message control header),
:class:`~dissectors.framing.PdvChunk` (payload and stream offset),
:class:`~dissectors.framing.PdvLost` and :class:`~dissectors.framing.Hole` (gaps),
:class:`~dissectors.framing.PdvEnd`, and whole control PDUs. A stream offset counts the
bytes (data and gaps) of that direction given to the observer before it, so for a capture
it is the TCP stream offset. Chunks are views of the caller's buffer: copy what you keep.
Without a tap nothing is spent on it::

    def tap(connection, from_requestor, records, ts, frame):
        for record in records:
            match record:
                case PdvStart(context_id, control, length, offset):
                    ...  # a fragment of a command (control & 1) or data set begins
                case PdvChunk(data, offset):
                    spool.write_at(offset, data)
                case PdvLost(size, offset) | Hole(size, offset):
                    spool.missing(offset, size)

    table = FlowTable(events.append, payload=tap)  # or AssociationObserver(..., payload=tap)

Third parties. A middlebox that relays a connection (``dicomtap proxy``) sometimes writes
on its own: an A-ABORT or A-ASSOCIATE-RJ to a client after a write timeout or a refused
calling AE, or a close (FIN/RST) of one leg. It says so with ``injected=True``: on the
:class:`~dissectors.tcp.Segment` it gives a :class:`~dissectors.tcp.FlowTable` (data, FIN
or RST), or straight to an observer::

    table.feed(Segment(ts, frame, proxy, 104, client, port, seq, ack, PSH | ACK, abort_pdu,
                       injected=True))  # the A-ABORT the proxy wrote to the client
    observer.data(False, abort_pdu, ts, frame, injected=True)  # the same, to an observer
    observer.closed(False, CloseKind.FIN, ts, frame, injected=True)  # proxy closed on it

``from_client`` is the direction the bytes travel (False: towards the client), as for any
data; injected bytes must be whole PDUs written between PDUs of that direction. The
state machines then take them as received by the other side but sent by nobody, the PDU
is reported with ``injected=True`` (:attr:`~dissectors.events.PduObserved.sender` is
``third-party``), and the association's outcome (:func:`dissectors.outcome.ending`)
names a third party as who rejected, aborted or closed, instead of the peer.

Detection: with the TCP handshake seen, the client's first bytes must be an
A-ASSOCIATE-RQ; without it, an A-ASSOCIATE-RQ at the start of either direction settles
the roles, and otherwise both directions are scanned for a P-DATA-TF carrying a command set
(the association is then *partial*).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .dimse.assembly import AssembledMessage
from .dimse.exchanges import ExchangeTracker
from .events import (
    AssociationEnded,
    AssociationStarted,
    CloseKind,
    ConnectionClosed,
    ConnectionWithoutDicom,
    Detection,
    DimseMessageObserved,
    DissectorEvent,
    Endpoint,
    ExchangeObserved,
    Outcome,
    StreamGap,
    StreamResynced,
    TcpAnomaly,
    Violation,
    ViolationKind,
)
from .framing import FramerRecord, PduFramer, plausible_header
from .outcome import ending
from .pdu.constants import PduType, pdu_name
from .pdu.items import Defect
from .pdu.pdus import (
    Abort,
    AssociateAc,
    AssociateRq,
    ControlPdu,
    decode_control_pdu,
    decode_cut_control_pdu,
)
from .streamside import StreamSide
from .ul_fsm import AssociationFsm, Event, FsmViolation, State

#: Bytes of each data set kept for display (the rest is counted).
DEFAULT_KEEP = 64 * 1024
#: Bytes held per side while deciding whether a connection carries DICOM.
DETECTION_HOLD = 64 * 1024
#: First bytes of each direction kept (a TLS record there says one side spoke TLS).
HEAD_BYTES = 16

#: Violation records an association reports at most, in all and of one kind (sender, kind,
#: code, table cell): a hostile stream can break a rule at every PDU. The rest are counted
#: (:attr:`~dissectors.events.AssociationEnded.violations_unreported`).
MAX_VIOLATIONS = 200
MAX_VIOLATIONS_OF_A_KIND = 20

Emit = Callable[[DissectorEvent], None]
PayloadTap = Callable[[int, bool, Sequence[FramerRecord], int, int | None], None]
"""``(connection, from_requestor, records, ts, frame)``: the framer's records for one call."""


class AssociationObserver:
    """Observes one TCP connection and reports the DICOM association on it.

    ``client``/``server`` are the TCP roles as far as the caller knows them; ``handshake``
    says whether the connection was seen from its SYN (so the streams start at offset 0).
    Without a handshake the roles may be swapped once an A-ASSOCIATE-RQ shows who the
    requestor is. ``keep`` is the number of bytes kept from the start of each data set;
    ``payload`` an optional tap on the framed bytes (see the module's docstring).

    What a direction needs to read DICOM (its framer's and assembler's state, the accepted
    contexts, the exchanges) is made with the first byte either side sends: a connection
    that never carries any (a port scan, a SYN flood, a peer that is down) costs a few
    hundred bytes while it is open, not kilobytes.
    """

    __slots__ = (
        "_aborted",
        "_ac",
        "_accepted",
        "_closes",
        "_contexts",
        "_emit",
        "_exchanges",
        "_finished",
        "_frame",
        "_fsm",
        "_handshake",
        "_idle_before_end",
        "_keep",
        "_last_frame",
        "_last_pdu_end",
        "_last_ts",
        "_payload",
        "_rq",
        "_scanning",
        "_sides",
        "_swapped",
        "_ts",
        "_violation_kinds",
        "_violations_reported",
        "_violations_unreported",
        "client",
        "connection",
        "is_dicom",
        "server",
    )

    def __init__(
        self,
        connection: int,
        client: Endpoint,
        server: Endpoint,
        emit: Emit,
        *,
        ts: int,
        frame: int | None,
        handshake: bool,
        keep: int = DEFAULT_KEEP,
        payload: PayloadTap | None = None,
    ) -> None:
        self.connection = connection
        self._payload = payload
        self.client = client
        self.server = server
        self._emit = emit
        self._ts = ts
        self._frame = frame
        self._handshake = handshake
        self._keep = keep
        self._swapped = False
        self.is_dicom: bool | None = None
        """True once DICOM was found, False when ruled out, None while undecided (read it,
        do not set it)."""
        self._scanning = False
        self._fsm: AssociationFsm | None = None
        # Made with the first byte (see the class doc): :meth:`_streams`.
        self._contexts: dict[int, str] | None = None
        self._exchanges: ExchangeTracker | None = None
        self._sides: tuple[StreamSide, StreamSide] | None = None
        self._rq: AssociateRq | None = None
        self._violation_kinds: dict[tuple[bool, ViolationKind, str, str | None], int] | None = None
        self._violations_reported = 0
        self._violations_unreported = 0
        self._ac: AssociateAc | None = None
        self._aborted = False  # an A-ABORT was seen (for the silence before it)
        self._closes: tuple[tuple[bool, CloseKind, int, int | None, bool], ...] = ()
        self._finished = False
        self._last_ts = ts
        self._last_frame = frame
        self._accepted = False
        self._last_pdu_end = 0  # when the latest PDU finished, either direction
        self._idle_before_end: int | None = None

    # --- public API ------------------------------------------------------------------

    def accepted(self) -> None:
        """The server answered the client's SYN (SYN+ACK seen)."""
        self._accepted = True

    def data(
        self,
        from_client: bool,
        data: bytes | memoryview,
        ts: int,
        frame: int | None,
        *,
        injected: bool = False,
    ) -> None:
        """Bytes a side sent, in stream order. ``injected``: a middlebox (the proxy) wrote
        them in that side's direction, not the side itself (whole PDUs, between PDUs)."""
        if self._finished:
            raise RuntimeError("data() after finish()")
        side = (self._sides or self._streams())[0 if from_client else 1]
        side.bytes += len(data)
        self._last_ts = ts
        self._last_frame = frame
        if len(side.head) < HEAD_BYTES:
            side.head += bytes(data[: HEAD_BYTES - len(side.head)])
        if self.is_dicom or self._scanning:
            assert side.framer is not None
            view = data if type(data) is memoryview else memoryview(data)
            if side.payload is None and not injected and side.framer.within_pdv(len(view)):
                side.assembler.pdv_data(view)  # the bulk of any association, in one call
                return
            side.consume(side.framer.receive_data(view), ts, frame, injected)
            return
        if self.is_dicom is False:
            return
        side.held.append((bytes(data), ts, frame, injected))
        side.held_size += len(data)
        self._decide()

    def gap(self, from_client: bool, size: int, ts: int, frame: int | None) -> None:
        """``size`` bytes that a side sent are missing from the capture."""
        side = (self._sides or self._streams())[0 if from_client else 1]
        side.bytes += size
        if self.is_dicom:
            self._emit(
                StreamGap(
                    connection=self.connection,
                    from_requestor=side.from_requestor,
                    offset=side.framer.offset if side.framer else 0,
                    size=size,
                    ts=ts,
                    frame=frame,
                )
            )
        if self.is_dicom is None and not self._scanning:
            # The start of the stream is gone: look for DICOM further on.
            self._start_scanning()
        if side.framer is not None and self.is_dicom is not False:
            side.gap(size, ts, frame)

    def anomaly(
        self,
        from_client: bool,
        code: str,
        text: str,
        ts: int,
        frame: int | None,
        offset: int | None,
    ) -> None:
        """A TCP-level observation (e.g. retransmitted bytes that differ)."""
        if self.is_dicom:
            self._emit(
                TcpAnomaly(
                    connection=self.connection,
                    from_requestor=from_client != self._swapped,
                    code=code,
                    text=text,
                    ts=ts,
                    frame=frame,
                    offset=offset,
                )
            )

    def closed(
        self,
        from_client: bool,
        kind: CloseKind,
        ts: int,
        frame: int | None,
        *,
        injected: bool = False,
    ) -> None:
        """A side sent FIN or RST (after all its data was delivered). ``injected``: a
        middlebox closed the connection towards the other side; this side did not."""
        if any(c[0] == from_client for c in self._closes):
            return
        self._last_ts = ts
        self._last_frame = frame
        if self.is_dicom is None and not self._scanning:
            self._decide(final=True)
        self._closes = (*self._closes, (from_client, kind, ts, frame, injected))
        if self.is_dicom and self._fsm is not None:
            self._fsm_closed(from_client, kind, ts, frame, injected)

    def _fsm_closed(
        self, from_client: bool, kind: CloseKind, ts: int, frame: int | None, injected: bool
    ) -> None:
        assert self._fsm is not None
        fsm = self._fsm
        by_requestor = from_client != self._swapped
        first = fsm.first_close is None
        state = fsm.state_before_close(of_requestor=by_requestor)
        peer_state = fsm.state_before_close(of_requestor=not by_requestor)
        for v in fsm.closed(by_requestor=by_requestor, ts=ts, frame=frame, injected=injected):
            self._fsm_violation(v)
        self._emit(
            ConnectionClosed(
                connection=self.connection,
                by_requestor=by_requestor,
                kind=kind,
                ts=ts,
                frame=frame,
                state=state,
                peer_state=peer_state,
                injected=injected,
            )
        )
        if (
            first
            and self._idle_before_end is None
            and self._last_pdu_end
            and ending(fsm).outcome == Outcome.TRANSPORT_DROPPED
        ):
            # Nothing ended the association before the close: how long was it quiet?
            self._idle_before_end = max(0, ts - self._last_pdu_end)

    def finish(self, ts: int | None = None, frame: int | None = None) -> None:
        """No more bytes will come (connection closed, or end of capture)."""
        if self._finished:
            return
        end_ts = ts if ts is not None else self._last_ts
        end_frame = frame if frame is not None else self._last_frame
        if self.is_dicom is None and not self._scanning:
            self._decide(final=True)
        self._finished = True
        if not self.is_dicom:
            self._report_non_dicom(end_ts, end_frame)
            return
        for side in self._streams():
            side.abandon(end_ts, end_frame)
        assert self._exchanges is not None
        for exchange in self._exchanges.finish():
            self._emit(ExchangeObserved(connection=self.connection, exchange=exchange))
        if self._fsm is not None:
            for v in self._fsm.finish():
                self._fsm_violation(v)
        assert self._fsm is not None
        end = ending(self._fsm)
        self._emit(
            AssociationEnded(
                connection=self.connection,
                outcome=end.outcome,
                ts=end_ts,
                frame=end_frame,
                state=end.state,
                ended_by=end.by,
                closed_by=end.closed_by,
                bytes_from_requestor=self._requestor_side.bytes,
                bytes_from_acceptor=self._acceptor_side.bytes,
                close_kind=self._closes[0][1] if self._closes else None,
                requestor_head=bytes(self._requestor_side.head),
                acceptor_head=bytes(self._acceptor_side.head),
                idle_before_end_ns=self._idle_before_end,
                violations_unreported=self._violations_unreported,
            )
        )

    # --- detection -------------------------------------------------------------------

    def _streams(self) -> tuple[StreamSide, StreamSide]:
        """Both directions' reading state, made on first use (with the association-wide
        state they share: the accepted contexts and the exchanges)."""
        if self._sides is None:
            self._contexts = {}
            self._exchanges = ExchangeTracker()
            self._sides = (StreamSide(self, True), StreamSide(self, False))
        return self._sides

    @property
    def _requestor_side(self) -> StreamSide:
        return self._streams()[1 if self._swapped else 0]

    @property
    def _acceptor_side(self) -> StreamSide:
        return self._streams()[0 if self._swapped else 1]

    def _decide(self, final: bool = False) -> None:
        if self._sides is None and self._handshake:
            # Nothing sent yet: no A-ASSOCIATE-RQ can be there.
            if final:
                self.is_dicom = False
            return
        client, server = self._streams()
        # No byte is lost before a verdict: ``head`` is the start of what each side sent.
        if self._handshake:
            verdict = _starts_with(client.head, PduType.A_ASSOCIATE_RQ)
            if verdict is None and not final and client.held_size < DETECTION_HOLD:
                return
            if verdict:
                self._detected(Detection.ASSOCIATE_RQ)
            else:
                self.is_dicom = False
                client.held.clear()
                server.held.clear()
            return
        for side in (client, server):
            verdict = _starts_with(side.head, PduType.A_ASSOCIATE_RQ)
            if verdict:
                self._swapped = not side.from_client
                self._detected(Detection.ASSOCIATE_RQ)
                return
            if _starts_with(side.head, PduType.A_ASSOCIATE_AC):
                # The capture began between the A-ASSOCIATE-RQ and its answer.
                self._swapped = side.from_client
                self._detected(Detection.ASSOCIATE_AC)
                return
            if verdict is False:
                if final:
                    break
                self._start_scanning()
                return
        if final:
            self._start_scanning()

    def _detected(self, how: Detection) -> None:
        self.is_dicom = True
        partial = how != Detection.ASSOCIATE_RQ
        if how == Detection.ASSOCIATE_AC:
            self._fsm = AssociationFsm(start=(State.STA5, State.STA3))
        else:
            self._fsm = AssociationFsm(mid_stream=partial)
        if self._swapped:
            self.client, self.server = self.server, self.client
        self._emit(
            AssociationStarted(
                connection=self.connection,
                client=self.client,
                server=self.server,
                ts=self._ts,
                frame=self._frame,
                handshake=self._handshake,
                partial=partial,
                detection=how,
            )
        )
        if how in (Detection.ASSOCIATE_RQ, Detection.ASSOCIATE_AC):
            for side in self._streams():
                side.framer = PduFramer(synced=True)
            # The requestor's bytes first: a conforming acceptor sends nothing before the RQ.
            self._requestor_side.replay_held()
            self._acceptor_side.replay_held()
        for close in self._closes:  # found while scanning, before DICOM was
            self._fsm_closed(*close)

    def _start_scanning(self) -> None:
        self._scanning = True
        sides = self._streams()
        for side in sides:
            side.framer = PduFramer(synced=False)
        for side in sides:
            side.replay_held()

    def _resynced(
        self, side: StreamSide, offset: int, skipped: int, ts: int, frame: int | None
    ) -> None:
        if not self.is_dicom:
            self._scanning = False
            self._detected(Detection.RESYNC)
        self._emit(
            StreamResynced(
                connection=self.connection,
                from_requestor=side.from_requestor,
                offset=offset,
                skipped=skipped,
                ts=ts,
                frame=frame,
            )
        )

    # --- PDUs ------------------------------------------------------------------------

    def _fsm_pdu(
        self,
        pdu_type: int | None,
        from_requestor: bool,
        ts: int,
        frame: int | None,
        injected: bool = False,
    ) -> None:
        if self._fsm is None:
            return
        found = self._fsm.pdu(
            pdu_type, from_requestor=from_requestor, ts=ts, frame=frame, injected=injected
        )
        for v in found:
            self._fsm_violation(v)

    def _fsm_violation(self, v: FsmViolation) -> None:
        sender_is_requestor = v.requestor if v.by_sender else not v.requestor
        machine = "requestor" if v.requestor else "acceptor"
        what = _pdu_name(v.pdu_type)
        if v.by_sender:
            text = (
                f"the {machine} sent {what} while {v.state.description} ({v.state.label}), "
                f"which PS3.8 Table 9-10 does not allow (no transition for {v.cell})"
            )
        elif v.event == Event.EVT17:
            text = f"the connection closed while the {machine} was {v.state.description}"
        else:
            prescribed = f", where PS3.8 Table 9-10 prescribes {v.action}" if v.action else ""
            text = (
                f"the {machine} received {what} while {v.state.description} ({v.state.label}); "
                f"it cannot accept it there ({v.cell}{prescribed})"
            )
        self._report(
            Violation(
                connection=self.connection,
                from_requestor=sender_is_requestor,
                kind=ViolationKind.STATE_MACHINE,
                code="unexpected-pdu" if v.pdu_type is not None else "invalid-pdu",
                text=text,
                ts=v.ts,
                frame=v.frame,
                cell=v.cell,
                action=v.action,
            )
        )

    def _control_pdu(
        self,
        side: StreamSide,
        pdu_type: int,
        body: bytes,
        ts: int,
        frame: int | None,
        missing: int = 0,
    ) -> None:
        """A control PDU's body was read (``missing``: its last bytes were not captured; it is
        reported cut, with what was captured of it decoded: a capture gap, not a defect)."""
        from_requestor = side.from_requestor
        pdu: ControlPdu | None
        if missing:
            pdu, defects = decode_cut_control_pdu(pdu_type, body, missing)
        else:
            pdu, defects = decode_control_pdu(pdu_type, body)
        match pdu:
            case AssociateRq():
                if self._rq is None:
                    self._rq = pdu
            case AssociateAc():
                if self._ac is None:
                    self._ac = pdu
                    self._accept_contexts(pdu)
                    # A cut RQ or AC does not show every context: none is then "extra".
                    if self._rq is not None and not self._rq.missing and not pdu.missing:
                        proposed = {c.context_id for c in self._rq.presentation_contexts}
                        extra = [
                            c.context_id
                            for c in pdu.presentation_contexts
                            if c.context_id not in proposed
                        ]
                        if extra:
                            defects.append(
                                Defect(
                                    6,
                                    "the A-ASSOCIATE-AC answers presentation context(s) "
                                    f"{', '.join(map(str, extra))} that the A-ASSOCIATE-RQ "
                                    "did not propose",
                                )
                            )
            case Abort():
                if not self._aborted:
                    self._aborted = True
                    if self._last_pdu_end:
                        self._idle_before_end = max(0, side.pdu_ts - self._last_pdu_end)
        if missing:
            side.emit_pdu(ts, frame, complete=False, size=6 + len(body), pdu=pdu, defects=defects)
        else:
            side.emit_pdu(ts, frame, pdu=pdu, defects=defects)
        for d in defects:
            unknown = d.code == "unknown-item"
            self._violation(
                from_requestor,
                ViolationKind.UNKNOWN_ITEM if unknown else ViolationKind.MALFORMED_PDU,
                "unknown-item" if unknown else "malformed-pdu",
                f"{_pdu_name(pdu_type)}: {d.text}",
                side.pdu_ts,
                side.pdu_frame,
                side.pdu_offset + d.offset,
            )

    def _accept_contexts(self, ac: AssociateAc) -> None:
        contexts = self._contexts
        assert contexts is not None  # a PDU was read: the sides were made
        for ctx in ac.presentation_contexts:
            if ctx.result == 0 and ctx.transfer_syntax:
                contexts[ctx.context_id] = ctx.transfer_syntax

    # --- DIMSE -----------------------------------------------------------------------

    def _drain_assembler(self, side: StreamSide) -> None:
        asm = side.assembler
        from_requestor = side.from_requestor
        messages, asm.messages = asm.messages, []
        problems, asm.problems = asm.problems, []
        for p in problems:
            self._violation(
                from_requestor, ViolationKind.DIMSE, p.code, p.text, p.ts, p.frame, None
            )
        for msg in messages:
            self._message(msg, from_requestor)

    def _message(self, msg: AssembledMessage, from_requestor: bool) -> None:
        self._emit(
            DimseMessageObserved(
                connection=self.connection, from_requestor=from_requestor, message=msg
            )
        )
        tracker = self._exchanges
        assert tracker is not None  # a message was read: the sides were made
        exchange = tracker.message(msg, from_requestor)
        for code, text, m in tracker.problems:
            self._violation(from_requestor, ViolationKind.DIMSE, code, text, m.ts, m.frame, None)
        tracker.problems.clear()
        if exchange is not None:
            self._emit(ExchangeObserved(connection=self.connection, exchange=exchange))

    # --- ending ----------------------------------------------------------------------

    def _report_non_dicom(self, ts: int, frame: int | None) -> None:
        sides = self._sides
        client_head = bytes(sides[0].head) if sides is not None else b""
        server_head = bytes(sides[1].head) if sides is not None else b""
        closed_by: bool | None = None
        kind: CloseKind | None = None
        if self._closes:
            closed_by, kind = self._closes[0][:2]
        self._emit(
            ConnectionWithoutDicom(
                connection=self.connection,
                client=self.client,
                server=self.server,
                ts=self._ts,
                frame=self._frame,
                end_ts=ts,
                end_frame=frame,
                handshake=self._handshake,
                accepted=self._accepted,
                client_head=client_head,
                server_head=server_head,
                bytes_from_client=sides[0].bytes if sides is not None else 0,
                bytes_from_server=sides[1].bytes if sides is not None else 0,
                closed_by_client=closed_by,
                close_kind=kind,
            )
        )

    def _violation(
        self,
        from_requestor: bool,
        kind: ViolationKind,
        code: str,
        text: str,
        ts: int,
        frame: int | None,
        offset: int | None,
    ) -> None:
        self._report(
            Violation(
                connection=self.connection,
                from_requestor=from_requestor,
                kind=kind,
                code=code,
                text=text,
                ts=ts,
                frame=frame,
                offset=offset,
            )
        )

    def _report(self, v: Violation) -> None:
        """Emit ``v`` within the bounds (:data:`MAX_VIOLATIONS`); count it otherwise."""
        key = (v.from_requestor, v.kind, v.code, v.cell)
        kinds = self._violation_kinds
        if kinds is None:
            kinds = self._violation_kinds = {}
        seen = kinds.get(key, 0)
        if self._violations_reported >= MAX_VIOLATIONS or seen >= MAX_VIOLATIONS_OF_A_KIND:
            self._violations_unreported += 1
            return
        kinds[key] = seen + 1
        self._violations_reported += 1
        self._emit(v)


def _starts_with(head: bytes | bytearray, pdu_type: PduType) -> bool | None:
    """Whether a stream starts with an A-ASSOCIATE-RQ or -AC (``pdu_type``); None if fewer
    than 10 bytes are there to tell."""
    if len(head) < 10:
        return None
    return head[0] == pdu_type and plausible_header(head, 0, strict=False) is True


def _pdu_name(pdu_type: int | None) -> str:
    """``an A-ABORT``, ``a P-DATA-TF``: the PDU with its article, for sentences."""
    if pdu_type is None:
        return "an unrecognised PDU"
    name = pdu_name(pdu_type)
    return f"an {name}" if name[0] in "AEIOU" else f"a {name}"
