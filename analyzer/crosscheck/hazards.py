"""Where tshark cannot be held to what dicomtap shows, and why.

A :class:`Hazard` is something in the capture after which tshark loses its way on one side
of an association: bytes lost (a hole, or the snap length), a capture that began
mid-association, out-of-order segments with tshark's reassembly of them off, a PDU type
PS3.8 does not define. It holds from its frame until the two agree again on that side.
A PDU the capture ends inside, or of an undefined type, tshark cannot show at all
(:func:`excluded`).
"""

from __future__ import annotations

import ipaddress
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from analyzer.model import Association, Endpoint, PduRecord
from analyzer.names import pdu_name
from analyzer.store import Store

from .records import Address, FrameRow, Reason

__all__ = ["INF", "Hazard", "Hazards", "address", "connection_key", "excluded", "hazards_of"]

INF = 1 << 62
"""A frame after every frame."""


def address(endpoint: Endpoint) -> Address:
    """An endpoint as tshark shows it (address in compressed form, port)."""
    try:
        return ipaddress.ip_address(endpoint.ip).compressed, endpoint.port
    except ValueError:
        return endpoint.ip, endpoint.port


def connection_key(a: Address | None, b: Address | None) -> frozenset[Address | None]:
    """The same key for both directions of a connection."""
    return frozenset((a, b))


# --- hazards ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hazard:
    """From ``frame`` on (on one side), tshark may not follow; ``cause`` says what happened."""

    frame: int
    reason: Reason
    cause: str


class Hazards:
    """Per side: what makes tshark lose its way from a frame on, and until when.

    A hazard holds from its frame until the next frame on the same side where the two agree
    on the PDUs (tshark has found its way again). Walk the frames in order with :meth:`at`
    and :meth:`agreed`, then :meth:`finish`; :meth:`excuse` answers afterwards.
    """

    def __init__(self) -> None:
        self._pending: dict[bool, deque[Hazard]] = {True: deque(), False: deque()}
        self._active: dict[bool, list[Hazard]] = {True: [], False: []}
        self._spans: dict[bool, list[tuple[int, int, Hazard]]] = {True: [], False: []}
        self._begins: dict[bool, list[int]] = {True: [], False: []}

    def add(self, from_requestor: bool, hazard: Hazard) -> None:
        self._pending[from_requestor].append(hazard)

    def prepare(self) -> None:
        for side, hazards in self._pending.items():
            self._pending[side] = deque(sorted(hazards, key=lambda h: h.frame))

    def at(self, from_requestor: bool, frame: int) -> Hazard | None:
        """The hazard in force at ``frame`` on this side, frames walked in order: the latest."""
        pending, active = self._pending[from_requestor], self._active[from_requestor]
        while pending and pending[0].frame <= frame:
            active.append(pending.popleft())
        if not active:
            return None
        # A capture that began mid-association explains all until the two first agree
        # (tshark's errors on the data it then misreads included).
        return active[0] if active[0].reason == Reason.MID_STREAM else active[-1]

    def agreed(self, from_requestor: bool, frame: int) -> None:
        """Both agree at ``frame``: what was in force on this side ends here."""
        for hazard in self._active[from_requestor]:
            self._spans[from_requestor].append((hazard.frame, frame, hazard))
        self._active[from_requestor].clear()

    def finish(self) -> None:
        for side in (True, False):
            for hazard in (*self._active[side], *self._pending[side]):
                self._spans[side].append((hazard.frame, INF, hazard))
            self._active[side].clear()
            self._pending[side].clear()
            self._spans[side].sort(key=lambda s: s[0])
            self._begins[side] = [s[0] for s in self._spans[side]]

    def excuse(self, from_requestor: bool, frame: int, start: int | None = None) -> Hazard | None:
        """The hazard in force at ``frame``, or one that began inside ``start``..``frame``
        (a PDU or a message spanning those frames that had bytes lost in it).

        Spans sorted by their start have ascending ends (an agreement ends every span in
        force), so only the last span that starts by ``frame`` can hold there.
        """
        i = bisect_right(self._begins[from_requestor], frame)
        if not i:
            return None
        begin, end, hazard = self._spans[from_requestor][i - 1]
        if frame < end or begin >= (frame if start is None else start):
            return hazard
        return None


def hazards_of(
    association: Association,
    store: Store,
    pdus: Sequence[PduRecord],
    rows: Sequence[FrameRow],
    reorder: bool,
) -> Hazards:
    hazards = Hazards()
    truncated = {row.frame for row in rows if row.truncated}
    if association.partial:
        start = association.start_frame or 0
        for side in (True, False):
            hazards.add(side, Hazard(start, Reason.MID_STREAM, f"capture starts at frame {start}"))
    for gap in store.gaps(association.id):
        if gap.frame is None:
            continue
        if gap.frame in truncated:
            hazard = Hazard(
                gap.frame,
                Reason.SNAP_LENGTH,
                f"frame {gap.frame} cut ({gap.size} bytes not captured)",
            )
        else:
            hazard = Hazard(gap.frame, Reason.HOLE, f"{gap.size} bytes lost at frame {gap.frame}")
        hazards.add(gap.from_requestor, hazard)
    for pdu in pdus:
        if pdu.end_frame is not None and not 1 <= pdu.pdu_type <= 7:
            hazards.add(
                pdu.from_requestor,
                Hazard(
                    pdu.end_frame,
                    Reason.UNKNOWN_PDU_TYPE,
                    f"{pdu_name(pdu.pdu_type)} at frame {pdu.end_frame}",
                ),
            )
    client = address(association.client)
    for row in rows:
        if row.malformed is not None:
            hazards.add(row.src == client, Hazard(row.frame, Reason.MALFORMED, row.malformed))
    if not reorder:
        for row in rows:
            if row.out_of_order:
                hazards.add(
                    row.src == client,
                    Hazard(row.frame, Reason.OUT_OF_ORDER, f"frame {row.frame} out of order"),
                )
    hazards.prepare()
    return hazards


def excluded(pdu: PduRecord) -> Hazard | None:
    """Why tshark cannot show this PDU at all, if it cannot."""
    frame = pdu.end_frame or 0
    if not pdu.complete:
        return Hazard(frame, Reason.INCOMPLETE_PDU, f"{pdu_name(pdu.pdu_type)} at frame {frame}")
    if not 1 <= pdu.pdu_type <= 7:
        return Hazard(frame, Reason.UNKNOWN_PDU_TYPE, f"{pdu_name(pdu.pdu_type)} at frame {frame}")
    return None
