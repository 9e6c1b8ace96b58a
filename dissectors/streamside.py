"""One direction of an observed connection: its framer, its DIMSE assembler, the PDU being
read. A :class:`StreamSide` feeds its :class:`~dissectors.framing.PduFramer` and consumes the
records it returns, reporting to its :class:`~dissectors.observer.AssociationObserver`, which
owns the association-wide state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, assert_never

from .dimse.assembly import MessageAssembler
from .events import PduObserved, ViolationKind
from .framing import (
    FramerRecord,
    FramingProblem,
    Hole,
    LostSync,
    PduBody,
    PduBodyCut,
    PduEnd,
    PduFramer,
    PduStart,
    PdvChunk,
    PdvEnd,
    PdvLost,
    PdvStart,
    Resynced,
)
from .pdu.items import Defect
from .pdu.pdus import ControlPdu

if TYPE_CHECKING:
    from .observer import AssociationObserver


class StreamSide:
    """One direction: its framer, its DIMSE assembler and the PDU being read."""

    __slots__ = (
        "assembler",
        "bytes",
        "framer",
        "from_client",
        "head",
        "held",
        "held_size",
        "in_pdu",
        "obs",
        "payload",
        "pdu_frame",
        "pdu_injected",
        "pdu_length",
        "pdu_offset",
        "pdu_ts",
        "pdu_type",
        "pdvs",
    )

    def __init__(self, obs: AssociationObserver, from_client: bool) -> None:
        self.obs = obs
        self.from_client = from_client
        self.bytes = 0
        self.head = bytearray()
        self.held: list[tuple[bytes, int, int | None, bool]] = []
        self.held_size = 0
        self.framer: PduFramer | None = None
        assert obs._contexts is not None  # made with the sides
        self.assembler = MessageAssembler(obs._contexts.get, obs._keep)
        self.pdu_type = 0
        self.pdu_length = 0
        self.pdu_offset = 0
        self.pdu_ts = 0
        self.pdu_frame: int | None = None
        self.pdvs: list[tuple[int, int, int]] = []
        self.in_pdu = False
        self.pdu_injected = False  # a middlebox wrote the PDU being read
        self.payload = obs._payload

    @property
    def from_requestor(self) -> bool:
        return self.from_client != self.obs._swapped

    # --- input -----------------------------------------------------------------------

    def feed(self, data: memoryview, ts: int, frame: int | None, injected: bool = False) -> None:
        """Frame the next bytes of this direction and act on what they complete."""
        assert self.framer is not None
        self.consume(self.framer.receive_data(data), ts, frame, injected)

    def gap(self, size: int, ts: int, frame: int | None) -> None:
        """``size`` bytes of this direction are missing from the capture."""
        assert self.framer is not None
        self.consume(self.framer.gap(size), ts, frame)

    def consume(
        self, records: list[FramerRecord], ts: int, frame: int | None, injected: bool = False
    ) -> None:
        """Act on the framer's records for bytes that arrived at ``ts``/``frame`` (written by
        a middlebox: ``injected``); then hand them to the payload tap, if there is one."""
        assembler = self.assembler
        if len(records) == 1 and type(records[0]) is PdvChunk:
            # The bulk of any association: one chunk of a PDV's payload.
            assembler.pdv_data(records[0].data)
        else:
            for record in records:
                # Dispatched on the exact type, the most frequent first: several times
                # cheaper than ``match`` with class patterns (records are never subclassed).
                if type(record) is PdvChunk:
                    assembler.pdv_data(record.data)
                elif type(record) is PdvEnd:
                    assembler.pdv_end(ts, frame)
                    if assembler.messages or assembler.problems:
                        self.obs._drain_assembler(self)
                elif type(record) is PduEnd:
                    self.emit_pdu(ts, frame)
                elif type(record) is PduStart:
                    pdu_type, length, offset = record
                    self.pdu_type = pdu_type
                    self.pdu_length = length
                    self.pdu_offset = offset
                    self.pdu_ts = ts
                    self.pdu_frame = frame
                    self.pdvs = []
                    self.in_pdu = True
                    self.pdu_injected = injected
                    known = pdu_type if 1 <= pdu_type <= 7 else None
                    self.obs._fsm_pdu(known, self.from_requestor, ts, frame, injected)
                elif type(record) is PdvStart:
                    context_id, control, length, offset = record
                    self.pdvs.append((context_id, control, length))
                    if control & 0xFC:
                        self._problem(
                            "pdv-reserved-bits",
                            f"PDV message control header 0x{control:02X} sets reserved bits "
                            "2-7 (PS3.8 Annex E: they shall be 0; receivers ignore them)",
                            offset,
                            ts,
                            frame,
                        )
                    assembler.pdv_start(context_id, control, ts, frame)
                else:
                    self._rare(record, ts, frame)
        if self.payload is not None:
            self.payload(self.obs.connection, self.from_requestor, records, ts, frame)

    def _rare(self, record: FramerRecord, ts: int, frame: int | None) -> None:
        """The records :meth:`consume` does not dispatch itself."""
        match record:
            case PduBody(pdu_type, body):
                self.obs._control_pdu(self, pdu_type, body, ts, frame)
            case PduBodyCut(pdu_type, body, missing):
                self.obs._control_pdu(self, pdu_type, body, ts, frame, missing)
            case PdvLost(size):
                self.assembler.pdv_lost(size)
            case FramingProblem(code, text, offset):
                self._problem(code, text, offset, ts, frame)
            case LostSync(offset):
                self.abandon(ts, frame, offset)
            case Resynced(offset, skipped):
                self.obs._resynced(self, offset, skipped, ts, frame)
            case Hole():
                pass  # the observer reports the gap itself
            case PdvChunk() | PdvEnd() | PduEnd() | PduStart() | PdvStart():
                raise AssertionError("dispatched by consume")
            case _:
                assert_never(record)

    def _problem(self, code: str, text: str, offset: int, ts: int, frame: int | None) -> None:
        self.obs._violation(
            self.from_requestor, ViolationKind.FRAMING, code, text, ts, frame, offset
        )

    # ---------------------------------------------------------------------------------

    def replay_held(self) -> None:
        """Feed the bytes held while detecting to the framer just created."""
        held, self.held = self.held, []
        self.held_size = 0
        for chunk, ts, frame, injected in held:
            self.feed(memoryview(chunk), ts, frame, injected)

    def abandon(self, ts: int, frame: int | None, at: int | None = None) -> None:
        """The stream broke (at stream offset ``at``) or ended: report the PDU and the
        messages in flight as cut."""
        if self.in_pdu:
            assert self.framer is not None
            end = self.framer.offset if at is None else at
            # What the stream held of it, never what its header declared; the header at least.
            seen = min(self.pdu_length + 6, max(6, end - self.pdu_offset))
            self.emit_pdu(ts, frame, complete=False, size=seen)
        self.assembler.abandon_all(ts, frame)
        self.obs._drain_assembler(self)

    def emit_pdu(
        self,
        ts: int,
        frame: int | None,
        *,
        complete: bool = True,
        size: int | None = None,
        pdu: ControlPdu | None = None,
        defects: Sequence[Defect] = (),
    ) -> None:
        """The PDU being read ends at ``ts``/``frame`` (or never will: ``complete`` False,
        after ``size`` of its bytes)."""
        self.in_pdu = False
        if complete:
            self.obs._last_pdu_end = ts
        self.obs._emit(
            PduObserved(
                connection=self.obs.connection,
                from_requestor=self.from_requestor,
                pdu_type=self.pdu_type,
                length=self.pdu_length,
                size=self.pdu_length + 6 if size is None else size,
                offset=self.pdu_offset,
                ts=self.pdu_ts,
                frame=self.pdu_frame,
                end_ts=ts,
                end_frame=frame,
                pdu=pdu,
                pdvs=tuple(self.pdvs),
                defects=tuple(defects),
                complete=complete,
                injected=self.pdu_injected,
            )
        )
