"""Arbitrary input never raises out of the public API and always terminates;
a declared length is never trusted for allocation."""

from __future__ import annotations

import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from dissectors import AssociationEnded, CloseKind, PduObserved
from dissectors.observer import AssociationObserver
from tests.factories import CLIENT, SERVER, Recorder, associate_ac, associate_rq, echo_association


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=300)), max_size=12), st.booleans())
def test_arbitrary_bytes_never_raise(steps: list[tuple[bool, bytes]], handshake: bool) -> None:
    rec = Recorder()
    obs = AssociationObserver(1, CLIENT, SERVER, rec, ts=0, frame=1, handshake=handshake)
    for i, (from_client, data) in enumerate(steps):
        if i % 4 == 3:
            obs.gap(from_client, len(data) + 1, i, i)
        else:
            obs.data(from_client, data, i, i)
    obs.closed(True, CloseKind.RST, 99, 99)
    obs.finish(100, 100)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=200)), max_size=8), st.integers(1, 6))
def test_garbage_after_a_valid_start_never_raises(
    steps: list[tuple[bool, bytes]], keep: int
) -> None:
    rec = Recorder()
    obs = AssociationObserver(1, CLIENT, SERVER, rec, ts=0, frame=1, handshake=True)
    for i, (from_client, data) in enumerate(echo_association()[:keep]):
        obs.data(from_client, data, i, i)
    for i, (from_client, data) in enumerate(steps):
        obs.data(from_client, data, 10 + i, 10 + i)
    obs.finish(100, 100)
    assert len(rec.of(AssociationEnded)) == 1


def test_a_pdu_claiming_4_gb_costs_no_4_gb() -> None:
    rec = Recorder()
    obs = AssociationObserver(1, CLIENT, SERVER, rec, ts=0, frame=1, handshake=True)
    obs.data(True, associate_rq(), 1, 1)
    obs.data(False, associate_ac(), 2, 2)
    header = b"\x04\x00\xff\xff\xff\xf0" + b"\xff\xff\xff\xea\x01\x00"  # P-DATA-TF, PDV ~4 GB
    tracemalloc.start()
    obs.data(True, header, 3, 3)
    chunk = memoryview(bytes(1 << 20))
    for i in range(64):  # 64 MiB of the claimed 4 GiB
        obs.data(True, chunk, 4 + i, 4 + i)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 2 << 20, peak
    obs.finish(100, 100)
    (pdu,) = [p for p in rec.of(PduObserved) if p.pdu_type == 4]
    assert pdu.length == 0xFFFFFFF0 and not pdu.complete
