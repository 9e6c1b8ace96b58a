"""TCP reassembly: segments in capture order → ordered bytes per direction, with holes named.

:class:`FlowTable` maps segments to connections (one :class:`AssociationObserver` each) and
reassembles each direction:

* in-order data goes straight through (no copy);
* out-of-order data waits in a bounded buffer (:data:`REORDER_LIMIT` per direction);
* retransmitted and overlapping data is delivered once; if its bytes differ from what was
  delivered, a ``retransmission-differs`` anomaly says so;
* bytes the capture lost become an explicit gap (never zero-filled, never skipped in
  silence). A gap is declared as soon as it is certain: when the receiver acknowledges bytes
  the capture never saw, when the reorder buffer is full, when the snap length cut a
  packet, or when the connection ends;
* SYN fixes the roles (client = sender of the SYN) and the stream origins; without it, the
  first segment of each direction is its origin (a connection that began before the
  capture) and the roles are guessed from the ports, to be corrected by the observer if an
  A-ASSOCIATE-RQ says otherwise;
* FIN is delivered after the data before it; RST at once.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from typing import NamedTuple

from .events import AnalysisError, CloseKind, Endpoint
from .observer import DEFAULT_KEEP, AssociationObserver, Emit, PayloadTap

FIN = 0x01
SYN = 0x02
RST = 0x04
ACK = 0x10

#: Out-of-order bytes buffered per direction before the hole in front of them is declared lost.
REORDER_LIMIT = 4 << 20
#: Delivered bytes remembered per direction to compare retransmissions against.
RECENT_LIMIT = 256 << 10
#: Closed connections remembered, so that late ACKs and retransmissions do not open new ones.
CLOSED_MEMORY = 4096

#: Ports taken as the server side when the handshake was not captured.
WELL_KNOWN_DICOM_PORTS = frozenset({104, 11112, 2761, 2762, 4242})


class Segment(NamedTuple):
    """One TCP segment as a capture source decodes it.

    ``src``/``dst`` are packed addresses (4 or 16 bytes). ``missing`` counts payload bytes
    that were on the wire but not in the capture (snap length).
    """

    ts: int
    frame: int | None
    src: bytes
    sport: int
    dst: bytes
    dport: int
    seq: int
    ack: int
    flags: int
    payload: memoryview | bytes
    missing: int = 0


def endpoint(address: bytes, port: int) -> Endpoint:
    """An :class:`Endpoint` from a packed address."""
    return Endpoint(str(ipaddress.ip_address(address)), port)


class _Half:
    """One direction of a connection."""

    __slots__ = (
        "acked",
        "base",
        "fin_at",
        "fin_frame",
        "fin_ts",
        "nxt",
        "pending",
        "pending_bytes",
        "recent",
        "recent_bytes",
        "started",
    )

    def __init__(self) -> None:
        self.base = 0
        self.nxt = 0
        self.started = False
        self.pending: dict[int, memoryview | bytes] = {}
        self.pending_bytes = 0
        self.fin_at: int | None = None
        self.fin_ts = 0
        self.fin_frame: int | None = None
        self.recent: deque[tuple[int, memoryview | bytes]] = deque()
        self.recent_bytes = 0
        self.acked = -1  # the last acknowledgement number the peer sent for this direction

    def start(self, seq: int) -> None:
        self.base = seq
        self.nxt = 0
        self.started = True
        self.acked = -1

    def offset(self, seq: int) -> int:
        """Stream offset of a sequence number, unwrapped around the next expected byte."""
        rel = (seq - self.base) & 0xFFFFFFFF
        nxt = self.nxt
        off = (nxt & ~0xFFFFFFFF) | rel
        if off - nxt > 0x7FFFFFFF:
            off -= 1 << 32
        elif nxt - off > 0x80000000:
            off += 1 << 32
        return off


_Key = tuple[bytes, int, bytes, int]


def _is_new_syn(half: _Half, seq: int) -> bool:
    """A SYN from the side whose direction is ``half`` starts a new connection."""
    return not (half.started and half.base == (seq + 1) & 0xFFFFFFFF)


class _Connection:
    __slots__ = ("client", "closed", "halves", "keys", "observer", "rst")

    def __init__(
        self, observer: AssociationObserver, client: tuple[bytes, int], keys: tuple[_Key, _Key]
    ) -> None:
        self.observer = observer
        self.client = client
        self.keys = keys
        self.halves = (_Half(), _Half())
        self.closed = [False, False]
        self.rst = False


class FlowTable:
    """Reassembles every TCP connection of a capture and feeds one observer per connection.

    ``server_ports`` are extra ports taken as the server side when a connection's handshake
    was not captured. ``keep`` and ``payload`` (a tap on the framed bytes of every
    connection, see :mod:`dissectors.observer`) are passed to each observer.
    """

    def __init__(
        self,
        emit: Emit,
        *,
        server_ports: frozenset[int] = frozenset(),
        keep: int = DEFAULT_KEEP,
        reorder_limit: int = REORDER_LIMIT,
        payload: PayloadTap | None = None,
    ) -> None:
        self._emit = emit
        self._payload = payload
        self._server_ports = WELL_KNOWN_DICOM_PORTS | server_ports
        self._keep = keep
        self._reorder_limit = reorder_limit
        # Each direction of a connection under its own key, with what its segments need:
        # (connection, from the client, this direction's half, the other direction's half).
        self._flows: dict[_Key, tuple[_Connection, bool, _Half, _Half]] = {}
        self._closed: OrderedDict[_Key, int] = OrderedDict()
        self._next_id = 1
        self.last_ts = 0
        self.last_frame: int | None = None

    @property
    def open_connections(self) -> int:
        return len(self._flows) // 2

    def feed(self, seg: Segment) -> None:
        """Process one segment (in capture order)."""
        # One call per segment: the body is inline, in a try that costs nothing unless a
        # bug in the analysis of one connection raises (that connection alone is dropped).
        try:
            ts, frame, src, sport, dst, dport, seq, ack, flags, payload, missing = seg
            self.last_ts = ts
            self.last_frame = frame
            key = (src, sport, dst, dport)
            route = self._flows.get(key)
            if route is None or (flags & (SYN | ACK) == SYN and _is_new_syn(route[2], seq)):
                if route is not None:
                    self._end(route[0], ts, frame)
                if key in self._closed and not flags & SYN:
                    return  # a late packet of a connection that already ended
                if self._open(seg) is None:
                    return
                route = self._flows[key]
            conn, from_client, half, other = route
            if flags & SYN:
                if not half.started or not half.nxt:
                    half.start((seq + 1) & 0xFFFFFFFF)
                if flags & ACK and not from_client:
                    conn.observer.accepted()
                return
            obs = conn.observer
            # The same acknowledgement again (the bulk of a one-way transfer) says nothing new.
            if flags & ACK and ack != other.acked and other.started and obs.is_dicom is not False:
                other.acked = ack
                self._acked(conn, not from_client, other, other.offset(ack), seg)
            if payload or missing:
                if not half.started:
                    half.start(seq)
                if obs.is_dicom is False:
                    obs.data(from_client, payload, ts, frame)  # only counted
                else:
                    self._data(conn, from_client, half, half.offset(seq), seg)
            if flags & FIN and half.fin_at is None:
                if not half.started:
                    half.start(seq)
                half.fin_at = half.offset(seq) + len(payload) + missing
                half.fin_ts = ts
                half.fin_frame = frame
                self._maybe_fin(conn, from_client, half)
            if flags & RST and not conn.rst:
                conn.rst = True
                for i, h in enumerate(conn.halves):
                    self._flush(conn, i == 0, h, ts, frame)
                obs.closed(from_client, CloseKind.RST, ts, frame)
                self._end(conn, ts, frame)
                return
            if conn.closed[0] and conn.closed[1]:
                self._end(conn, ts, frame)
        except Exception as exc:
            route = self._flows.get((seg.src, seg.sport, seg.dst, seg.dport))
            if route is None:
                raise
            self._failed(route[0], exc, seg.ts, seg.frame)

    def _failed(self, conn: _Connection, exc: Exception, ts: int, frame: int | None) -> None:
        """A bug in the analysis of one connection: report it, forget the connection."""
        where = f"frame {frame}" if frame is not None else "this point"
        self._emit(
            AnalysisError(
                connection=conn.observer.connection,
                text=f"analysis of this connection stopped at {where}: {type(exc).__name__}: {exc}",
                ts=ts,
                frame=frame,
            )
        )
        self._forget(conn)

    def finish(self) -> None:
        """The capture ended: declare what is still missing and end every connection."""
        for conn in list({id(r[0]): r[0] for r in self._flows.values()}.values()):
            try:
                for i, h in enumerate(conn.halves):
                    self._flush(conn, i == 0, h, self.last_ts, self.last_frame)
                conn.observer.finish(self.last_ts, self.last_frame)
            except Exception as exc:
                self._failed(conn, exc, self.last_ts, self.last_frame)
        self._flows.clear()

    # --- connections -----------------------------------------------------------------

    def _open(self, seg: Segment) -> _Connection | None:
        flags = seg.flags
        if flags & RST and not seg.payload:
            return None  # a reset for a connection we never saw: nothing to report
        handshake = bool(flags & SYN)
        # SYN: the sender is the client; SYN+ACK: the receiver is.
        client_is_src = not flags & ACK if flags & SYN else self._guess_client_is_src(seg)
        if client_is_src:
            client, server = (seg.src, seg.sport), (seg.dst, seg.dport)
        else:
            client, server = (seg.dst, seg.dport), (seg.src, seg.sport)
        conn_id = self._next_id
        self._next_id += 1
        observer = AssociationObserver(
            conn_id,
            endpoint(*client),
            endpoint(*server),
            self._emit,
            ts=seg.ts,
            frame=seg.frame,
            handshake=handshake,
            keep=self._keep,
            payload=self._payload,
        )
        k1 = (client[0], client[1], server[0], server[1])
        k2 = (server[0], server[1], client[0], client[1])
        conn = _Connection(observer, client, (k1, k2))
        if flags & SYN and flags & ACK:
            conn.halves[0].start(seg.ack)  # the client's ISN + 1
        client_half, server_half = conn.halves
        self._flows[k1] = (conn, True, client_half, server_half)
        self._flows[k2] = (conn, False, server_half, client_half)
        self._closed.pop(k1, None)
        self._closed.pop(k2, None)
        return conn

    def _guess_client_is_src(self, seg: Segment) -> bool:
        ports = self._server_ports
        if seg.dport in ports and seg.sport not in ports:
            return True
        if seg.sport in ports and seg.dport not in ports:
            return False
        return seg.sport > seg.dport

    def _end(self, conn: _Connection, ts: int, frame: int | None) -> None:
        conn.observer.finish(ts, frame)
        self._forget(conn)
        while len(self._closed) > CLOSED_MEMORY:
            self._closed.popitem(last=False)

    def _forget(self, conn: _Connection) -> None:
        """Stop routing segments to ``conn``; remember it as closed."""
        for key in conn.keys:
            route = self._flows.get(key)
            if route is not None and route[0] is conn:
                del self._flows[key]
            self._closed[key] = conn.observer.connection

    # --- reassembly ------------------------------------------------------------------

    def _data(
        self, conn: _Connection, from_client: bool, half: _Half, off: int, seg: Segment
    ) -> None:
        payload = seg.payload
        end = off + len(payload)
        obs = conn.observer
        if off == half.nxt:
            if payload:
                obs.data(from_client, payload, seg.ts, seg.frame)
                self._remember(half, off, payload)
            half.nxt = end
            if seg.missing:
                obs.gap(from_client, seg.missing, seg.ts, seg.frame)
                half.nxt += seg.missing
            if half.pending:
                self._drain(conn, from_client, half, seg.ts, seg.frame)
            return
        if end <= half.nxt:
            self._compare(conn, from_client, half, off, payload, seg)
            return
        if off < half.nxt:
            cut = half.nxt - off
            self._compare(conn, from_client, half, off, payload[:cut], seg)
            obs.data(from_client, payload[cut:], seg.ts, seg.frame)
            self._remember(half, half.nxt, payload[cut:])
            half.nxt = end
            if half.pending:
                self._drain(conn, from_client, half, seg.ts, seg.frame)
            return
        # Out of order: wait for what is in front of it.
        if not payload:
            return
        previous = half.pending.get(off)
        if previous is not None:
            if len(previous) >= len(payload):
                if bytes(previous[: len(payload)]) != bytes(payload):
                    self._differs(conn, from_client, off, seg)
                return
            half.pending_bytes -= len(previous)
        half.pending[off] = payload
        half.pending_bytes += len(payload)
        if half.pending_bytes > self._reorder_limit:
            first = min(half.pending)
            obs.gap(from_client, first - half.nxt, seg.ts, seg.frame)
            half.nxt = first
            self._drain(conn, from_client, half, seg.ts, seg.frame)

    def _drain(
        self, conn: _Connection, from_client: bool, half: _Half, ts: int, frame: int | None
    ) -> None:
        obs = conn.observer
        pending = half.pending
        while pending:
            data = pending.pop(half.nxt, None)
            if data is not None:
                half.pending_bytes -= len(data)
                obs.data(from_client, data, ts, frame)
                self._remember(half, half.nxt, data)
                half.nxt += len(data)
                continue
            first = min(pending)
            if first > half.nxt:
                break
            data = pending.pop(first)
            half.pending_bytes -= len(data)
            end = first + len(data)
            if end > half.nxt:
                cut = half.nxt - first
                obs.data(from_client, data[cut:], ts, frame)
                self._remember(half, half.nxt, data[cut:])
                half.nxt = end
        self._maybe_fin(conn, from_client, half)

    def _acked(
        self, conn: _Connection, from_client: bool, half: _Half, acked: int, seg: Segment
    ) -> None:
        """The peer acknowledged up to ``acked``: anything below it the capture lacks is lost."""
        if half.fin_at is not None and acked > half.fin_at:
            acked = half.fin_at
        if acked <= half.nxt or acked - half.nxt > 0x7FFFFFFF:
            return
        obs = conn.observer
        while half.nxt < acked:
            if half.pending:
                self._drain(conn, from_client, half, seg.ts, seg.frame)
                if half.nxt >= acked:
                    break
                following = [o for o in half.pending if o > half.nxt]
                stop = min(min(following), acked) if following else acked
            else:
                stop = acked
            obs.gap(from_client, stop - half.nxt, seg.ts, seg.frame)
            half.nxt = stop
            if half.pending:
                self._drain(conn, from_client, half, seg.ts, seg.frame)
        self._maybe_fin(conn, from_client, half)

    def _flush(
        self, conn: _Connection, from_client: bool, half: _Half, ts: int, frame: int | None
    ) -> None:
        """Deliver everything buffered, declaring the holes between."""
        obs = conn.observer
        while half.pending:
            self._drain(conn, from_client, half, ts, frame)
            if not half.pending:
                break
            first = min(half.pending)
            obs.gap(from_client, first - half.nxt, ts, frame)
            half.nxt = first
        if half.fin_at is not None and half.fin_at > half.nxt and not conn.rst:
            obs.gap(from_client, half.fin_at - half.nxt, ts, frame)
            half.nxt = half.fin_at
        self._maybe_fin(conn, from_client, half)

    def _maybe_fin(self, conn: _Connection, from_client: bool, half: _Half) -> None:
        i = 0 if from_client else 1
        if half.fin_at is not None and half.nxt >= half.fin_at and not conn.closed[i]:
            conn.closed[i] = True
            conn.observer.closed(from_client, CloseKind.FIN, half.fin_ts, half.fin_frame)

    def _remember(self, half: _Half, off: int, data: memoryview | bytes) -> None:
        half.recent.append((off, data))
        half.recent_bytes += len(data)
        while half.recent_bytes > RECENT_LIMIT and len(half.recent) > 1:
            _, old = half.recent.popleft()
            half.recent_bytes -= len(old)

    def _compare(
        self,
        conn: _Connection,
        from_client: bool,
        half: _Half,
        off: int,
        data: memoryview | bytes,
        seg: Segment,
    ) -> None:
        """Retransmitted bytes: check them against what was delivered, where remembered."""
        end = off + len(data)
        for r_off, r_data in half.recent:
            r_end = r_off + len(r_data)
            lo, hi = max(off, r_off), min(end, r_end)
            if lo < hi and bytes(data[lo - off : hi - off]) != bytes(
                r_data[lo - r_off : hi - r_off]
            ):
                self._differs(conn, from_client, lo, seg)
                return

    def _differs(self, conn: _Connection, from_client: bool, off: int, seg: Segment) -> None:
        conn.observer.anomaly(
            from_client,
            "retransmission-differs",
            "a retransmitted TCP segment carries different bytes than the first copy; "
            "the first copy was used",
            seg.ts,
            seg.frame,
            off,
        )
