"""Captured P-DATA-TF PDUs re-sent: the framer's records of one direction in, bytes out.

:class:`PDataWriter` is given the :mod:`dissectors.framing` records of the side being
played (PDU and PDV starts, payload chunks, lost bytes, ends), in stream order, and sends
the same PDUs: same PDVs, same fragmentation, same lengths. Only what must change changes:

* a command set is handed to ``on_command`` when its last fragment arrives, which may
  renumber it (same length) or drop its whole message (a context the peer did not accept);
* bytes the capture lost inside a PDV are sent as zeros (the caller allows that only with
  ``--allow-incomplete``);
* a PDU longer than the peer's Maximum Length is split into PDUs that fit, unless the
  captured PDU was already too long for the captured peer (then the replay keeps the
  defect it reproduces) or ``keep_framing`` is set.

Memory is bounded: a PDU is held until it ends (so that its framing can be decided) only up
to ``hold_limit`` bytes; a longer one is committed and streamed from there, chunk by chunk,
straight from the capture. A command set is never longer than
:data:`~dissectors.dimse.assembly.COMMAND_SET_LIMIT`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from enum import Enum

from dissectors.dimse.assembly import COMMAND_SET_LIMIT
from dissectors.framing import (
    FramerRecord,
    FramingProblem,
    Hole,
    LostSync,
    PduEnd,
    PduStart,
    PdvChunk,
    PdvEnd,
    PdvLost,
    PdvStart,
    Resynced,
)
from dissectors.pdu import PDU_HEADER, PDV_HEADER

__all__ = ["HOLD_LIMIT", "CommandHook", "PDataWriter", "WriterBrokenError"]

#: Bytes of one PDU held before it is committed and streamed.
HOLD_LIMIT = 1 << 20
_ZEROS = bytes(1 << 16)
_P_DATA_TF = 4

Send = Callable[[bytes | bytearray | memoryview], None]
CommandHook = Callable[[int, bytes], tuple[bool, bytes | None]]
"""``(context_id, command set) -> (drop the message, replacement or None)``."""


class WriterBrokenError(Exception):
    """The stream cannot be continued: bytes are missing inside a PDU already sent."""


class _Mode(Enum):
    AS_IS = 1  # one header with the captured length, the PDVs as they come
    PIECES = 2  # each PDV as PDUs of its own, cut to fit


class _Pdv:
    __slots__ = (
        "command",
        "context_id",
        "control",
        "dropped",
        "emitted",
        "length",
        "parts",
        "sent",
    )

    def __init__(self, context_id: int, control: int, length: int, command: bool) -> None:
        self.context_id = context_id
        self.control = control
        self.length = length  # data bytes it declares
        self.command = command
        self.parts: list[bytes] = []
        self.dropped = False
        self.sent = False  # some of it went out already (it cannot be changed any more)
        self.emitted = 0  # data bytes sent (streaming)

    @property
    def size(self) -> int:
        return sum(len(p) for p in self.parts)


class _Pdu:
    __slots__ = ("closed", "length", "pdvs")

    def __init__(self, length: int) -> None:
        self.length = length
        self.pdvs: list[_Pdv] = []
        self.closed = False


def _even(n: int) -> int:
    return n - n % 2


class PDataWriter:
    """Re-sends the P-DATA-TF PDUs of one direction; see the module's docstring.

    ``send`` writes bytes (in order); ``note`` is given one line for what the replay had to
    change or could not do. ``max_length`` is the peer's Maximum Length (0: no limit),
    ``captured_max`` the one the captured peer announced.
    """

    def __init__(
        self,
        send: Send,
        *,
        on_command: CommandHook,
        note: Callable[[str], None],
        max_length: int = 0,
        captured_max: int = 0,
        keep_framing: bool = False,
        hold_limit: int = HOLD_LIMIT,
    ) -> None:
        self._send = send
        self._on_command = on_command
        self._note = note
        self.max_length = max_length
        self.captured_max = captured_max
        self.keep_framing = keep_framing
        self.hold_limit = hold_limit
        self._queue: deque[_Pdu] = deque()
        self._open: _Pdu | None = None  # the PDU being read (queued, or streaming)
        self._mode: _Mode | None = None  # set while the open PDU streams
        self._stream_length = 0  # streaming AS_IS: body bytes still owed
        self._piece_left = 0  # streaming PIECES: data bytes left in the current piece
        self._cur: _Pdv | None = None
        self._commands: dict[int, list[_Pdv]] = {}
        self._dropping: dict[int, bool] = {}
        self._held = 0
        self._noted: set[str] = set()
        self.zero_filled = 0
        """Bytes sent as zeros for bytes the capture lost."""
        self.split = 0
        """Captured PDUs that were split to fit the peer's Maximum Length."""

    # --- input -------------------------------------------------------------------------

    def feed(self, records: Iterable[FramerRecord]) -> None:
        """The next records of the played side (P-DATA-TF ones; others are ignored)."""
        for record in records:
            match record:
                case PdvChunk(data):
                    self._data(data)
                case PdvStart(context_id, control, length):
                    self._pdv_start(context_id, control, max(length - 2, 0))
                case PdvEnd():
                    self._pdv_end()
                case PduStart(pdu_type, length) if pdu_type == _P_DATA_TF:
                    self._pdu_start(length)
                case PduEnd():
                    self._pdu_end()
                case PdvLost(size):
                    self._lost(size)
                case Hole() | LostSync():
                    self._broken()
                case PduStart() | Resynced() | FramingProblem():
                    pass
                case _:
                    pass

    def flush(self) -> None:
        """Send everything held now (before waiting for the peer, or a control PDU): a PDU
        still being read is committed with the framing it has so far."""
        self._force()

    def send_complete(self) -> None:
        """Send the PDUs held that are complete (and no command set is waiting for)."""
        self._flush()

    @property
    def in_pdu(self) -> bool:
        """A P-DATA-TF was begun on the wire and not finished."""
        return self._open is not None and self._mode is not None

    # --- PDUs and PDVs -----------------------------------------------------------------

    def _pdu_start(self, length: int) -> None:
        if self._open is not None:
            self._broken()
        pdu = _Pdu(length)
        self._open = pdu
        self._queue.append(pdu)

    def _pdv_start(self, context_id: int, control: int, length: int) -> None:
        pdu = self._open
        if pdu is None:
            return
        command = bool(control & 1)
        pdv = _Pdv(context_id, control, length, command)
        if command:
            if context_id not in self._commands:
                self._dropping.pop(context_id, None)  # a new message: decided at its end
            self._commands.setdefault(context_id, []).append(pdv)
        else:
            pdv.dropped = self._dropping.get(context_id, False)
        self._cur = pdv
        if self._mode is None:
            pdu.pdvs.append(pdv)
        else:
            self._stream_pdv(pdv)

    def _data(self, data: memoryview | bytes) -> None:
        pdv = self._cur
        if pdv is None:
            return
        if self._mode is None:
            pdv.parts.append(bytes(data))
            self._held += len(data)
            if self._held > self.hold_limit:
                self._commit()
            return
        if pdv.command and pdv.size + len(data) <= COMMAND_SET_LIMIT:
            pdv.parts.append(bytes(data))  # kept for ``on_command`` only
        self._stream_data(pdv, data)

    def _lost(self, size: int) -> None:
        self.zero_filled += size
        while size > 0:
            n = min(size, len(_ZEROS))
            self._data(memoryview(_ZEROS)[:n])
            size -= n

    def _pdv_end(self) -> None:
        pdv, self._cur = self._cur, None
        if pdv is not None and pdv.command and pdv.control & 2:
            self._command_done(pdv.context_id)

    def _pdu_end(self) -> None:
        pdu, self._open = self._open, None
        if pdu is None:
            return
        pdu.closed = True
        if self._mode is not None:
            self._mode = None
            if self._stream_length > 0:
                # The framer skipped bytes that do not form a PDV: the header promised them.
                self._once("bytes of a P-DATA-TF that form no PDV were sent as zeros")
                self._zeros(self._stream_length)
            self._stream_length = 0
        self._flush()

    def _command_done(self, context_id: int) -> None:
        pdvs = self._commands.pop(context_id, [])
        raw = b"".join(b"".join(p.parts) for p in pdvs)
        drop, replacement = self._on_command(context_id, raw)
        if any(p.sent for p in pdvs):
            if drop or (replacement is not None and replacement != raw):
                self._once(
                    "a command set already being sent could not be changed (sent as captured)"
                )
            drop = False
        else:
            if replacement is not None and len(replacement) == len(raw):
                at = 0
                for p in pdvs:
                    n = p.size
                    p.parts = [replacement[at : at + n]]
                    at += n
            for p in pdvs:
                p.dropped = drop
        self._dropping[context_id] = drop
        self._flush()

    def _broken(self) -> None:
        """The capture lost the framing: the PDU being read cannot be completed."""
        pdu, self._open = self._open, None
        self._cur = None
        if pdu is None:
            return
        if self._mode is not None:
            self._mode = None
            raise WriterBrokenError(
                "the capture lost bytes of a P-DATA-TF that was already being sent"
            )
        self._queue.remove(pdu)
        for pdv in pdu.pdvs:
            self._held -= pdv.size
            self._dropping[pdv.context_id] = True  # the rest of its message is not sent
            self._commands.pop(pdv.context_id, None)
        self._note_lost()
        self._flush()

    def _note_lost(self) -> None:
        self._once("a P-DATA-TF the capture lost part of was not sent, nor the rest of its message")

    # --- sending -----------------------------------------------------------------------

    def _blocked(self) -> bool:
        """A command set is not complete yet, and some of it is held: it may be renumbered."""
        return any(not p.sent for pdvs in self._commands.values() for p in pdvs)

    def _flush(self) -> None:
        while self._queue and self._queue[0].closed and not self._blocked():
            self._emit(self._queue.popleft())

    def _force(self) -> None:
        if self._blocked():
            self._once("a command set split over several PDUs was sent before it was complete")
        while self._queue and self._queue[0].closed:
            self._emit(self._queue.popleft())
        if self._queue:
            self._commit()

    def _emit(self, pdu: _Pdu) -> None:
        for pdv in pdu.pdvs:
            self._held -= pdv.size
        kept = [p for p in pdu.pdvs if not p.dropped]
        if not kept:
            return
        length = sum(6 + p.size for p in kept)
        if self._must_split(length, pdu.length):
            self.split += 1
            self._send_packed(kept)
            return
        out: list[bytes] = [PDU_HEADER.pack(_P_DATA_TF, 0, length)]
        for p in kept:
            out.append(PDV_HEADER.pack(p.size + 2, p.context_id, p.control))
            out.extend(p.parts)
            p.sent = True
        self._send(b"".join(out))

    def _must_split(self, length: int, captured: int) -> bool:
        if self.keep_framing or not self.max_length or length <= self.max_length:
            return False
        # A PDU the captured peer was already sent too long is the defect being replayed.
        return not (self.captured_max and captured > self.captured_max)

    def _piece(self) -> int:
        return max(_even(self.max_length - 6), 2)

    def _send_packed(self, pdvs: list[_Pdv]) -> None:
        """PDVs cut and packed into PDUs of at most ``max_length`` bytes."""
        limit = max(self.max_length, 8)
        out: list[bytes | memoryview] = []
        body = 0

        def close() -> None:
            nonlocal body
            if body:
                self._send(PDU_HEADER.pack(_P_DATA_TF, 0, body) + b"".join(out))
            out.clear()
            body = 0

        for p in pdvs:
            data = memoryview(b"".join(p.parts))
            p.sent = True
            at = 0
            while True:
                room = limit - body - 6
                left = len(data) - at
                take = left if left <= room else _even(room)
                if take <= 0 and left > 0:
                    close()
                    continue
                last = at + take == len(data)
                control = p.control if last else p.control & ~2
                out.append(PDV_HEADER.pack(take + 2, p.context_id, control))
                out.append(data[at : at + take])
                body += 6 + take
                at += take
                if last:
                    break
                close()
        close()

    def _commit(self) -> None:
        """Send the held PDUs, and start streaming the one being read."""
        while self._queue and self._queue[0].closed:
            self._emit(self._queue.popleft())
        pdu = self._open
        if pdu is None or self._mode is not None:
            return
        self._queue.remove(pdu)
        dropped = any(p.dropped for p in pdu.pdvs)
        declared = sum(6 + p.length for p in pdu.pdvs)
        if dropped or self._must_split(max(pdu.length, declared), pdu.length):
            self._mode = _Mode.PIECES
            if not dropped:
                self.split += 1
        else:
            self._mode = _Mode.AS_IS
            self._send(PDU_HEADER.pack(_P_DATA_TF, 0, pdu.length))
            self._stream_length = pdu.length
        held, pdu.pdvs = pdu.pdvs, []
        for p in held:
            self._held -= p.size
            parts, p.parts = p.parts, []
            self._stream_pdv(p)
            for part in parts:
                self._stream_data(p, part)
            if p.command:
                p.parts = parts  # still needed whole when the command set ends

    def _stream_pdv(self, pdv: _Pdv) -> None:
        if self._mode is _Mode.AS_IS:
            if pdv.dropped:
                self._once("a message could not be left out: it shares a PDU being streamed")
                pdv.dropped = False
            pdv.sent = True
            self._stream_length -= 6 + pdv.length
            self._send(PDV_HEADER.pack(pdv.length + 2, pdv.context_id, pdv.control))
        elif pdv.length == 0 and not pdv.dropped:
            pdv.sent = True
            self._send(
                PDU_HEADER.pack(_P_DATA_TF, 0, 6) + PDV_HEADER.pack(2, pdv.context_id, pdv.control)
            )

    def _stream_data(self, pdv: _Pdv, data: memoryview | bytes) -> None:
        if self._mode is _Mode.AS_IS:
            pdv.emitted += len(data)
            self._send(data)
            return
        if pdv.dropped:
            return
        view = memoryview(data)
        while view:
            if self._piece_left == 0:
                n = min(self._piece(), pdv.length - pdv.emitted)
                if n <= 0:  # more data than the PDV declared: cannot happen with the framer
                    return
                last = pdv.emitted + n == pdv.length
                control = pdv.control if last else pdv.control & ~2
                pdv.sent = True
                self._send(
                    PDU_HEADER.pack(_P_DATA_TF, 0, n + 6)
                    + PDV_HEADER.pack(n + 2, pdv.context_id, control)
                )
                self._piece_left = n
            take = min(self._piece_left, len(view))
            self._send(view[:take])
            view = view[take:]
            self._piece_left -= take
            pdv.emitted += take

    def _zeros(self, n: int) -> None:
        while n > 0:
            k = min(n, len(_ZEROS))
            self._send(_ZEROS[:k])
            n -= k

    def _once(self, text: str) -> None:
        if text not in self._noted:
            self._noted.add(text)
            self._note(text)
