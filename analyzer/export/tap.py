"""The observer's payload tap, dispatched to the tools that need the bytes themselves.

The framer hands the tap, per connection and direction, the records of the bytes it framed
(:mod:`dissectors.framing`): PDU and PDV headers with their stream offsets, payload chunks,
losses, control PDU bodies, lost and found synchronisation. :class:`Tap` turns them into the
calls of :class:`PayloadConsumer`, the one interface of ``export`` (which spools data sets)
and ``anonymize`` (which locates PHI values), and works out which bytes the framer could not
frame (skipped while it searched for the next PDU): those are reported with
:meth:`PayloadConsumer.unparsed` when the search ends, or at :meth:`Tap.finish` for a stream
that never found its way back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from dissectors.framing import (
    FramerRecord,
    FramingProblem,
    Hole,
    LostSync,
    PduBody,
    PduBodyCut,
    PduEnd,
    PduStart,
    PdvChunk,
    PdvEnd,
    PdvLost,
    PdvStart,
    Resynced,
)

#: "To the end of the stream", for bytes skipped by a search that never ended.
STREAM_END = 1 << 62


class PayloadConsumer(Protocol):
    """What a tool is told of the framed bytes of each direction of each connection."""

    def pdu_start(self, connection: int, from_requestor: bool, offset: int) -> None:
        """A PDU header starts at stream ``offset``."""

    def control_pdu(
        self, connection: int, from_requestor: bool, pdu_type: int, body: bytes, missing: int
    ) -> None:
        """The body of an association, release or abort PDU (it starts 6 bytes after the
        offset of the latest :meth:`pdu_start`); ``missing``: the bytes of its end a hole in
        the capture cut (``body`` is then what was captured before it)."""

    def pdv_start(
        self, connection: int, from_requestor: bool, context_id: int, control: int
    ) -> None:
        """A PDV header (``control``: bit 0 command, bit 1 last fragment)."""

    def pdv_data(
        self, connection: int, from_requestor: bool, data: memoryview, offset: int
    ) -> None:
        """Payload bytes of the current PDV at stream ``offset`` (a view: copy to keep)."""

    def pdv_lost(self, connection: int, from_requestor: bool, size: int) -> None:
        """``size`` payload bytes of the current PDV are not in the capture."""

    def pdv_end(self, connection: int, from_requestor: bool, ts: int, frame: int | None) -> None:
        """The current PDV ended (at the bytes of ``ts``/``frame``)."""

    def broken(self, connection: int, from_requestor: bool, ts: int, frame: int | None) -> None:
        """The framer lost the PDU boundaries: whatever PDV or message was in flight is cut."""

    def unparsed(self, connection: int, from_requestor: bool, offset: int, size: int) -> None:
        """``size`` bytes from stream ``offset`` were skipped, not framed."""


class Tap:
    """The payload tap (``FlowTable(..., payload=tap)``) feeding ``consumers``."""

    def __init__(self, *consumers: PayloadConsumer) -> None:
        self._consumers = consumers
        self._lost: dict[tuple[int, bool], int] = {}  # where each unsynchronised search began

    def __call__(
        self,
        connection: int,
        from_requestor: bool,
        records: Sequence[FramerRecord],
        ts: int,
        frame: int | None,
    ) -> None:
        cs = self._consumers
        for record in records:
            match record:
                case PdvChunk(data, offset):
                    for c in cs:
                        c.pdv_data(connection, from_requestor, data, offset)
                case PdvStart(context_id, control, _, _):
                    for c in cs:
                        c.pdv_start(connection, from_requestor, context_id, control)
                case PdvEnd():
                    for c in cs:
                        c.pdv_end(connection, from_requestor, ts, frame)
                case PduStart(_, _, offset):
                    for c in cs:
                        c.pdu_start(connection, from_requestor, offset)
                case PduBody(pdu_type, body):
                    for c in cs:
                        c.control_pdu(connection, from_requestor, pdu_type, body, 0)
                case PduBodyCut(pdu_type, body, missing):
                    for c in cs:
                        c.control_pdu(connection, from_requestor, pdu_type, body, missing)
                case PdvLost(size, _):
                    for c in cs:
                        c.pdv_lost(connection, from_requestor, size)
                case LostSync(offset):
                    self._lost.setdefault((connection, from_requestor), offset)
                    for c in cs:
                        c.broken(connection, from_requestor, ts, frame)
                case Resynced(offset, skipped):
                    start = self._lost.pop((connection, from_requestor), offset - skipped)
                    for c in cs:
                        c.unparsed(connection, from_requestor, start, offset - start)
                case PduEnd() | Hole() | FramingProblem():
                    pass

    def finish(self) -> None:
        """The capture ended: streams still searching were unparsed to their end."""
        for (connection, from_requestor), start in self._lost.items():
            for c in self._consumers:
                c.unparsed(connection, from_requestor, start, STREAM_END - start)
        self._lost.clear()
