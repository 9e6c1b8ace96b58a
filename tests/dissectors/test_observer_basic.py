from __future__ import annotations

from dissectors import (
    AssociationEnded,
    AssociationStarted,
    ExchangeObserved,
    Outcome,
    PduObserved,
    Violation,
)
from tests.factories import echo_association, observe


def test_echo_association_is_released() -> None:
    rec = observe(echo_association())
    started = rec.of(AssociationStarted)
    assert len(started) == 1 and not started[0].partial
    pdus = rec.of(PduObserved)
    assert [p.pdu_type for p in pdus] == [1, 2, 4, 4, 5, 6]
    exchanges = rec.of(ExchangeObserved)
    assert len(exchanges) == 1
    ex = exchanges[0].exchange
    assert ex.request is not None and ex.final is not None
    assert ex.final.command.status == 0
    assert rec.of(Violation) == []
    (ended,) = rec.of(AssociationEnded)
    assert ended.outcome == Outcome.RELEASED
