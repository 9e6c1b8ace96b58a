"""Memory of connections that carry no data: a port scan, a SYN flood, a peer that is down.

The flow table holds up to ``MAX_OPEN`` such connections at once; what each costs while it
is open is measured with tracemalloc (what Python allocated for it: its observer, its TCP
halves, its health tracker, its keys), not guessed from the classes.
"""

from __future__ import annotations

import gc
import tracemalloc

from dissectors import (
    AssociationEnded,
    ConnectionWithoutDicom,
    DissectorEvent,
    FlowTable,
    Outcome,
    Segment,
    TcpSummary,
)
from dissectors.tcp import ACK, SYN
from tests.factories import echo_association

SERVER = bytes([10, 0, 0, 2])
FLOWS = 2000
#: Bytes a connection seen only as a SYN may hold while open. Its observer's reading state
#: (stream sides, framers, assemblers, exchange tracker) and its direction's health counters
#: are made with its first data (about 1.5 KB in all on Python 3.11); before they were, each
#: such connection held about 4.4 KB.
BOUND = 2000


def _syn(i: int, ts: int) -> Segment:
    client = bytes([10, 1, (i >> 8) & 255, i & 255])
    return Segment(ts, i + 1, client, 1024 + i, SERVER, 104, 1000 + i, 0, SYN, b"")


def _open_cost(flows: int) -> float:
    events: list[DissectorEvent] = []
    table = FlowTable(events.append)
    segments = [_syn(i, 1_000 * i) for i in range(flows)]  # made before measuring
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for seg in segments:
            table.feed(seg)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert table.open_connections == flows
    assert not events
    return (after - before) / flows


def test_a_connection_without_data_costs_little_while_open() -> None:
    assert _open_cost(FLOWS) < BOUND


def test_a_syn_only_connection_is_still_reported_whole() -> None:
    """What the report needs of it survives: the roles, the times, the segment counts."""
    events: list[DissectorEvent] = []
    table = FlowTable(events.append)
    table.feed(_syn(7, 5_000))
    table.finish()
    (silent,) = [e for e in events if isinstance(e, ConnectionWithoutDicom)]
    assert (silent.client.ip, silent.client.port) == ("10.1.0.7", 1031)
    assert (silent.server.ip, silent.server.port) == ("10.0.0.2", 104)
    assert (silent.ts, silent.frame, silent.handshake, silent.accepted) == (5_000, 8, True, False)
    assert (silent.bytes_from_client, silent.client_head) == (0, b"")
    (tcp,) = [e for e in events if isinstance(e, TcpSummary)]
    assert (tcp.requestor.segments, tcp.acceptor.segments) == (1, 0)
    assert (tcp.requestor.data_segments, tcp.reset, tcp.handshake_rtt_ns) == (0, None, None)


def test_a_connection_that_carries_data_after_its_handshake_is_read_as_ever() -> None:
    """The state made at the first byte reads the association whole (the SYN, SYN+ACK and
    ACK come first, with nothing made for them)."""
    events: list[DissectorEvent] = []
    table = FlowTable(events.append)
    client, server = bytes([10, 0, 0, 1]), SERVER
    table.feed(Segment(0, 1, client, 40000, server, 104, 999, 0, SYN, b""))
    table.feed(Segment(1, 2, server, 104, client, 40000, 4999, 1000, SYN | ACK, b""))
    table.feed(Segment(2, 3, client, 40000, server, 104, 1000, 5000, ACK, b""))
    seq = {True: 1000, False: 5000}
    frame = 4
    for from_client, pdu in echo_association():
        src, dst = (client, server) if from_client else (server, client)
        sport, dport = (40000, 104) if from_client else (104, 40000)
        ack = seq[not from_client]
        table.feed(Segment(frame, frame, src, sport, dst, dport, seq[from_client], ack, ACK, pdu))
        seq[from_client] += len(pdu)
        frame += 1
    table.finish()
    (ended,) = [e for e in events if isinstance(e, AssociationEnded)]
    assert ended.outcome == Outcome.RELEASED
    assert (ended.bytes_from_requestor, ended.requestor_head[:1]) == (
        sum(len(p) for c, p in echo_association() if c),
        b"\x01",
    )
