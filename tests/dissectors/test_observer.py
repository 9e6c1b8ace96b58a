"""The observer against byte-level scenarios: whole, byte by byte, split at every offset."""

from __future__ import annotations

import pytest

from dissectors import (
    AssociationEnded,
    AssociationStarted,
    DimseMessageObserved,
    DissectorEvent,
    ExchangeObserved,
    PduObserved,
    Violation,
    ViolationKind,
)
from dissectors.dimse import DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN
from dissectors.pdu import PDataTf, Pdv
from tests.factories import (
    CT_STORAGE,
    EXPLICIT,
    IMPLICIT,
    VERIFICATION,
    associate_ac,
    associate_rq,
    command,
    observe,
)

from .scenarios import SCENARIOS, Scenario, store_rq


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario_outcome(scenario: Scenario) -> None:
    rec = observe(scenario.script, handshake=scenario.handshake)
    (ended,) = rec.of(AssociationEnded)
    assert ended.outcome == scenario.outcome, rec.events
    assert len(rec.of(ExchangeObserved)) == scenario.exchanges
    assert len(rec.of(Violation)) == scenario.violations, rec.of(Violation)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_byte_at_a_time_gives_the_same_events(scenario: Scenario) -> None:
    whole = observe(scenario.script, handshake=scenario.handshake).events
    bytewise = observe(scenario.script, handshake=scenario.handshake, chunk=1).events
    assert bytewise == whole


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_split_at_every_offset_gives_the_same_events(scenario: Scenario) -> None:
    whole = observe(scenario.script, handshake=scenario.handshake).events
    for step in range(len(scenario.script)):
        from_client, data = scenario.script[step]
        for cut in range(1, len(data), max(1, len(data) // 300)):
            script = list(scenario.script)
            script[step : step + 1] = [(from_client, data[:cut]), (from_client, data[cut:])]
            # The extra step shifts the clock for later steps: compare what does not depend on it.
            split = observe(script, handshake=scenario.handshake).events
            assert [type(e) for e in split] == [type(e) for e in whole], (step, cut)
            assert [_strip(e) for e in split] == [_strip(e) for e in whole], (step, cut)


def _strip(event: DissectorEvent) -> object:
    """An event without its times and frames."""
    match event:
        case PduObserved():
            return (
                event.pdu_type,
                event.length,
                event.offset,
                event.pdu,
                event.pdvs,
                event.defects,
            )
        case DimseMessageObserved():
            m = event.message
            return (event.from_requestor, m.context_id, m.command, m.dataset, m.complete)
        case ExchangeObserved():
            ex = event.exchange
            return (ex.from_requestor, ex.message_id, ex.pending, ex.final is not None)
        case Violation():
            return (event.kind, event.code, event.cell, event.offset)
        case AssociationEnded():
            return (event.outcome, event.state)
        case _:
            return type(event)


def test_store_keeps_header_not_bulk() -> None:
    scenario = next(s for s in SCENARIOS if s.name == "store")
    rec = observe(scenario.script)
    msgs = [e.message for e in rec.of(DimseMessageObserved) if e.message.dataset is not None]
    big = msgs[0].dataset
    assert big is not None
    assert big.length > 40_000
    assert big.transfer_syntax == EXPLICIT_VR_LITTLE_ENDIAN
    assert len(big.kept) < 200  # cut after the Pixel Data header
    ds = big.decode()
    assert ds.PatientName == "Doe^John"
    assert "PixelData" not in ds


def test_deflated_dataset_is_inflated_for_display() -> None:
    scenario = next(s for s in SCENARIOS if s.name == "deflate")
    rec = observe(scenario.script)
    (msg,) = [e.message for e in rec.of(DimseMessageObserved) if e.message.dataset is not None]
    assert msg.dataset is not None
    assert msg.dataset.transfer_syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN
    assert msg.dataset.decode().Modality == "CT"


def test_find_counts_pending_responses() -> None:
    scenario = next(s for s in SCENARIOS if s.name == "find-pending")
    (ex,) = [e.exchange for e in observe(scenario.script).of(ExchangeObserved)]
    assert ex.pending == 3
    assert ex.final is not None and ex.final.command.status == 0


def test_mid_stream_is_partial_and_sniffs_transfer_syntax() -> None:
    scenario = next(s for s in SCENARIOS if s.name == "mid-stream")
    rec = observe(scenario.script, handshake=False)
    (started,) = rec.of(AssociationStarted)
    assert started.partial
    store = [e.message for e in rec.of(DimseMessageObserved) if e.message.dataset is not None]
    assert store[0].dataset is not None
    assert store[0].dataset.sniffed
    assert store[0].dataset.transfer_syntax == EXPLICIT_VR_LITTLE_ENDIAN
    assert store[0].dataset.decode().PatientName == "Doe^John"


def test_state_machine_violation_names_the_cell() -> None:
    scenario = next(s for s in SCENARIOS if s.name == "second-rq")
    (v,) = observe(scenario.script).of(Violation)
    assert v.kind == ViolationKind.STATE_MACHINE
    assert v.cell == "Evt2@Sta6"  # the requestor could not have sent an RQ while established


def test_p_data_before_ac_is_a_sender_violation() -> None:
    scenario = next(s for s in SCENARIOS if s.name == "p-data-before-ac")
    (v,) = observe(scenario.script).of(Violation)
    assert v.cell == "Evt9@Sta5"
    assert v.from_requestor


def test_more_than_128_contexts_is_malformed() -> None:
    contexts = [(2 * i + 1, CT_STORAGE, (IMPLICIT,)) for i in range(128)]
    contexts.append((1, VERIFICATION, (IMPLICIT,)))
    texts = [v.text for v in observe([(True, associate_rq(contexts))]).of(Violation)]
    assert any("at most 128" in t for t in texts)
    assert any("proposed twice" in t for t in texts)


def test_ac_answering_an_unproposed_context() -> None:
    rec = observe(
        [(True, associate_rq()), (False, associate_ac(((1, 0, IMPLICIT), (5, 0, IMPLICIT))))]
    )
    assert any("did not propose" in v.text for v in rec.of(Violation))


def test_reserved_pdv_bits_are_reported() -> None:
    script = [(True, associate_rq()), (False, associate_ac())]
    echo = command(command_field=0x0030, message_id=1, affected_sop_class_uid=VERIFICATION)
    script.append((True, PDataTf((Pdv(1, 0x07, echo),)).encode()))
    rec = observe(script)
    assert [v.code for v in rec.of(Violation)] == ["pdv-reserved-bits"]
    assert len(rec.of(DimseMessageObserved)) == 1  # the message still decodes


def test_data_set_encoded_against_the_negotiation() -> None:
    implicit_body = b"\x10\x00\x10\x00\x08\x00\x00\x00Doe^John"
    script = [
        (True, associate_rq(((1, CT_STORAGE, (EXPLICIT,)),))),
        (False, associate_ac(((1, 0, EXPLICIT),))),
        (True, store_rq(1, 1, implicit_body)),
    ]
    rec = observe(script)
    (v,) = rec.of(Violation)
    assert v.code == "dataset-encoding-mismatch" and "Implicit VR Little Endian" in v.text
