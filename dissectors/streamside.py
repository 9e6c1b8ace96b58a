"""One direction of an observed connection: its framer, its DIMSE assembler, the PDU being
read. A :class:`StreamSide` is the framer's handler and reports to its
:class:`~dissectors.observer.AssociationObserver`, which owns the association-wide state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .dimse.assembly import MessageAssembler
from .events import PduObserved, ViolationKind
from .framing import PduFramer
from .pdu.items import Defect
from .pdu.pdus import ControlPdu

if TYPE_CHECKING:
    from .observer import AssociationObserver


class StreamSide:
    """One direction: its framer, its DIMSE assembler and the PDU being read."""

    def __init__(self, obs: AssociationObserver, from_client: bool) -> None:
        self.obs = obs
        self.from_client = from_client
        self.bytes = 0
        self.head = bytearray()
        self.held: list[tuple[bytes, int, int | None]] = []
        self.held_size = 0
        self.framer: PduFramer | None = None
        self.assembler = MessageAssembler(obs._contexts.get, obs._keep)
        self.pdu_type = 0
        self.pdu_length = 0
        self.pdu_offset = 0
        self.pdu_ts = 0
        self.pdu_frame: int | None = None
        self.pdvs: list[tuple[int, int, int]] = []
        self.in_pdu = False

    @property
    def from_requestor(self) -> bool:
        return self.from_client != self.obs._swapped

    # --- FramerHandler ---------------------------------------------------------------

    def pdu_header(
        self, pdu_type: int, length: int, offset: int, ts: int, frame: int | None
    ) -> None:
        self.pdu_type = pdu_type
        self.pdu_length = length
        self.pdu_offset = offset
        self.pdu_ts = ts
        self.pdu_frame = frame
        self.pdvs = []
        self.in_pdu = True
        known = pdu_type if 1 <= pdu_type <= 7 else None
        self.obs._fsm_pdu(known, self.from_requestor, ts, frame)

    def control_pdu(self, pdu_type: int, body: bytes, ts: int, frame: int | None) -> None:
        self.obs._control_pdu(self, pdu_type, body, ts, frame)

    def pdv_start(
        self, context_id: int, control: int, length: int, ts: int, frame: int | None
    ) -> None:
        self.pdvs.append((context_id, control, length))
        if control & 0xFC:
            self.framing_problem(
                "pdv-reserved-bits",
                f"PDV message control header 0x{control:02X} sets reserved bits 2-7 "
                "(PS3.8 Annex E: they shall be 0; receivers ignore them)",
                self.framer.offset if self.framer else 0,
                ts,
                frame,
            )
        self.assembler.pdv_start(context_id, control, ts, frame)

    def pdv_data(self, data: memoryview) -> None:
        self.assembler.pdv_data(data)

    def pdv_lost(self, size: int) -> None:
        self.assembler.pdv_lost(size)

    def pdv_end(self, ts: int, frame: int | None) -> None:
        self.assembler.pdv_end(ts, frame)
        if self.assembler.messages or self.assembler.problems:
            self.obs._drain_assembler(self)

    def pdu_end(self, ts: int, frame: int | None) -> None:
        self.emit_pdu(ts, frame)

    def framing_problem(
        self, code: str, text: str, offset: int, ts: int, frame: int | None
    ) -> None:
        self.obs._violation(
            self.from_requestor, ViolationKind.FRAMING, code, text, ts, frame, offset
        )

    def lost_sync(self, offset: int, ts: int, frame: int | None) -> None:
        self.abandon(ts, frame)

    def resynced(self, offset: int, skipped: int, ts: int, frame: int | None) -> None:
        self.obs._resynced(self, offset, skipped, ts, frame)

    # ---------------------------------------------------------------------------------

    def replay_held(self) -> None:
        """Feed the bytes held while detecting to the framer just created."""
        held, self.held = self.held, []
        self.held_size = 0
        assert self.framer is not None
        for chunk, ts, frame in held:
            self.framer.feed(memoryview(chunk), ts, frame)

    def abandon(self, ts: int, frame: int | None) -> None:
        """The stream broke or ended: report the PDU and the messages in flight as cut."""
        if self.in_pdu:
            self.emit_pdu(ts, frame, complete=False)
        self.assembler.abandon_all(ts, frame)
        self.obs._drain_assembler(self)

    def emit_pdu(
        self,
        ts: int,
        frame: int | None,
        *,
        complete: bool = True,
        pdu: ControlPdu | None = None,
        defects: Sequence[Defect] = (),
    ) -> None:
        """The PDU being read ends at ``ts``/``frame`` (or never will: ``complete`` False)."""
        self.in_pdu = False
        if complete:
            self.obs._last_pdu_end = ts
        self.obs._emit(
            PduObserved(
                connection=self.obs.connection,
                from_requestor=self.from_requestor,
                pdu_type=self.pdu_type,
                length=self.pdu_length,
                offset=self.pdu_offset,
                ts=self.pdu_ts,
                frame=self.pdu_frame,
                end_ts=ts,
                end_frame=frame,
                pdu=pdu,
                pdvs=tuple(self.pdvs),
                defects=tuple(defects),
                complete=complete,
            )
        )
