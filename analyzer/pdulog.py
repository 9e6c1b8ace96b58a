"""A compact, columnar record of one association's PDUs (for large captures).

A :class:`~analyzer.model.PduRecord` object costs about 300 bytes; a capture of a million
PDUs would hold 300 MB of them for a timeline. :class:`PduLog` keeps the same facts in
typed arrays, 39 bytes a PDU, and rebuilds records on demand. What it gives up: the PDVs of
one PDU are summed per kind (command, data set) and keep only the first PDV's context ID,
which is all a timeline needs (a run of P-DATA-TF PDUs is grouped by those same facts).
"""

from __future__ import annotations

from array import array

from .model import PduRecord

# flags: which kinds of PDV a P-DATA-TF carried, whether each kind ended its fragment
# sequence, whether the data set PDV came before the command PDV; who sent it; complete
_CMD, _CMD_LAST, _DATA, _DATA_LAST, _DATA_FIRST = 1, 2, 4, 8, 16
_FROM_REQUESTOR, _COMPLETE = 32, 64
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


class PduLog:
    """The PDUs of one association, in arrival order, as parallel arrays."""

    __slots__ = (
        "_cmd",
        "_ctx",
        "_cut",
        "_data",
        "_end_frame",
        "_end_ts",
        "_flags",
        "_frame",
        "_kind",
        "_length",
        "_ts",
    )

    def __init__(self) -> None:
        # Times in ns since 1970 fit 64 bits until 2262; a capture can say anything (a wild
        # pcapng if_tsoffset): then they go to plain lists, as large as they need to be.
        self._ts: array[int] | list[int] = array("q")
        self._end_ts: array[int] | list[int] = array("q")
        self._frame = array("i")  # -1: no frame number
        self._end_frame = array("i")
        self._length = array("I")
        self._kind = array("B")  # PDU type
        self._flags = array("B")
        self._ctx = array("B")
        self._cmd = array("I")  # command bytes in this PDU
        self._data = array("I")  # data set bytes in this PDU
        # The size of each PDU that was cut (otherwise length + 6): one or two at most.
        self._cut: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._ts)

    def append(self, pdu: PduRecord) -> None:
        """Add one PDU."""
        flags = (_FROM_REQUESTOR if pdu.from_requestor else 0) | (_COMPLETE if pdu.complete else 0)
        cmd = data = 0
        ctx = pdu.pdvs[0][0] if pdu.pdvs else 0
        for _, control, size in pdu.pdvs:
            if control & 1:
                flags |= _CMD | (_CMD_LAST if control & 2 else 0)
                cmd += size
            else:
                if not flags & _CMD:
                    flags |= _DATA_FIRST
                flags |= _DATA | (_DATA_LAST if control & 2 else 0)
                data += size
        ts, end_ts = pdu.ts, pdu.end_ts
        if not (_INT64_MIN <= ts <= _INT64_MAX and _INT64_MIN <= end_ts <= _INT64_MAX):
            self._ts, self._end_ts = list(self._ts), list(self._end_ts)
        self._ts.append(ts)
        self._end_ts.append(end_ts)
        self._frame.append(-1 if pdu.frame is None else pdu.frame)
        self._end_frame.append(-1 if pdu.end_frame is None else pdu.end_frame)
        if pdu.size != pdu.length + 6:
            self._cut[len(self._length)] = pdu.size
        self._length.append(pdu.length)
        self._kind.append(pdu.pdu_type & 0xFF)
        self._flags.append(flags)
        self._ctx.append(ctx & 0xFF)
        self._cmd.append(cmd)
        self._data.append(data)

    def record(self, association: int, i: int) -> PduRecord:
        """PDU ``i`` as a record (its PDVs summarised: one per kind, in order)."""
        flags, ctx = self._flags[i], self._ctx[i]
        command = (ctx, 1 | (2 if flags & _CMD_LAST else 0), self._cmd[i])
        data = (ctx, 2 if flags & _DATA_LAST else 0, self._data[i])
        pdvs: tuple[tuple[int, int, int], ...] = ()
        if flags & _CMD and flags & _DATA:
            pdvs = (data, command) if flags & _DATA_FIRST else (command, data)
        elif flags & _CMD:
            pdvs = (command,)
        elif flags & _DATA:
            pdvs = (data,)
        frame, end_frame = self._frame[i], self._end_frame[i]
        return PduRecord(
            association=association,
            from_requestor=bool(flags & _FROM_REQUESTOR),
            pdu_type=self._kind[i],
            length=self._length[i],
            ts=self._ts[i],
            frame=None if frame < 0 else frame,
            end_ts=self._end_ts[i],
            end_frame=None if end_frame < 0 else end_frame,
            pdvs=pdvs,
            complete=bool(flags & _COMPLETE),
            size=self._cut.get(i, self._length[i] + 6),
        )

    def records(self, association: int) -> list[PduRecord]:
        """Every PDU as a record."""
        return [self.record(association, i) for i in range(len(self))]

    def nbytes(self) -> int:
        """Memory held by the arrays' items (8 bytes a time once they are plain lists)."""
        return sum(
            (a.itemsize if isinstance(a, array) else 8) * len(a)
            for a in (
                self._ts,
                self._end_ts,
                self._frame,
                self._end_frame,
                self._length,
                self._kind,
                self._flags,
                self._ctx,
                self._cmd,
                self._data,
            )
        )
