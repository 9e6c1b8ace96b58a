"""One direction of an observed connection: its framer, its DIMSE assembler, the PDU being
read. A :class:`StreamSide` is the framer's handler and reports to its
:class:`~dissectors.observer.AssociationObserver`, which owns the association-wide state."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from .dimse.assembly import MessageAssembler
from .events import PduObserved, ViolationKind
from .framing import CONTROL_PDU_LIMIT, PduFramer
from .pdu.constants import PduType

if TYPE_CHECKING:
    from .observer import AssociationObserver

_PDU_HEADER = struct.Struct(">BBI")

#: First bytes of each direction kept (a TLS record there says one side spoke TLS).
HEAD_BYTES = 16


def looks_like_associate_rq(head: bytes | bytearray, pdu_type: int = 1) -> bool | None:
    """Whether a stream starts with an A-ASSOCIATE-RQ (or ``pdu_type``: 2 for an AC);
    None if fewer than 10 bytes are there to tell."""
    if len(head) < 10:
        return None
    found_type, reserved, length = _PDU_HEADER.unpack_from(head, 0)
    return (
        found_type == pdu_type
        and reserved == 0
        and 68 <= length <= CONTROL_PDU_LIMIT
        and head[6] == 0
        and head[7] == 1
    )


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
        self.assembler = MessageAssembler(obs._transfer_syntax_of, obs._keep)
        self.pdu_type = 0
        self.pdu_length = 0
        self.pdu_offset = 0
        self.pdu_ts = 0
        self.pdu_frame: int | None = None
        self.pdvs: list[tuple[int, int, int]] = []
        self.in_pdu = False
        self.max_pdu_seen = 0

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
        if length > self.max_pdu_seen and pdu_type == PduType.P_DATA_TF:
            self.max_pdu_seen = length
        known = pdu_type if 1 <= pdu_type <= 7 else None
        self.obs._fsm_pdu(known, self.from_requestor, ts, frame, offset)

    def control_pdu(self, pdu_type: int, body: bytes, ts: int, frame: int | None) -> None:
        self.in_pdu = False
        self.obs._control_pdu(self, pdu_type, body, ts, frame)
        self.obs._last_pdu_end = ts

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
        self.obs._last_pdu_end = ts
        self._emit_pdu(ts, frame, complete=True)

    def framing_problem(
        self, code: str, text: str, offset: int, ts: int, frame: int | None
    ) -> None:
        self.obs._violation(
            self.from_requestor, ViolationKind.FRAMING, code, text, ts, frame, offset
        )

    def lost_sync(self, offset: int, ts: int, frame: int | None) -> None:
        self.flush_pdu(ts, frame)
        self.assembler.abandon_all(ts, frame)
        self.obs._drain_assembler(self)

    def resynced(self, offset: int, skipped: int, ts: int, frame: int | None) -> None:
        self.obs._resynced(self, offset, skipped, ts, frame)

    # ---------------------------------------------------------------------------------

    def flush_pdu(self, ts: int, frame: int | None) -> None:
        """Report a PDU that will never complete (lost sync, end of capture)."""
        if self.in_pdu:
            self._emit_pdu(ts, frame, complete=False)

    def _emit_pdu(self, ts: int, frame: int | None, *, complete: bool) -> None:
        """The P-DATA-TF (or skipped PDU) being read ends at ``ts``/``frame``."""
        self.in_pdu = False
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
                pdvs=tuple(self.pdvs),
                complete=complete,
            )
        )
