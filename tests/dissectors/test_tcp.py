"""TCP reassembly: order, retransmission, overlap, loss, handshake, wrap-around."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dissectors import (
    AnalysisError,
    AssociationEnded,
    AssociationStarted,
    DissectorEvent,
    Endpoint,
    FlowTable,
    Outcome,
    Party,
    PduObserved,
    Segment,
    StreamGap,
    TcpAnomaly,
    TcpSummary,
)
from dissectors.observer import AssociationObserver
from dissectors.tcp import ACK, FIN, RST, SYN
from tests.factories import echo_association

from .test_observer import _strip

A = bytes([10, 0, 0, 1])
B = bytes([10, 0, 0, 2])


class Capture:
    """Builds segments for one connection A:40000 -> B:104."""

    def __init__(self, isn_a: int = 1000, isn_b: int = 5000) -> None:
        self.seq = {True: isn_a, False: isn_b}
        self.frame = 0
        self.ts = 0

    def seg(
        self,
        from_a: bool,
        flags: int,
        payload: bytes = b"",
        seq: int | None = None,
        ack: int | None = None,
    ) -> Segment:
        self.frame += 1
        self.ts += 1000
        s = self.seq[from_a] if seq is None else seq
        if ack is None:
            ack = self.seq[not from_a] if flags & ACK else 0
        src, dst = (A, B) if from_a else (B, A)
        sport, dport = (40000, 104) if from_a else (104, 40000)
        return Segment(
            self.ts,
            self.frame,
            src,
            sport,
            dst,
            dport,
            s & 0xFFFFFFFF,
            ack & 0xFFFFFFFF,
            flags,
            payload,
        )

    def handshake(self) -> list[Segment]:
        out = [self.seg(True, SYN, ack=0), self.seg(False, SYN | ACK, ack=self.seq[True] + 1)]
        self.seq[True] += 1
        self.seq[False] += 1
        out.append(self.seg(True, ACK, ack=self.seq[False]))
        return out

    def data(self, from_a: bool, payload: bytes, mss: int = 100) -> list[Segment]:
        out = []
        for i in range(0, len(payload), mss):
            chunk = payload[i : i + mss]
            out.append(self.seg(from_a, ACK, chunk))
            self.seq[from_a] += len(chunk)
        return out

    def fin(self, from_a: bool) -> Segment:
        s = self.seg(from_a, FIN | ACK)
        self.seq[from_a] += 1
        return s


def _echo_segments(isn_a: int = 1000, isn_b: int = 5000, mss: int = 100) -> list[Segment]:
    """All segments of a C-ECHO association."""
    cap = Capture(isn_a, isn_b)
    segs = cap.handshake()
    for from_client, payload in echo_association():
        segs += cap.data(from_client, payload, mss)
    segs += [cap.fin(True), cap.fin(False)]
    return segs


def _run(segments: list[Segment]) -> list[DissectorEvent]:
    events: list[DissectorEvent] = []
    table = FlowTable(events.append)
    for s in segments:
        table.feed(s)
    table.finish()
    return events


def _streams(events: list[DissectorEvent]) -> list[object]:
    """What the observer made of the streams, independent of capture timing (and of the TCP
    health of the connection, which is all about it)."""
    return [
        _strip(e)
        for e in events
        if not isinstance(e, AssociationStarted | TcpSummary)
        and not (isinstance(e, TcpAnomaly) and e.code.startswith("tcp-"))
    ]


def test_in_order_echo() -> None:
    events = _run(_echo_segments())
    (ended,) = [e for e in events if isinstance(e, AssociationEnded)]
    assert ended.outcome == "released"
    (started,) = [e for e in events if isinstance(e, AssociationStarted)]
    assert started.client == Endpoint("10.0.0.1", 40000)
    assert started.handshake


def test_sequence_wrap_around() -> None:
    segs = _echo_segments(isn_a=0xFFFFFF00, isn_b=0xFFFFFFF0)
    reference = _echo_segments()
    assert _streams(_run(segs)) == _streams(_run(reference))


def _flights(segments: list[Segment]) -> list[list[Segment]]:
    """Runs of consecutive segments from the same side (nothing in a run acknowledges another)."""
    runs: list[list[Segment]] = []
    for s in segments:
        if runs and runs[-1][0].src == s.src:
            runs[-1].append(s)
        else:
            runs.append([s])
    return runs


@settings(max_examples=80, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(0, 6))
def test_reordering_and_duplication_do_not_change_the_streams(
    rnd: random.Random, dups: int
) -> None:
    segs = _echo_segments(mss=37)
    reference = _streams(_run(segs))
    head, body, tail = segs[:3], segs[3:-2], segs[-2:]
    # A capture can reorder segments of one flight (nothing acknowledges them yet) and show
    # retransmitted copies any time after the original.
    shuffled: list[Segment] = []
    for run in _flights(body):
        run = list(run)
        rnd.shuffle(run)
        shuffled += run
    for _ in range(dups):
        i = rnd.randrange(len(shuffled))
        shuffled.insert(rnd.randrange(i, len(shuffled)) + 1, shuffled[i])
    assert _streams(_run(head + shuffled + tail)) == reference


def test_a_flight_captured_backwards_is_reassembled() -> None:
    """Each segment of a long flight waits for all those before it: the first one ends
    the wait for the whole flight (the reorder buffer finds its next offset in a heap)."""
    cap = Capture()
    segs = cap.handshake()
    for from_client, payload in echo_association()[:2]:
        segs += cap.data(from_client, payload)
    flight = cap.data(True, bytes(range(256)) * 200, mss=10)  # 5120 segments
    rest = [cap.seg(False, ACK, ack=cap.seq[True]), cap.fin(True), cap.fin(False)]
    reference = _streams(_run(segs + flight + rest))
    assert _streams(_run(segs + flight[::-1] + rest)) == reference


def test_reorder_limit_declares_the_hole_before_the_first_waiting_bytes() -> None:
    cap = Capture()
    segs = cap.handshake()
    for from_client, payload in echo_association()[:2]:
        segs += cap.data(from_client, payload)
    flight = cap.data(True, bytes(range(256)) * 8, mss=64)
    lost, later = flight[2], flight[3:]
    events: list[DissectorEvent] = []
    table = FlowTable(events.append, reorder_limit=500)
    # Two swapped, so the lowest waiting offset is not the first one held.
    for s in segs + flight[:2] + [later[1], later[0]] + later[2:]:
        table.feed(s)
    gaps = [e for e in events if isinstance(e, StreamGap)]
    assert [g.size for g in gaps] == [len(lost.payload)]
    assert table.open_connections == 1


def test_dropped_segment_yields_a_gap_of_its_size() -> None:
    cap = Capture()
    segs = cap.handshake()
    for from_client, payload in echo_association()[:2]:
        segs += cap.data(from_client, payload)
    store = cap.data(True, bytes(range(256)) * 4)
    dropped = store[3]
    segs += [s for s in store if s is not dropped]
    segs.append(cap.seg(False, ACK, ack=cap.seq[True]))  # the receiver acknowledges it all
    events = _run(segs)
    gaps = [e for e in events if isinstance(e, StreamGap)]
    assert len(gaps) == 1
    assert gaps[0].size == len(dropped.payload)
    assert gaps[0].from_requestor


def test_loss_at_the_end_is_declared_at_finish() -> None:
    cap = Capture()
    segs = cap.handshake()
    for from_client, payload in echo_association()[:2]:
        segs += cap.data(from_client, payload)
    more = cap.data(True, b"x" * 300)
    segs += [more[0], more[2]]
    events = _run(segs)
    gaps = [e for e in events if isinstance(e, StreamGap)]
    assert [g.size for g in gaps] == [100]


def test_retransmission_with_different_bytes_is_reported() -> None:
    cap = Capture()
    segs = cap.handshake()
    for from_client, payload in echo_association()[:2]:
        segs += cap.data(from_client, payload)
    first = segs[3]
    forged = Segment(
        first.ts + 5,
        99,
        first.src,
        first.sport,
        first.dst,
        first.dport,
        first.seq,
        first.ack,
        first.flags,
        b"\xff" * len(first.payload),
    )
    events = _run([*segs, forged])
    anomalies = [e for e in events if isinstance(e, TcpAnomaly)]
    assert [a.code for a in anomalies] == ["retransmission-differs"]


def test_capture_starting_mid_connection() -> None:
    segs = _echo_segments()
    # Drop the handshake: the first captured segment is the A-ASSOCIATE-RQ.
    events = _run(segs[3:])
    (started,) = [e for e in events if isinstance(e, AssociationStarted)]
    assert not started.handshake and not started.partial
    assert started.client == Endpoint("10.0.0.1", 40000)


def test_roles_corrected_by_the_associate_rq() -> None:
    # Client on a "server-looking" port, server on a high port: the RQ settles it.
    cap = Capture()
    events: list[DissectorEvent] = []
    table = FlowTable(events.append)
    for from_client, payload in echo_association():
        for s in cap.data(from_client, payload):
            src, dst = (A, B) if from_client else (B, A)
            sport, dport = (104, 40000) if from_client else (40000, 104)
            table.feed(s._replace(src=src, dst=dst, sport=sport, dport=dport))
    table.finish()
    (started,) = [e for e in events if isinstance(e, AssociationStarted)]
    assert started.client == Endpoint("10.0.0.1", 104)
    assert started.server == Endpoint("10.0.0.2", 40000)


def test_reset_ends_the_connection() -> None:
    cap = Capture()
    segs = cap.handshake()
    for from_client, payload in echo_association()[:3]:
        segs += cap.data(from_client, payload)
    segs.append(cap.seg(False, RST | ACK))
    events = _run(segs)
    (ended,) = [e for e in events if isinstance(e, AssociationEnded)]
    assert ended.outcome == "transport-dropped"
    assert ended.closed_by == Party.ACCEPTOR == ended.ended_by


def test_port_reuse_starts_a_new_connection() -> None:
    first = _echo_segments(isn_a=1000)
    second = _echo_segments(isn_a=900000)
    events = _run(first + second)
    assert len([e for e in events if isinstance(e, AssociationEnded)]) == 2


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.integers(0, 2**32 - 1),
            st.integers(0, 2**32 - 1),
            st.integers(0, 255),
            st.binary(max_size=64),
        ),
        max_size=40,
    )
)
def test_arbitrary_segments_never_raise(raw: list[tuple[bool, int, int, int, bytes]]) -> None:
    segs = []
    for i, (from_a, seq, ack, flags, payload) in enumerate(raw):
        src, dst = (A, B) if from_a else (B, A)
        sport, dport = (40000, 104) if from_a else (104, 40000)
        segs.append(Segment(i, i + 1, src, sport, dst, dport, seq, ack, flags, payload))
    _run(segs)


def test_a_defect_on_one_connection_does_not_hide_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = _echo_segments(isn_a=1000)
    second = [
        s._replace(sport=40001) if s.sport == 40000 else s._replace(dport=40001)
        for s in _echo_segments(isn_a=7000)
    ]
    original = AssociationObserver.data

    def broken(
        self: AssociationObserver,
        from_client: bool,
        data: bytes | memoryview,
        ts: int,
        frame: int | None,
    ) -> None:
        if self.client.port == 40000 and frame is not None and frame > 5:
            raise ZeroDivisionError("simulated defect")
        original(self, from_client, data, ts, frame)

    monkeypatch.setattr(AssociationObserver, "data", broken)
    events = _run(first + second)
    errors = [e for e in events if isinstance(e, AnalysisError)]
    assert len(errors) == 1 and "simulated defect" in errors[0].text
    ended = [e for e in events if isinstance(e, AssociationEnded)]
    assert [e.outcome for e in ended] == ["released"]


def test_unanswered_syns_are_released_in_capture_time() -> None:
    """A port scan: 5000 SYNs 100 ms apart, none answered. Each is reported, and the table
    holds only those of the last few minutes of capture time, not all of them."""
    from dissectors import ConnectionWithoutDicom
    from dissectors.tcp import HANDSHAKE_IDLE_NS, SWEEP_EVERY_NS

    events: list[DissectorEvent] = []
    table = FlowTable(events.append)
    gap = 100_000_000
    most = 0
    for i in range(5000):
        src = bytes([10, 1, i >> 8, i & 0xFF])
        table.feed(Segment(i * gap, i + 1, src, 40000, B, 104, 1, 0, SYN, b""))
        most = max(most, table.open_connections)
    assert most <= (HANDSHAKE_IDLE_NS + SWEEP_EVERY_NS) // gap + 1
    table.finish()
    ended = [e for e in events if isinstance(e, (ConnectionWithoutDicom, AssociationEnded))]
    assert len(ended) == 5000
    first = next(e for e in ended if e.connection == 1)
    assert (first.ts, first.frame) == (0, 1)  # as of its last segment, not when found idle


def test_an_idle_association_is_finished_and_its_return_is_a_new_one() -> None:
    from dissectors import AssociationStarted
    from dissectors.tcp import IDLE_NS
    from tests.factories import associate_ac, associate_rq, echo_rq

    cap = Capture()
    segs = cap.handshake()
    segs += cap.data(True, associate_rq()) + cap.data(False, associate_ac())
    events: list[DissectorEvent] = []
    table = FlowTable(events.append)
    for s in segs:
        table.feed(s)
    last = segs[-1].ts
    # Another connection's segment an hour later: the first one has been silent too long.
    table.feed(Segment(last + IDLE_NS + 20 * 10**9, 99, A, 40001, B, 104, 7, 0, SYN, b""))
    assert table.open_connections == 1
    (ended,) = [e for e in events if isinstance(e, AssociationEnded)]
    assert ended.outcome == Outcome.OPEN_AT_END and ended.ts == last
    cap.ts = last + IDLE_NS + 30 * 10**9
    for s in cap.data(True, echo_rq()):
        table.feed(s)
    table.finish()
    started = [e for e in events if isinstance(e, AssociationStarted)]
    assert len(started) == 2 and started[1].partial


def test_a_syn_flood_is_bounded_and_spares_the_connections_that_carry_data() -> None:
    """1000 SYNs in a tenth of a second with room for 100 connections: the table never
    holds more, every attempt is still reported, and a live association is not released."""
    from dissectors import ConnectionWithoutDicom
    from tests.factories import associate_ac, associate_rq

    events: list[DissectorEvent] = []
    table = FlowTable(events.append, max_open=100)
    cap = Capture()
    for s in cap.handshake() + cap.data(True, associate_rq()) + cap.data(False, associate_ac()):
        table.feed(s)
    most = 0
    for i in range(1000):
        src = bytes([10, 1, i >> 8, i & 0xFF])
        table.feed(Segment(cap.ts + i * 100_000, 100 + i, src, 40000, B, 104, 1, 0, SYN, b""))
        most = max(most, table.open_connections)
    assert most <= 100
    assert not [e for e in events if isinstance(e, AssociationEnded)]  # the association lives
    table.finish()
    attempts = [e for e in events if isinstance(e, ConnectionWithoutDicom)]
    assert len(attempts) == 1000
    (ended,) = [e for e in events if isinstance(e, AssociationEnded)]
    assert ended.outcome == Outcome.OPEN_AT_END


@pytest.mark.parametrize("close", [FIN | ACK, RST | ACK])
def test_a_relay_marks_the_abort_and_the_close_it_wrote_itself(close: int) -> None:
    """The proxy's A-ABORT to the client and its close go through the flow table marked as
    injected: the association was aborted by a third party, not by the acceptor."""
    from tests.factories import abort, associate_ac, associate_rq, echo_rq, echo_rsp

    cap = Capture()
    segs = cap.handshake() + cap.data(True, associate_rq()) + cap.data(False, associate_ac())
    segs += cap.data(True, echo_rq()) + cap.data(False, echo_rsp())
    segs += [s._replace(injected=True) for s in cap.data(False, abort(2, 0))]
    segs.append(cap.seg(False, close)._replace(injected=True))
    events = _run(segs)
    (ended,) = [e for e in events if isinstance(e, AssociationEnded)]
    assert ended.outcome == Outcome.ABORTED
    assert ended.ended_by == Party.THIRD_PARTY == ended.closed_by
    (pdu,) = [e for e in events if isinstance(e, PduObserved) and e.pdu_type == 7]
    assert pdu.injected and pdu.sender == Party.THIRD_PARTY


def test_without_the_mark_the_same_abort_is_the_acceptors() -> None:
    from tests.factories import abort, associate_ac, associate_rq

    cap = Capture()
    segs = cap.handshake() + cap.data(True, associate_rq()) + cap.data(False, associate_ac())
    segs += [*cap.data(False, abort(2, 0)), cap.fin(False)]
    (ended,) = [e for e in _run(segs) if isinstance(e, AssociationEnded)]
    assert ended.ended_by == Party.ACCEPTOR == ended.closed_by


def test_connection_lookup_places_a_segment_as_the_table_does() -> None:
    table = FlowTable(lambda _event: None)
    segs = _echo_segments()
    forward, backward = (A, 40000, B, 104), (B, 104, A, 40000)
    assert table.connection(forward) is None
    for seg in segs[:4]:  # the handshake and the A-ASSOCIATE-RQ
        table.feed(seg)
    conn = table.connection(forward)
    assert conn is not None and table.connection(backward) is conn
    assert conn.client == (A, 40000) and conn.observer.connection == 1
    rq = segs[3]
    assert conn.halves[0].started and conn.halves[0].offset(rq.seq) == 0
    assert table.connection((A, 40001, B, 104)) is None
    table.finish()
    assert table.connection(forward) is None
