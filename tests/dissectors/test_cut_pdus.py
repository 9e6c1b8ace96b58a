"""Association PDUs cut by a hole in the capture (a snap length, a lost segment): the framer
hands over what was captured of the body, the decoder reads what is there and guesses
nothing, the observer reports the PDU cut (a capture gap, not a violation) and its state
machines go on as for the whole PDU.

The PDUs are pynetdicom's encoding of a full negotiation (two contexts, every user
information sub-item), cut at every offset: what the cut PDU holds is checked against an
independent walk of the whole PDU's items.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dissectors.events import (
    AssociationEnded,
    CloseKind,
    ExchangeObserved,
    Outcome,
    PduObserved,
    StreamGap,
    Violation,
)
from dissectors.framing import (
    Hole,
    LostSync,
    PduBody,
    PduBodyCut,
    PduFramer,
    PduStart,
)
from dissectors.observer import AssociationObserver
from dissectors.pdu import (
    Abort,
    AssociateAc,
    AssociateRj,
    AssociateRq,
    ReleaseRq,
    decode_control_pdu,
    decode_cut_control_pdu,
    decode_pdu,
)
from tests.factories import (
    CLIENT,
    SERVER,
    Recorder,
    abort,
    associate_ac,
    associate_rj,
    echo_rq,
    echo_rsp,
    release_rp,
    release_rq,
)

from .test_pdu_codec import _pynetdicom_ac, _pynetdicom_rq

RQ = _pynetdicom_rq()
AC = _pynetdicom_ac()


def _items(body: bytes, start: int) -> list[tuple[int, int, int]]:
    """``(type, start, end)`` of each item of ``body`` from ``start`` (offsets in the body)."""
    out = []
    pos = start
    while pos + 4 <= len(body):
        item_type, _, length = struct.unpack_from(">BBH", body, pos)
        out.append((item_type, pos, pos + 4 + length))
        pos += 4 + length
    assert pos == len(body)
    return out


def _expected(whole: AssociateRq | AssociateAc, body: bytes, k: int) -> dict[str, object]:
    """What the first ``k`` bytes of ``body`` show of ``whole``, by the items they hold whole."""
    items = _items(body, 68)
    app = next(i for i in items if i[0] == 0x10)
    contexts = [i for i in items if i[0] in (0x20, 0x21)]
    ui = next(i for i in items if i[0] == 0x50)
    assert whole.user_information is not None
    if ui[2] <= k:
        subs: tuple[object, ...] | None = whole.user_information.sub_items
    elif ui[1] + 4 <= k:
        ends = [end for _, _, end in _items(body[: ui[2]], ui[1] + 4)]
        subs = whole.user_information.sub_items[: sum(1 for end in ends if end <= k)]
    else:
        subs = None
    return {
        "application_context": whole.application_context if app[2] <= k else None,
        "contexts": whole.presentation_contexts[: sum(1 for _, _, end in contexts if end <= k)],
        "sub_items": subs,
    }


@pytest.mark.parametrize("raw", [RQ, AC], ids=["rq", "ac"])
def test_a_cut_association_pdu_holds_the_items_captured_whole_and_nothing_else(raw: bytes) -> None:
    whole, defects = decode_pdu(raw)
    assert defects == [] and isinstance(whole, AssociateRq | AssociateAc)
    body = raw[6:]
    for k in range(len(body)):
        pdu, defects = decode_cut_control_pdu(raw[0], body[:k], len(body) - k)
        assert defects == [], (k, defects)  # a cut is not a defect
        if k < 36:  # the AE titles are not both there: nothing to report
            assert pdu is None, k
            continue
        assert type(pdu) is type(whole)
        assert isinstance(pdu, AssociateRq | AssociateAc)
        assert (pdu.called_ae, pdu.calling_ae, pdu.protocol_version) == (
            whole.called_ae,
            whole.calling_ae,
            whole.protocol_version,
        )
        assert pdu.missing == len(body) - k
        expected = _expected(whole, body, k)
        assert pdu.application_context == expected["application_context"], k
        assert pdu.presentation_contexts == expected["contexts"], k
        got = pdu.user_information.sub_items if pdu.user_information else None
        assert got == expected["sub_items"], k
    # Nothing missing: the whole PDU.
    assert decode_cut_control_pdu(raw[0], body, 0) == decode_control_pdu(raw[0], body)


def test_the_captured_part_of_a_cut_pdu_is_still_checked() -> None:
    body = bytearray(RQ[6:])
    body[0:2] = b"\x00\x02"  # protocol version 2
    pdu, defects = decode_cut_control_pdu(1, bytes(body[:80]), len(body) - 80)
    assert isinstance(pdu, AssociateRq) and pdu.calling_ae == b"MODALITY        "
    assert [d.text for d in defects] == ["protocol version is 0x0002; PS3.8 defines only 0x0001"]
    # A declared length that cannot hold the fixed fields is malformed, cut or not.
    _, defects = decode_cut_control_pdu(1, bytes(body[:30]), 10)
    assert [d.text for d in defects] == ["association PDU body is 40 bytes, shorter than 68"]


def test_cut_short_pdus() -> None:
    # The fields of an A-ASSOCIATE-RJ or A-ABORT are its last bytes: cut, they are unknown.
    for raw in (associate_rj(), abort(2, 6)):
        for k in range(4):
            assert decode_cut_control_pdu(raw[0], raw[6 : 6 + k], 4 - k) == (None, [])
    assert decode_cut_control_pdu(5, b"\x00", 3) == (ReleaseRq(), [])
    rj, _ = decode_cut_control_pdu(3, associate_rj()[6:] + b"\x00", 2)
    assert rj == AssociateRj(1, 1, 7)
    ab, defects = decode_cut_control_pdu(7, abort(2, 6)[6:], 1)
    assert ab == Abort(2, 6)
    assert [d.text for d in defects] == ["PDU length is 5, PS3.8 fixes it at 4"]


# --- the framer ---------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    raw=st.sampled_from([RQ, AC]),
    data=st.data(),
)
def test_the_framer_hands_over_the_captured_start_of_a_cut_pdu(
    raw: bytes, data: st.DataObject
) -> None:
    body = raw[6:]
    k = data.draw(st.integers(0, len(body) - 1), label="captured body bytes")
    hole = data.draw(st.integers(1, len(body) - k), label="hole")
    step = data.draw(st.integers(1, 64), label="chunk size")
    framer = PduFramer()
    head = raw[: 6 + k]
    records = []
    for i in range(0, len(head), step):
        records += framer.receive_data(memoryview(head[i : i + step]))
    assert records == [PduStart(raw[0], len(body), 0)]
    records = framer.gap(hole)
    assert records == [PduBodyCut(raw[0], body[:k], len(body) - k), Hole(hole, 6 + k)]
    # The rest of the cut PDU (captured after the hole) is skipped; the next PDU is in sync.
    rest = raw[6 + k + hole :] + release_rq()
    records = []
    for i in range(0, len(rest), step):
        records += framer.receive_data(memoryview(rest[i : i + step]))
    assert records == [PduStart(5, 4, len(raw)), PduBody(5, bytes(4))]


def test_a_hole_past_the_end_of_a_cut_pdu_loses_sync() -> None:
    framer = PduFramer()
    framer.receive_data(memoryview(RQ[:50]))
    rest = len(RQ) - 50
    assert framer.gap(rest + 3) == [
        PduBodyCut(1, RQ[6:50], rest),
        Hole(rest + 3, 50),
        LostSync(50),
    ]


def test_a_hole_in_the_pdu_header_loses_sync_as_before() -> None:
    framer = PduFramer()
    framer.receive_data(memoryview(release_rq() + RQ[:4]))
    assert framer.gap(len(RQ) - 4) == [Hole(len(RQ) - 4, 14), LostSync(14)]


def test_a_hole_in_a_p_data_tf_is_not_a_cut_control_pdu() -> None:
    framer = PduFramer()
    pdu = echo_rq()
    records = framer.receive_data(memoryview(pdu[:8]))
    assert not any(isinstance(r, PduBodyCut) for r in records + framer.gap(len(pdu) - 8))


# --- the observer ---------------------------------------------------------------------------


def _observe(rq_captured: int, ac_captured: int | None = None) -> Recorder:
    """An echo association whose A-ASSOCIATE-RQ (and -AC) the capture cut after that many
    bytes (header included), as a snap length does."""
    rec = Recorder()
    obs = AssociationObserver(1, CLIENT, SERVER, rec, ts=0, frame=1, handshake=True)
    ac = associate_ac(called="PACS", calling="MODALITY")
    steps: list[tuple[bool, bytes, int | None]] = [
        (True, RQ, rq_captured),
        (False, ac, ac_captured),
        (True, echo_rq(), None),
        (False, echo_rsp(), None),
        (True, release_rq(), None),
        (False, release_rp(), None),
    ]
    for n, (from_client, raw, captured) in enumerate(steps, 2):
        if captured is None:
            obs.data(from_client, raw, n * 1000, n)
        else:
            obs.data(from_client, raw[:captured], n * 1000, n)
            obs.gap(from_client, len(raw) - captured, n * 1000, n)
    obs.closed(True, CloseKind.FIN, 9000, 9)
    obs.closed(False, CloseKind.FIN, 10000, 10)
    obs.finish(11000, 11)
    return rec


@pytest.mark.parametrize("captured", [10, 41, 42, 100, 134, 200, len(RQ) - 1])
def test_a_cut_rq_is_a_capture_gap_and_the_association_goes_on(captured: int) -> None:
    rec = _observe(captured, 134)
    assert rec.of(Violation) == []
    gaps = rec.of(StreamGap)
    assert [(g.from_requestor, g.size) for g in gaps] == [
        (True, len(RQ) - captured),
        (False, len(associate_ac(called="PACS", calling="MODALITY")) - 134),
    ]
    pdus = rec.of(PduObserved)
    assert [(p.pdu_type, p.complete) for p in pdus] == [
        (1, False),
        (2, False),
        (4, True),
        (4, True),
        (5, True),
        (6, True),
    ]
    rq, ac = pdus[0], pdus[1]
    assert rq.size == captured
    if captured >= 42:  # 6 + 36: both AE titles
        assert isinstance(rq.pdu, AssociateRq)
        assert rq.pdu.calling_ae == b"MODALITY        " and rq.pdu.missing == len(RQ) - captured
    else:
        assert rq.pdu is None
    assert isinstance(ac.pdu, AssociateAc) and ac.pdu.called_ae == b"PACS            "
    (ended,) = rec.of(AssociationEnded)
    assert ended.outcome == Outcome.RELEASED


def test_contexts_of_a_cut_ac_are_used_and_none_is_called_extra() -> None:
    # The RQ is cut before its contexts: the AC's answer is not "a context never proposed".
    rec = _observe(100)
    assert rec.of(Violation) == []
    (echo,) = rec.of(ExchangeObserved)
    assert echo.exchange.final is not None
