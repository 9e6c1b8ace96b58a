"""Where each TCP segment's payload lies in its stream, as the flow table placed it.

The anonymizer's edits are in stream offsets (what the framer reports); the capture is made
of packets. For each packet carrying TCP payload, :class:`Positions` records the connection,
the direction and the stream offset of its first payload byte, exactly as the flow table
computed them, so that a retransmission or an out-of-order segment gets the same edits as
the bytes it repeats. The flow table does not report these (its payload tap gives stream
offsets of PDV bytes, not of segments): they are read from its state, in this one place,
before the segment is fed (after it, for the segment that opens a connection).
"""

from __future__ import annotations

import ipaddress
from array import array

from dissectors import FlowTable, Segment

from .packets import Where


class Positions:
    """Segment positions by frame number (frames are numbered from 1, without holes)."""

    def __init__(self, table: FlowTable) -> None:
        self._table = table
        self._conn = array("i")
        self._offset = array("q")
        self._from_client = bytearray()
        self._clients: dict[int, tuple[bytes, int]] = {}
        self._swapped: set[int] = set()
        self._dicom: set[int] = set()

    def _place(self, seg: Segment, *, after: bool) -> bool:
        key = (seg.src, seg.sport, seg.dst, seg.dport)
        conn = self._table.connection(key)
        if conn is None:
            return False
        from_client = (seg.src, seg.sport) == conn.client
        half = conn.halves[0 if from_client else 1]
        if not half.started:
            return False
        if not after and seg.flags & 0x02:  # a SYN may open a new connection on this key
            return False
        frame = seg.frame or 0
        if frame <= 0:
            return True
        grow = frame - len(self._conn)
        if grow > 0:
            self._conn.extend([-1] * grow)
            self._offset.extend([0] * grow)
            self._from_client.extend(bytes(grow))
        i = frame - 1
        number = conn.observer.connection
        self._conn[i] = number
        self._offset[i] = half.offset(seg.seq)
        self._from_client[i] = from_client
        self._clients.setdefault(number, conn.client)
        return True

    def before(self, seg: Segment) -> bool:
        """Record ``seg`` if its connection is known; False: call :meth:`after` once fed."""
        if not seg.payload and not seg.missing:
            return True
        return self._place(seg, after=False)

    def after(self, seg: Segment) -> None:
        self._place(seg, after=True)

    def association(self, connection: int, requestor: tuple[str, int], dicom: bool) -> None:
        """What the model says of ``connection``: its requestor (ip text, port), DICOM or not."""
        client = self._clients.get(connection)
        if client is not None and (str(ipaddress.ip_address(client[0])), client[1]) != requestor:
            self._swapped.add(connection)
        if dicom:
            self._dicom.add(connection)

    def where(self, frame: int) -> Where | None:
        """(connection, from_requestor, stream offset, carries DICOM) of ``frame``'s payload."""
        i = frame - 1
        if not 0 <= i < len(self._conn) or self._conn[i] < 0:
            return None
        connection = self._conn[i]
        from_requestor = bool(self._from_client[i]) != (connection in self._swapped)
        return connection, from_requestor, self._offset[i], connection in self._dicom
