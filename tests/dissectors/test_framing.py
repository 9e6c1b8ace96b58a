"""The PDU framer on its own (bytes in, records out) and its payload tap on the observer."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.pipeline import analyze_files
from analyzer.store import Store
from dissectors import FlowTable
from dissectors.framing import (
    FramerRecord,
    FramingProblem,
    Hole,
    LostSync,
    PduBody,
    PduEnd,
    PduFramer,
    PduStart,
    PdvChunk,
    PdvEnd,
    PdvLost,
    PdvStart,
    Resynced,
)
from dissectors.observer import AssociationObserver
from dissectors.tcp import Segment
from tests.factories import (
    CLIENT,
    SERVER,
    Recorder,
    abort,
    associate_ac,
    associate_rq,
    echo_rq,
    p_data,
    release_rq,
)

from .scenarios import SCENARIOS

HOSTILE = Path(__file__).resolve().parent.parent / "data" / "hostile"

# A P-DATA-TF of 14 bytes whose second PDV claims 255 bytes: the framer loses sync on it and
# finds the next one 8 bytes on (20 bytes each; the shape of resync_recursion.pcap).
BAD_PDU = bytes.fromhex("04000000000e" + "000000040100" + "0000" + "000000ff0100")


def _normal(records: list[FramerRecord]) -> list[object]:
    """Records with PDV chunks joined (how a stream is cut into chunks does not matter)."""
    out: list[object] = []
    for r in records:
        if isinstance(r, PdvChunk):
            last = out[-1] if out else None
            if (
                isinstance(last, tuple)
                and last[0] == "chunk"
                and last[1] + len(last[2]) == r.offset
            ):
                out[-1] = ("chunk", last[1], last[2] + bytes(r.data))
                continue
            out.append(("chunk", r.offset, bytes(r.data)))
        else:
            out.append(r)
    return out


def _frame(data: bytes, cuts: list[int], *, synced: bool = True) -> list[FramerRecord]:
    framer = PduFramer(synced=synced)
    records: list[FramerRecord] = []
    start = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        records += framer.receive_data(memoryview(data[start:cut]))
        start = cut
    assert framer.offset == len(data)
    return records


def test_records_of_a_conforming_association() -> None:
    rq = associate_rq()
    data = rq + echo_rq() + release_rq()
    records = _frame(data, [])
    command = echo_rq()[12:]
    assert records[0] == PduStart(1, len(rq) - 6, 0)
    assert records[1] == PduBody(1, rq[6:])
    assert records[2] == PduStart(4, len(command) + 6, len(rq))
    assert records[3] == PdvStart(1, 3, len(command) + 2, len(rq) + 6)
    chunk = records[4]
    assert isinstance(chunk, PdvChunk)
    assert bytes(chunk.data) == command and chunk.offset == len(rq) + 12
    assert records[5:] == [PdvEnd(), PduEnd(), PduStart(5, 4, len(data) - 10), PduBody(5, bytes(4))]


def test_pdv_payload_is_a_view_of_the_callers_buffer() -> None:
    framer = PduFramer()
    framer.receive_data(memoryview(associate_rq()))
    header = b"\x04\x00\x00\x01\x00\x06" + b"\x00\x01\x00\x02\x01\x00"  # a 64 KiB PDV
    framer.receive_data(memoryview(header))
    buf = memoryview(bytearray(4096))
    (chunk,) = framer.receive_data(buf)
    assert isinstance(chunk, PdvChunk)
    assert chunk.data.obj is buf.obj  # zero-copy


def test_resync_is_a_loop_over_thousands_of_bad_pdus() -> None:
    """5000 bad PDUs in one chunk: no recursion, and time and memory linear in the chunk
    (the bounds are generous; a rescan that copies the rest of the chunk fails them)."""
    chunk = associate_rq() + BAD_PDU * 5000 + release_rq()
    framer = PduFramer()
    tracemalloc.start()
    start = time.perf_counter()
    records = framer.receive_data(memoryview(chunk))
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert sum(isinstance(r, LostSync) for r in records) == 5000
    assert sum(isinstance(r, Resynced) for r in records) == 5000
    assert records[-2:] == [PduStart(5, 4, len(chunk) - 10), PduBody(5, bytes(4))]
    assert elapsed < 10, elapsed
    assert peak < 16 << 20, peak  # the records themselves, not copies of the chunk


def test_ten_times_the_bad_pdus_cost_about_ten_times_as_much() -> None:
    def cost(n: int) -> float:
        chunk = memoryview(associate_rq() + BAD_PDU * n)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            PduFramer().receive_data(chunk)
            best = min(best, time.perf_counter() - start)
        return best

    small, large = cost(2_000), cost(20_000)
    assert large < 40 * small, (small, large)  # linear: ~10; quadratic: ~100


def test_resync_recursion_capture_is_analysed() -> None:
    """An A-ASSOCIATE-RQ and ~3000 small bad P-DATA-TF PDUs in one TCP segment."""
    store = Store()
    analyze_files([HOSTILE / "resync_recursion.pcap"], store)
    (assoc,) = store.associations()
    assert "analysis-error" not in [f.code for f in store.findings()]
    assert assoc.requestor_pdus.counts[4] == 3000
    assert assoc.calling_ae_title == "CALLING"


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                associate_rq(),
                associate_ac(),
                echo_rq(),
                p_data(1, bytes(range(40)), is_command=False, last=False),
                release_rq(),
                abort(),
                BAD_PDU,
                b"\x09\x00\x00\x00\x00\x02zz",  # an unknown type, stepped over
                b"\x01\x00\xff\xff\xff\xff",  # a control PDU no one sends: rescan
                b"\x04\x00\x00\x00\x00\x03abc",  # a P-DATA-TF too short for a PDV
                b"\x00\x01\x04\x00",
                b"\x07\x00",
            ]
        ),
        max_size=12,
    ),
    st.lists(st.integers(0, 2000), max_size=8),
    st.booleans(),
)
def test_cutting_the_stream_anywhere_gives_the_same_records(
    pdus: list[bytes], cuts: list[int], synced: bool
) -> None:
    data = b"".join(pdus)
    cuts = [c for c in cuts if c <= len(data)]
    assert _normal(_frame(data, cuts, synced=synced)) == _normal(_frame(data, [], synced=synced))


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=600), st.integers(1, 9))
def test_byte_at_a_time_equals_whole_for_any_bytes(data: bytes, step: int) -> None:
    whole = _normal(_frame(data, [], synced=False))
    assert _normal(_frame(data, list(range(0, len(data), step)), synced=False)) == whole


def test_gaps() -> None:
    framer = PduFramer()
    framer.receive_data(memoryview(b"\x04\x00\x00\x00\x00\x10" + b"\x00\x00\x00\x0c\x01\x00ab"))
    assert framer.gap(4) == [PdvLost(4, 14)]
    assert framer.receive_data(memoryview(b"ghij")) == [
        PdvChunk(memoryview(b"ghij"), 18),
        PdvEnd(),
        PduEnd(),
    ]
    # A hole between PDUs: the framer cannot know where the next one starts.
    assert framer.gap(3) == [Hole(3, 22), LostSync(22)]
    records = framer.receive_data(memoryview(b"xx" + release_rq()))
    assert records == [Resynced(27, 2), PduStart(5, 4, 27), PduBody(5, bytes(4))]


def test_framing_problems_name_the_offset() -> None:
    records = _frame(b"\x04\x00\x00\x00\x00\x09" + b"\x00\x00\x00\x03\x01\x03x", [])
    assert (
        FramingProblem(
            "pdv-length-odd",
            "PDV length 3 is odd (PS3.8 Annex E: fragments have even length)",
            6,
        )
        in records
    )


def test_payload_tap_gives_pdv_bytes_with_stream_offsets() -> None:
    """The payload tap gives every PDV byte with its stream offset and direction."""
    scenario = next(s for s in SCENARIOS if s.name == "store")
    streams = {True: b"", False: b""}
    for from_client, data in scenario.script:
        streams[from_client] += data
    seen: dict[bool, int] = {True: 0, False: 0}
    starts: list[tuple[bool, int]] = []

    def tap(
        connection: int,
        from_requestor: bool,
        records: object,
        ts: int,
        frame: int | None,
    ) -> None:
        assert connection == 1
        assert isinstance(records, list)
        for r in records:
            if isinstance(r, PdvChunk):
                stream = streams[from_requestor]
                assert bytes(r.data) == stream[r.offset : r.offset + len(r.data)]
                seen[from_requestor] += len(r.data)
            elif isinstance(r, PdvStart):
                starts.append((from_requestor, r.context_id))

    obs = AssociationObserver(
        1, CLIENT, SERVER, Recorder(), ts=0, frame=1, handshake=True, payload=tap
    )
    for i, (from_client, data) in enumerate(scenario.script):
        for j in range(0, len(data), 1000):
            obs.data(from_client, data[j : j + 1000], i, i)
    obs.finish()
    assert seen[True] > 40_000 and seen[False] > 0
    assert {c for _, c in starts} == {1}


def test_payload_tap_through_the_flow_table_uses_tcp_stream_offsets() -> None:
    """From a capture, with a segment lost: chunks sit at their TCP stream offsets and the
    lost bytes are named where they were."""
    client_stream = associate_rq() + p_data(1, bytes(range(200)) * 20, is_command=False)
    server_stream = associate_ac()
    got: list[tuple[bool, FramerRecord]] = []
    table = FlowTable(
        Recorder(),
        payload=lambda conn, fr, records, ts, frame: got.extend((fr, r) for r in records),
    )
    c, s = b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02"
    isn_c, isn_s = 1000, 9000
    table.feed(Segment(1, 1, c, 40000, s, 104, isn_c, 0, 0x02, b""))
    table.feed(Segment(2, 2, s, 104, c, 40000, isn_s, isn_c + 1, 0x12, b""))
    sent = 0
    frame = 3
    for i in range(0, len(client_stream), 500):
        piece = client_stream[i : i + 500]
        if i != 1000:  # this segment never reaches the capture
            table.feed(
                Segment(frame, frame, c, 40000, s, 104, isn_c + 1 + i, isn_s + 1, 0x18, piece)
            )
        frame += 1
        sent += len(piece)
        if i == 0:
            table.feed(
                Segment(
                    frame, frame, s, 104, c, 40000, isn_s + 1, isn_c + 1 + 500, 0x18, server_stream
                )
            )
            frame += 1
    table.feed(
        Segment(
            frame,
            frame,
            s,
            104,
            c,
            40000,
            isn_s + 1 + len(server_stream),
            isn_c + 1 + sent,
            0x11,
            b"",
        )
    )
    table.finish()
    chunks = [r for fr, r in got if fr and isinstance(r, PdvChunk)]
    for r in chunks:
        assert bytes(r.data) == client_stream[r.offset : r.offset + len(r.data)]
    lost = [r for fr, r in got if fr and isinstance(r, PdvLost)]
    assert lost == [PdvLost(500, 1000)]
    assert sum(len(r.data) for r in chunks) + 500 == 4000


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.binary(min_size=0, max_size=3000), min_size=1, max_size=4),
    st.lists(st.integers(1, 700), min_size=1, max_size=40),
)
def test_chunks_taken_as_within_pdv_are_what_receive_data_would_return(
    payloads: list[bytes], steps: list[int]
) -> None:
    """The observer's shortcut (``within_pdv``, then the chunk straight to the assembler)
    sees the same bytes at the same offsets as the records of ``receive_data``."""
    data = associate_rq() + b"".join(p_data(1, p, is_command=False) for p in payloads)
    data += release_rq()
    cuts, at = [], 0
    for step in steps * (len(data) // sum(steps) + 1):
        at += step
        if at >= len(data):
            break
        cuts.append(at)
    plain = _frame(data, cuts)
    framer = PduFramer()
    records: list[FramerRecord] = []
    shortcuts = 0
    for start, stop in zip([0, *cuts], [*cuts, len(data)], strict=True):
        chunk = memoryview(data[start:stop])
        offset = framer.offset
        if framer.within_pdv(len(chunk)):
            shortcuts += 1
            records.append(PdvChunk(chunk, offset))
        else:
            records += framer.receive_data(chunk)
    assert framer.offset == len(data)
    assert _normal(records) == _normal(plain)
    if any(len(p) > 2 * max(steps) for p in payloads):
        assert shortcuts
