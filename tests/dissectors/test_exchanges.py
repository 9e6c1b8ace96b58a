"""Pairing requests and responses: a response without its request is an orphan, said by the
dissector itself (the analyzer and every report read the flag, never guess)."""

from __future__ import annotations

from dissectors import ExchangeObserved
from tests.factories import (
    associate_ac,
    associate_rq,
    echo_rq,
    echo_rsp,
    observe,
    release_rp,
    release_rq,
)


def _exchanges(script: list[tuple[bool, bytes]]) -> list[ExchangeObserved]:
    return observe(script).of(ExchangeObserved)


def test_a_response_without_its_request_is_an_orphan() -> None:
    (orphan, echo) = _exchanges(
        [
            (True, associate_rq()),
            (False, associate_ac()),
            (False, echo_rsp(7)),  # no C-ECHO-RQ with message ID 7 in the stream
            (True, echo_rq(1)),
            (False, echo_rsp(1)),
            (True, release_rq()),
            (False, release_rp()),
        ]
    )
    assert orphan.exchange.orphan and orphan.exchange.request is None
    assert orphan.exchange.message_id == 7
    assert not echo.exchange.orphan and echo.exchange.request is not None


def test_pending_responses_without_their_request_are_an_orphan_too() -> None:
    """Near miss of the analyzer's old test (request None and a final response): pending
    responses whose request and final response are both outside the capture."""
    pending = echo_rsp(9, status=0xFF00)
    (orphan,) = _exchanges(
        [
            (True, associate_rq()),
            (False, associate_ac()),
            (False, pending),
            (False, pending),
        ]
    )
    assert orphan.exchange.orphan
    assert orphan.exchange.final is None and orphan.exchange.pending == 2


def test_an_unanswered_request_is_not_an_orphan() -> None:
    (unanswered,) = _exchanges(
        [(True, associate_rq()), (False, associate_ac()), (True, echo_rq(3))]
    )
    assert not unanswered.exchange.orphan and unanswered.exchange.final is None
