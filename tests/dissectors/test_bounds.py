"""Bounds: what a hostile stream declares never becomes what dicomtap counts or keeps."""

from __future__ import annotations

import struct

import pytest

from analyzer.builder import ModelBuilder
from analyzer.findings import Diagnosis
from analyzer.store import Store
from dissectors import PduObserved
from dissectors.observer import AssociationObserver
from tests.factories import CLIENT, SERVER, Recorder, associate_ac, associate_rq

_4GB = 0xFFFFFFFF


def _observe(*chunks: tuple[bool, bytes]) -> Recorder:
    rec = Recorder()
    obs = AssociationObserver(1, CLIENT, SERVER, rec, ts=0, frame=1, handshake=True)
    for i, (from_client, data) in enumerate(chunks, 2):
        obs.data(from_client, data, i * 1000, i)
    obs.finish()
    return rec


def _model(rec: Recorder) -> Store:
    store = Store(keep_pdus=True)
    builder = ModelBuilder(store, rules=Diagnosis())
    for event in rec.events:
        builder.handle(event)
    return store


def test_a_p_data_tf_declaring_4_gb_counts_the_bytes_seen() -> None:
    # One PDV, also declaring nearly 4 GB, then 1 MB of its payload before the stream ends.
    pdv_header = struct.pack(">IBB", _4GB - 4, 1, 0)
    body = b"\0" * (1 << 20)
    rec = _observe(
        (True, associate_rq()),
        (False, associate_ac()),
        (True, struct.pack(">BBI", 4, 0, _4GB) + pdv_header),
        (True, body),
    )
    (big,) = [e for e in rec.of(PduObserved) if e.pdu_type == 4]
    assert not big.complete and big.length == _4GB
    assert big.size == 6 + len(pdv_header) + len(body)
    store = _model(rec)
    (a,) = store.associations()
    rq_size = len(associate_rq())
    assert a.requestor_pdus.bytes == rq_size + big.size
    (pdu,) = [p for p in store.pdus(a.id) if p.pdu_type == 4]
    assert pdu.size == big.size


def test_an_a_associate_ac_declaring_4_gb_counts_its_header() -> None:
    rec = _observe(
        (True, associate_rq()),
        (False, struct.pack(">BBI", 2, 0, _4GB) + b"\x00\x01" + b"\0" * 1000),
    )
    (ac,) = [e for e in rec.of(PduObserved) if e.pdu_type == 2]
    assert not ac.complete and ac.size == 6
    (a,) = _model(rec).associations()
    assert a.acceptor_pdus.bytes == 6


def _reserved_bits_pdv(n: int) -> bytes:
    """A P-DATA-TF whose one PDV sets reserved control bits (a violation each time)."""
    return struct.pack(">BBIIBB", 4, 0, 6 + n, 2 + n, 1, 0xF0) + b"\0" * n


def test_violations_of_one_kind_are_recorded_up_to_a_bound_and_counted() -> None:
    from dissectors import AssociationEnded, Violation
    from dissectors.observer import MAX_VIOLATIONS_OF_A_KIND

    flood = _reserved_bits_pdv(2) * 5000
    rec = _observe((True, associate_rq()), (False, associate_ac()), (True, flood))
    found = [v for v in rec.of(Violation) if v.code == "pdv-reserved-bits"]
    assert len(found) == MAX_VIOLATIONS_OF_A_KIND
    (ended,) = rec.of(AssociationEnded)
    assert ended.violations_unreported == 5000 - MAX_VIOLATIONS_OF_A_KIND
    (a,) = _model(rec).associations()
    assert a.violations == len(rec.of(Violation)) < 2 * MAX_VIOLATIONS_OF_A_KIND
    assert a.violations_unreported == 5000 - MAX_VIOLATIONS_OF_A_KIND


def test_violations_of_every_kind_are_bounded_together(monkeypatch: pytest.MonkeyPatch) -> None:
    from dissectors import AssociationEnded, Violation, observer

    # Two kinds: reserved PDV bits from the requestor, and the same from the acceptor.
    chunks = (
        (True, associate_rq()),
        (False, associate_ac()),
        (True, _reserved_bits_pdv(2) * 2),
        (False, _reserved_bits_pdv(2) * 2),
    )
    everything = len(_observe(*chunks).of(Violation))
    assert everything > 3
    monkeypatch.setattr(observer, "MAX_VIOLATIONS", 3)
    rec = _observe(*chunks)
    assert len(rec.of(Violation)) == 3
    (ended,) = rec.of(AssociationEnded)
    assert ended.violations_unreported == everything - 3
