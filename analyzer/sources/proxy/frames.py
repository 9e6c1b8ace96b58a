"""Where PDUs begin and end in one direction of a relayed stream, as the observer's framer
(:class:`dissectors.framing.PduFramer`) says.

The proxy needs little of a stream, but needs it right: the first PDU whole (the
A-ASSOCIATE-RQ it routes and checks, the A-ASSOCIATE-AC it may rewrite), whether the stream is
between two PDUs (an A-ABORT it sends must not land inside one), and the length each PDU
declares (the parse limit). :class:`PduStream` asks the one framer every source uses, fed the
same bytes as the observer, rather than reading PDU headers itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from dissectors.framing import PduFramer

__all__ = ["ControlPdu", "PduStream"]


@dataclass(frozen=True, slots=True)
class ControlPdu:
    """An association, release or abort PDU, whole: ``body`` is what follows its header;
    ``start``/``end`` are its stream offsets (header included)."""

    pdu_type: int
    body: bytes
    start: int
    end: int


class PduStream:
    """One direction of a stream, framed. Feed it with :meth:`feed` (and :meth:`gap`)."""

    def __init__(self, limit: int | None = None) -> None:
        self._framer = PduFramer(self, synced=True)
        self._limit = limit
        self._start = 0
        self._end = 0
        self._pdu_end = 0
        self._in_pdu = False
        self._lost = False
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
    def offset(self) -> int:
        """Bytes of the stream seen so far."""
        return self._framer.offset

    @property
    def at_boundary(self) -> bool:
        """True when the stream is between two PDUs (and the framer knows where it is)."""
        return not self._lost and not self._in_pdu and self._framer.offset == self._end

    @property
    def current_end(self) -> int | None:
        """Where the PDU being read ends (from its declared length), None between PDUs or
        when the framer lost its place."""
        if self._lost or not self._in_pdu:
            return None
        return self._pdu_end

    def feed(self, data: bytes | memoryview) -> None:
        """The next bytes of the stream."""
        self._framer.feed(data if isinstance(data, memoryview) else memoryview(data), 0, None)

    def gap(self, size: int) -> None:
        """``size`` bytes of the stream that are not looked at."""
        self._framer.gap(size, 0, None)

    # --- FramerHandler ---------------------------------------------------------------

    def pdu_header(
        self, pdu_type: int, length: int, offset: int, ts: int, frame: int | None
    ) -> None:
        if self.first is None:
            self.first = (pdu_type, length)
        self._in_pdu = True
        self._start = offset
        self._pdu_end = offset + 6 + length
        if self._limit is not None and length > self._limit and 1 <= pdu_type <= 7:
            self.over_limit.append((offset, pdu_type, length))

    def control_pdu(self, pdu_type: int, body: bytes, ts: int, frame: int | None) -> None:
        self._in_pdu = False
        self._end = self._framer.offset
        if self.keep_controls:
            self.controls.append(ControlPdu(pdu_type, body, self._start, self._end))

    def pdv_start(
        self, context_id: int, control: int, length: int, ts: int, frame: int | None
    ) -> None:
        pass

    def pdv_data(self, data: memoryview) -> None:
        pass

    def pdv_lost(self, size: int) -> None:
        pass

    def pdv_end(self, ts: int, frame: int | None) -> None:
        pass

    def pdu_end(self, ts: int, frame: int | None) -> None:
        self._in_pdu = False
        self._end = self._framer.offset

    def framing_problem(
        self, code: str, text: str, offset: int, ts: int, frame: int | None
    ) -> None:
        pass

    def lost_sync(self, offset: int, ts: int, frame: int | None) -> None:
        self._lost = True
        self._in_pdu = False

    def resynced(self, offset: int, skipped: int, ts: int, frame: int | None) -> None:
        self._lost = False
        self._end = offset
