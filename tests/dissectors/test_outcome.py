"""One outcome: how an association ended and who ended it, from the state machines' log."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from analyzer.builder import ModelBuilder
from analyzer.findings import Diagnosis
from analyzer.store import Store
from dissectors import AssociationEnded, CloseKind, Outcome, Party, Violation
from dissectors.observer import AssociationObserver
from dissectors.ul_fsm import Action, Event
from tests.factories import (
    CLIENT,
    SERVER,
    Recorder,
    abort,
    associate_ac,
    associate_rj,
    associate_rq,
    echo_rq,
    echo_rsp,
    release_rp,
    release_rq,
)

# (from_client, bytes) steps, or ("fin"|"rst", from_client), or ("inject", from_client, bytes)
# for bytes a middlebox wrote in that side's direction, ("inject-fin", from_client) for a
# close it made in that side's name.
Step = tuple[object, ...]

OPEN: list[Step] = [
    (True, associate_rq()),
    (False, associate_ac()),
    (True, echo_rq()),
    (False, echo_rsp()),
]


def run(steps: Sequence[Step]) -> tuple[AssociationEnded, Recorder, AssociationObserver]:
    rec = Recorder()
    obs = AssociationObserver(1, CLIENT, SERVER, rec, ts=0, frame=1, handshake=True)
    for i, step in enumerate(steps, 2):
        ts = i * 1_000_000
        match step:
            case ("fin" | "rst" as kind, bool(from_client)):
                obs.closed(from_client, CloseKind(kind), ts, i)
            case ("inject-fin", bool(from_client)):
                obs.closed(from_client, CloseKind.FIN, ts, i, injected=True)
            case ("inject", bool(from_client), bytes(data)):
                obs.data(from_client, data, ts, i, injected=True)
            case (bool(from_client), bytes(data)):
                obs.data(from_client, data, ts, i)
            case _:
                raise AssertionError(step)
    obs.finish()
    (ended,) = rec.of(AssociationEnded)
    return ended, rec, obs


CASES: list[tuple[str, list[Step], Outcome, Party | None, Party | None]] = [
    (
        "released-by-requestor",
        [*OPEN, (True, release_rq()), (False, release_rp()), ("fin", True), ("fin", False)],
        Outcome.RELEASED,
        Party.REQUESTOR,
        Party.REQUESTOR,
    ),
    (
        "released-by-acceptor",
        [*OPEN, (False, release_rq()), (True, release_rp()), ("fin", False)],
        Outcome.RELEASED,
        Party.ACCEPTOR,
        Party.ACCEPTOR,
    ),
    (
        "release-collision",
        [
            *OPEN,
            (True, release_rq()),
            (False, release_rq()),
            (True, release_rp()),
            (False, release_rp()),
            ("fin", True),
        ],
        Outcome.RELEASE_COLLISION,
        None,
        Party.REQUESTOR,
    ),
    (
        "release-collision-never-answered",
        [*OPEN, (True, release_rq()), (False, release_rq()), ("fin", True)],
        Outcome.TRANSPORT_DROPPED,
        Party.REQUESTOR,
        Party.REQUESTOR,
    ),
    (
        "release-collision-answered-once",
        [*OPEN, (True, release_rq()), (False, release_rq()), (True, release_rp()), ("fin", True)],
        Outcome.TRANSPORT_DROPPED,
        Party.REQUESTOR,
        Party.REQUESTOR,
    ),
    (
        "release-never-answered",
        [*OPEN, (True, release_rq()), ("fin", True)],
        Outcome.TRANSPORT_DROPPED,
        Party.REQUESTOR,
        Party.REQUESTOR,
    ),
    (
        "rejected",
        [(True, associate_rq()), (False, associate_rj()), ("fin", True)],
        Outcome.REJECTED,
        Party.ACCEPTOR,
        Party.REQUESTOR,
    ),
    (
        "rejected-by-a-third-party",
        [(True, associate_rq()), ("inject", False, associate_rj()), ("inject-fin", False)],
        Outcome.REJECTED,
        Party.THIRD_PARTY,
        Party.THIRD_PARTY,
    ),
    (
        "aborted-by-requestor",
        [*OPEN, (True, abort(0, 0)), ("fin", False)],
        Outcome.ABORTED,
        Party.REQUESTOR,
        Party.ACCEPTOR,
    ),
    (
        "aborted-by-acceptor",
        [*OPEN, (False, abort(2, 6)), ("rst", True)],
        Outcome.ABORTED,
        Party.ACCEPTOR,
        Party.REQUESTOR,
    ),
    (
        "aborted-by-a-third-party",
        [*OPEN, ("inject", False, abort(0, 0)), ("inject-fin", False)],
        Outcome.ABORTED,
        Party.THIRD_PARTY,
        Party.THIRD_PARTY,
    ),
    (
        "dropped-by-acceptor",
        [*OPEN, ("rst", False)],
        Outcome.TRANSPORT_DROPPED,
        Party.ACCEPTOR,
        Party.ACCEPTOR,
    ),
    (
        "dropped-by-a-third-party",
        [*OPEN, ("inject-fin", False)],
        Outcome.TRANSPORT_DROPPED,
        Party.THIRD_PARTY,
        Party.THIRD_PARTY,
    ),
    ("open", OPEN, Outcome.OPEN_AT_END, None, None),
]


@pytest.mark.parametrize(
    ("steps", "outcome", "by", "closed_by"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_outcome_and_who(
    steps: list[Step], outcome: Outcome, by: Party | None, closed_by: Party | None
) -> None:
    ended, _, _ = run(steps)
    assert (ended.outcome, ended.ended_by, ended.closed_by) == (outcome, by, closed_by)


def test_the_outcome_is_read_off_the_log() -> None:
    _, _, obs = run(
        [*OPEN, (True, release_rq()), (False, release_rq()), (True, release_rp()), ("fin", True)]
    )
    assert obs._fsm is not None
    log = obs._fsm.log
    # Both machines took AR-8; only the requestor answered (AR-9); no AR-4 from Sta12.
    assert [s.requestor for s in log if s.action == Action.AR_8] == [True, False]
    assert [s.requestor for s in log if s.event == Event.EVT14] == [True]


def test_the_log_stays_short_however_long_the_association() -> None:
    _, _, obs = run([*OPEN, *[(True, echo_rq(i)) for i in range(2, 500)]])
    assert obs._fsm is not None and len(obs._fsm.log) < 20


def test_an_injected_abort_is_no_violation_of_the_acceptor() -> None:
    """The acceptor did not send it: its machine is not blamed for an A-ABORT out of turn."""
    ended, rec, _ = run([*OPEN, ("inject", False, abort(0, 0)), ("inject", False, abort(0, 0))])
    assert rec.of(Violation) == []
    assert ended.outcome == Outcome.ABORTED and ended.ended_by == Party.THIRD_PARTY


def _model(steps: Sequence[Step]) -> Store:
    store = Store()
    builder = ModelBuilder(store, rules=Diagnosis())
    _, rec, _ = run(steps)
    for event in rec.events:
        builder.handle(event)
    return store


def test_the_model_and_the_findings_take_the_one_outcome() -> None:
    store = _model([*OPEN, ("inject", False, abort(0, 0)), ("inject-fin", False)])
    (a,) = store.associations()
    assert a.ended_by == Party.THIRD_PARTY and a.closed_by == Party.THIRD_PARTY
    assert a.abort is not None and a.abort.by == Party.THIRD_PARTY and not a.abort.from_requestor
    (finding,) = [f for f in store.findings(a.id) if f.code == "association-aborted"]
    assert finding.title == "Association aborted by a third party"
    assert "acceptor" not in finding.title


def test_a_collision_left_unanswered_is_not_released() -> None:
    store = _model([*OPEN, (True, release_rq()), (False, release_rq()), ("fin", True)])
    (a,) = store.associations()
    assert a.outcome == Outcome.TRANSPORT_DROPPED
    (finding,) = store.findings(a.id)
    assert finding.code == "release-collision" and "unfinished" in finding.title
