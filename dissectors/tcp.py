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

Each connection's TCP health (retransmissions, zero windows, silences, resets, round trips,
see :mod:`dissectors.tcphealth`) is followed on the way: its episodes become
:class:`TcpAnomaly` notes as they end, its summary a :class:`TcpSummary` event just before
the observer's last events.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import NamedTuple

from .events import AnalysisError, CloseKind, Endpoint
from .observer import DEFAULT_KEEP, AssociationObserver, Emit, PayloadTap
from .tcphealth import HealthTracker

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

#: Capture time after which a connection that has sent nothing is finished and released
#: (memory stays flat however many connections a capture holds): one that never got past
#: its SYN (Linux gives up retrying after 127 s), and any other.
HANDSHAKE_IDLE_NS = 180 * 1_000_000_000
IDLE_NS = 3600 * 1_000_000_000
#: Connections held at once (about 3.5 KB each while they carry no data).
MAX_OPEN = 20_000
#: How often, in capture time, connections are checked for idleness.
SWEEP_EVERY_NS = 10 * 1_000_000_000

#: Ports taken as the server side when the handshake was not captured.
WELL_KNOWN_DICOM_PORTS = frozenset({104, 11112, 2761, 2762, 4242})


class Segment(NamedTuple):
    """One TCP segment as a capture source decodes it.

    ``src``/``dst`` are packed addresses (4 or 16 bytes). ``missing`` counts payload bytes
    that were on the wire but not in the capture (snap length). ``injected``: a middlebox
    that relays the connection (``dicomtap proxy``) wrote this segment on its own, in the
    name of the side it appears to come from: its payload (whole PDUs, between PDUs) and its
    FIN or RST are a third party's, not that side's (see :mod:`dissectors.observer`). Taken
    into account for a segment delivered in order, as a relay's are. ``window`` is the
    advertised window field, unscaled (-1: not known).
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
    injected: bool = False
    window: int = -1


def _carried(conn: _Connection) -> bool:
    """Whether any data went either way on ``conn`` (or it is known to be DICOM)."""
    return bool(conn.observer.is_dicom) or any(h.nxt or h.pending_bytes for h in conn.halves)


@lru_cache(maxsize=1024)
def endpoint(address: bytes, port: int) -> Endpoint:
    """An :class:`Endpoint` from a packed address (the few a capture repeats, such as a
    server's, are one record each)."""
    return Endpoint(str(ipaddress.ip_address(address)), port)


class _Half:
    """One direction of a connection."""

    __slots__ = (
        "acked",
        "base",
        "fin_at",
        "fin_frame",
        "fin_injected",
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
        # Made with the first out-of-order segment, as ``recent`` is with the first data.
        self.pending: dict[int, memoryview | bytes] | None = None
        self.pending_bytes = 0
        self.fin_at: int | None = None
        self.fin_ts = 0
        self.fin_frame: int | None = None
        self.fin_injected = False
        # Made on first delivery: an empty deque costs 600 bytes, times every SYN of a scan.
        self.recent: deque[tuple[int, memoryview | bytes]] | None = None
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


class _Connection:
    __slots__ = (
        "client",
        "closed",
        "emit",
        "halves",
        "health",
        "keys",
        "last_frame",
        "last_ts",
        "observer",
        "rst",
    )

    def __init__(
        self,
        observer: AssociationObserver,
        client: tuple[bytes, int],
        keys: tuple[_Key, _Key],
        emit: Emit,
    ) -> None:
        self.observer = observer
        self.emit: Emit | None = emit
        self.health = HealthTracker(observer.connection, self._note)
        self.client = client
        self.keys = keys
        self.halves = (_Half(), _Half())
        self.closed = [False, False]
        self.rst = False
        self.last_ts = 0  # capture time and frame of the last segment
        self.last_frame: int | None = None

    def _note(self, from_client: bool, code: str, text: str, ts: int, frame: int | None) -> None:
        self.observer.anomaly(from_client, code, text, ts, frame, None)

    def finish(self, ts: int, frame: int | None) -> None:
        """Report the TCP health summary, then end the observer."""
        if self.emit is not None:
            swapped = endpoint(*self.client) != self.observer.client
            self.emit(self.health.finish(ts, frame, swapped=swapped))
            self.emit = None
        self.observer.finish(ts, frame)


class FlowTable:
    """Reassembles every TCP connection of a capture and feeds one observer per connection.

    ``server_ports`` are extra ports taken as the server side when a connection's handshake
    was not captured. ``keep`` and ``payload`` (a tap on the framed bytes of every
    connection, see :mod:`dissectors.observer`) are passed to each observer.

    A connection silent for ``idle_ns`` of capture time (``handshake_idle_ns`` when it has
    carried no data yet: a SYN unanswered, a port scan) is finished there, as if the capture
    had ended, and forgotten; if it speaks again, it is a new connection (a partial one).
    At most ``max_open`` connections are held: when a new one would exceed it, the tenth that
    were silent the longest are released the same way.
    """

    def __init__(
        self,
        emit: Emit,
        *,
        server_ports: frozenset[int] = frozenset(),
        keep: int = DEFAULT_KEEP,
        reorder_limit: int = REORDER_LIMIT,
        payload: PayloadTap | None = None,
        idle_ns: int = IDLE_NS,
        handshake_idle_ns: int = HANDSHAKE_IDLE_NS,
        max_open: int = MAX_OPEN,
    ) -> None:
        self._emit = emit
        self._max_open = max_open
        self._idle_ns = idle_ns
        self._handshake_idle_ns = handshake_idle_ns
        self._next_sweep = -(1 << 63)  # capture time of the next check for idleness
        self._payload = payload
        self._server_ports = WELL_KNOWN_DICOM_PORTS | server_ports
        self._keep = keep
        self._reorder_limit = reorder_limit
        self._flows: dict[_Key, _Connection] = {}
        self._closed: OrderedDict[_Key, int] = OrderedDict()
        self._next_id = 1
        self.last_ts = 0
        self.last_frame: int | None = None

    @property
    def open_connections(self) -> int:
        return len(self._flows) // 2

    @property
    def connections_opened(self) -> int:
        """How many connections have been opened: they are numbered 1 to this."""
        return self._next_id - 1

    def connection(self, key: tuple[bytes, int, bytes, int]) -> _Connection | None:
        """The open connection that a segment from ``(src, sport)`` to ``(dst, dport)``
        belongs to, if any: where the table places a segment (its ``client``, the
        ``observer``'s number, each direction's half in ``halves``: ``started``,
        ``offset(seq)``), for a reader that needs packets mapped to stream offsets."""
        return self._flows.get(key)

    def feed(self, seg: Segment) -> None:
        """Process one segment (in capture order)."""
        try:
            self._feed(seg)
        except Exception as exc:
            conn = self._flows.get((seg.src, seg.sport, seg.dst, seg.dport))
            if conn is None:
                raise
            self._failed(conn, exc, seg.ts, seg.frame)

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

    def _feed(self, seg: Segment) -> None:
        self.last_ts = seg.ts
        self.last_frame = seg.frame
        if seg.ts >= self._next_sweep:
            self._sweep(seg.ts)
        key = (seg.src, seg.sport, seg.dst, seg.dport)
        conn = self._flows.get(key)
        flags = seg.flags
        if conn is None or (flags & (SYN | ACK) == SYN and self._is_new_syn(conn, seg)):
            if conn is not None:
                self._end(conn, seg.ts, seg.frame)
            if key in self._closed and not flags & SYN:
                return  # a late packet of a connection that already ended
            conn = self._open(seg)
            if conn is None:
                return
        conn.last_ts = seg.ts
        conn.last_frame = seg.frame
        from_client = (seg.src, seg.sport) == conn.client
        half = conn.halves[0 if from_client else 1]
        health = conn.health
        payload = seg.payload
        health.packet(
            from_client,
            flags,
            seg.window,
            len(payload) + seg.missing,
            seg.ts,
            seg.frame,
            seg.injected,
        )
        if flags & SYN:
            if not half.started or not half.nxt:
                half.start((seg.seq + 1) & 0xFFFFFFFF)
            if flags & ACK and not from_client:
                conn.observer.accepted()
            return
        obs = conn.observer
        if flags & ACK:
            other = conn.halves[1 if from_client else 0]
            if other.started:
                health.acked(not from_client, other.offset(seg.ack), seg.ts)
            # The same acknowledgement again (the bulk of a one-way transfer) says nothing new.
            if seg.ack != other.acked and other.started and obs.is_dicom is not False:
                other.acked = seg.ack
                self._acked(conn, not from_client, other, other.offset(seg.ack), seg)
        if payload or seg.missing:
            if not half.started:
                half.start(seg.seq)
            health.sent(
                from_client, half.offset(seg.seq), len(payload) + seg.missing, seg.ts, seg.frame
            )
            if obs.is_dicom is False:
                obs.data(from_client, payload, seg.ts, seg.frame)  # only counted
            else:
                self._data(conn, from_client, half, half.offset(seg.seq), seg)
        elif half.started and not flags & (FIN | RST):
            health.empty(from_client, half.offset(seg.seq))
        if flags & FIN and half.fin_at is None:
            if not half.started:
                half.start(seg.seq)
            half.fin_at = half.offset(seg.seq) + len(payload) + seg.missing
            half.fin_ts = seg.ts
            half.fin_frame = seg.frame
            half.fin_injected = seg.injected
            self._maybe_fin(conn, from_client, half)
        if flags & RST and not conn.rst:
            conn.rst = True
            for i, h in enumerate(conn.halves):
                self._flush(conn, i == 0, h, seg.ts, seg.frame)
            obs.closed(from_client, CloseKind.RST, seg.ts, seg.frame, injected=seg.injected)
            self._end(conn, seg.ts, seg.frame)
            return
        if conn.closed[0] and conn.closed[1]:
            self._end(conn, seg.ts, seg.frame)

    def finish(self) -> None:
        """The capture ended: declare what is still missing and end every connection."""
        for conn in list(self._connections()):
            self._finish_one(conn, self.last_ts, self.last_frame)
        self._flows.clear()

    def _finish_one(self, conn: _Connection, ts: int, frame: int | None) -> bool:
        """Declare what ``conn`` still misses and finish its observer at ``ts``/``frame``;
        False if its analysis failed (then it is reported and forgotten)."""
        try:
            for i, h in enumerate(conn.halves):
                self._flush(conn, i == 0, h, ts, frame)
            conn.finish(ts, frame)
        except Exception as exc:
            self._failed(conn, exc, ts, frame)
            return False
        return True

    # --- connections -----------------------------------------------------------------

    def _sweep(self, now: int) -> None:
        """Finish and release the connections idle at capture time ``now``."""
        self._next_sweep = now + SWEEP_EVERY_NS
        self._release(
            conn
            for conn in self._connections()
            if now - conn.last_ts > (self._idle_ns if _carried(conn) else self._handshake_idle_ns)
        )

    def _make_room(self) -> None:
        """The table holds ``max_open`` connections: release the tenth that were silent the
        longest, those that never carried data first (a scan, a SYN flood)."""
        conns = sorted(self._connections(), key=lambda c: (_carried(c), c.last_ts))
        self._release(conns[: max(1, len(conns) // 10)])

    def _connections(self) -> Iterator[_Connection]:
        """Each connection once (the table holds it under both directions' keys)."""
        return iter({id(c): c for c in self._flows.values()}.values())

    def _release(self, conns: Iterable[_Connection]) -> None:
        """Finish ``conns`` as of their last segment and forget them (not as closed: a
        segment that comes later starts a new connection)."""
        for conn in list(conns):
            if not self._finish_one(conn, conn.last_ts, conn.last_frame):
                continue
            for key in conn.keys:
                if self._flows.get(key) is conn:
                    del self._flows[key]

    def _is_new_syn(self, conn: _Connection, seg: Segment) -> bool:
        half = conn.halves[0 if (seg.src, seg.sport) == conn.client else 1]
        return not (half.started and half.base == (seg.seq + 1) & 0xFFFFFFFF)

    def _open(self, seg: Segment) -> _Connection | None:
        flags = seg.flags
        if flags & RST and not seg.payload:
            return None  # a reset for a connection we never saw: nothing to report
        if len(self._flows) >= 2 * self._max_open:
            self._make_room()
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
        conn = _Connection(observer, client, (k1, k2), self._emit)
        if flags & SYN and flags & ACK:
            conn.halves[0].start(seg.ack)  # the client's ISN + 1
        self._flows[k1] = conn
        self._flows[k2] = conn
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
        conn.finish(ts, frame)
        self._forget(conn)
        while len(self._closed) > CLOSED_MEMORY:
            self._closed.popitem(last=False)

    def _forget(self, conn: _Connection) -> None:
        """Stop routing segments to ``conn``; remember it as closed."""
        for key in conn.keys:
            if self._flows.get(key) is conn:
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
                if seg.injected:
                    obs.data(from_client, payload, seg.ts, seg.frame, injected=True)
                else:
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
        pending = half.pending
        if pending is None:
            pending = half.pending = {}
        previous = pending.get(off)
        if previous is not None:
            if len(previous) >= len(payload):
                if bytes(previous[: len(payload)]) != bytes(payload):
                    self._differs(conn, from_client, off, seg)
                return
            half.pending_bytes -= len(previous)
        pending[off] = payload
        half.pending_bytes += len(payload)
        if half.pending_bytes > self._reorder_limit:
            first = min(pending)
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
            conn.observer.closed(
                from_client, CloseKind.FIN, half.fin_ts, half.fin_frame, injected=half.fin_injected
            )

    def _remember(self, half: _Half, off: int, data: memoryview | bytes) -> None:
        recent = half.recent
        if recent is None:
            recent = half.recent = deque()
        recent.append((off, data))
        half.recent_bytes += len(data)
        while half.recent_bytes > RECENT_LIMIT and len(recent) > 1:
            _, old = recent.popleft()
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
        for r_off, r_data in half.recent or ():
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
