"""Where PDUs begin and end in one direction of a relayed stream, as the observer's framer
(:class:`dissectors.framing.PduFramer`) says.

The proxy needs little of a stream, but needs it right: the A-ASSOCIATE-RQ whole (to route
and check it), whether the stream is between two PDUs (an A-ABORT it sends must not land
inside one), and the length each PDU declares (the parse limit). It reads no PDU header
itself: a :class:`PduStream` is fed the records of the observer's own framer for that
direction (the flow table's payload tap), so the proxy and the observer see the same PDUs.
:func:`first_header` asks a framer about the first bytes of a stream the observer does not
frame (it frames only what it has recognised as DICOM).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dissectors.framing import (
    FramerRecord,
    LostSync,
    PduBody,
    PduBodyCut,
    PduEnd,
    PduFramer,
    PduStart,
    Resynced,
)

__all__ = ["ControlPdu", "PduStream", "first_header"]


@dataclass(frozen=True, slots=True)
class ControlPdu:
    """An association, release or abort PDU, whole: ``body`` is what follows its header;
    ``start``/``end`` are its stream offsets (header included)."""

    pdu_type: int
    body: bytes
    start: int
    end: int


def first_header(head: bytes | bytearray) -> tuple[int, int] | None:
    """The type and declared length of the PDU header at the start of ``head``, as the framer
    reads it; None while fewer than 6 bytes are there."""
    if len(head) < 6:
        return None
    for record in PduFramer().receive_data(memoryview(bytes(head[:6]))):
        if isinstance(record, PduStart):
            return record.pdu_type, record.length
    return None


class PduStream:
    """One direction of a stream, as framed by the observer: feed it the framer's records
    with :meth:`consume`; :meth:`at_boundary` is asked with the stream's offset."""

    def __init__(self, limit: int | None = None) -> None:
        self._limit = limit
        self._start = 0
        self._end = 0
        self._pdu_end = 0
        self._in_pdu = False
        self._lost = False
        self._seen = False
        self.first: tuple[int, int] | None = None
        """The type and declared length of the stream's first PDU header."""
        self.controls: list[ControlPdu] = []
        """Control PDUs completed so far (the reader takes what it needs)."""
        self.over_limit: list[tuple[int, int, int]] = []
        """(offset, type, declared length) of the headers of PDUs (of a type PS3.8 defines)
        declaring more than ``limit`` bytes."""
        self.keep_controls = True
        """Whether to keep the control PDUs in :attr:`controls` (off once nobody asks)."""

    @property
    def framed(self) -> bool:
        """Whether the framer has said anything yet (it frames only a DICOM stream)."""
        return self._seen

    def at_boundary(self, offset: int) -> bool:
        """Whether the stream, ``offset`` bytes in, is between two PDUs (and the framer
        knows where it is)."""
        return self._seen and not self._lost and not self._in_pdu and offset == self._end

    @property
    def current_end(self) -> int | None:
        """Where the PDU being read ends (from its declared length), None between PDUs or
        when the framer lost its place."""
        if self._lost or not self._in_pdu:
            return None
        return self._pdu_end

    def consume(self, records: Sequence[FramerRecord]) -> None:
        """The framer's records for the next bytes of the stream."""
        self._seen = True
        for record in records:
            match record:
                case PduStart(pdu_type, length, offset):
                    if self.first is None:
                        self.first = (pdu_type, length)
                    self._in_pdu = True
                    self._start = offset
                    self._pdu_end = offset + 6 + length
                    limit = self._limit
                    if limit is not None and length > limit and 1 <= pdu_type <= 7:
                        self.over_limit.append((offset, pdu_type, length))
                case PduBody(pdu_type, body):
                    self._in_pdu = False
                    self._end = self._pdu_end
                    if self.keep_controls:
                        self.controls.append(ControlPdu(pdu_type, body, self._start, self._end))
                case PduEnd() | PduBodyCut():  # a cut control PDU ends where it declared
                    self._in_pdu = False
                    self._end = self._pdu_end
                case LostSync():
                    self._lost = True
                    self._in_pdu = False
                case Resynced(offset):
                    self._lost = False
                    self._end = offset
                case _:
                    pass
