"""The PS3.8 §9.2 table and the observer's two-machine evaluation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dissectors import ul_fsm
from dissectors.outcome import ending
from dissectors.pdu import PduType
from dissectors.ul_fsm import (
    ACTION_NEXT_STATE,
    CROSSING_WINDOW_NS,
    TRANSITIONS,
    Action,
    AssociationFsm,
    Event,
    State,
    next_state,
)

from .conversations import FIN, Conversation, conversations

RQ, AC, RJ, DATA, RL_RQ, RL_RP, ABORT = (
    PduType.A_ASSOCIATE_RQ,
    PduType.A_ASSOCIATE_AC,
    PduType.A_ASSOCIATE_RJ,
    PduType.P_DATA_TF,
    PduType.A_RELEASE_RQ,
    PduType.A_RELEASE_RP,
    PduType.A_ABORT,
)

# A few cells read off PS3.8 Table 9-10 directly.
KNOWN_CELLS = [
    (Event.EVT3, State.STA5, "AE-3"),
    (Event.EVT4, State.STA5, "AE-4"),
    (Event.EVT6, State.STA2, "AE-6"),
    (Event.EVT6, State.STA13, "AA-7"),
    (Event.EVT10, State.STA6, "DT-2"),
    (Event.EVT10, State.STA7, "AR-6"),
    (Event.EVT10, State.STA8, "AA-8"),
    (Event.EVT10, State.STA13, "AA-6"),
    (Event.EVT12, State.STA7, "AR-8"),
    (Event.EVT13, State.STA10, "AR-10"),
    (Event.EVT13, State.STA11, "AR-3"),
    (Event.EVT14, State.STA9, "AR-9"),
    (Event.EVT15, State.STA4, "AA-2"),
    (Event.EVT16, State.STA13, "AA-2"),
    (Event.EVT17, State.STA2, "AA-5"),
    (Event.EVT17, State.STA13, "AR-5"),
    (Event.EVT18, State.STA2, "AA-2"),
    (Event.EVT19, State.STA13, "AA-7"),
]


@pytest.mark.parametrize(("event", "state", "action"), KNOWN_CELLS)
def test_table_cells(event: Event, state: State, action: str) -> None:
    assert TRANSITIONS[(event, state)] == action


def test_every_action_has_a_next_state() -> None:
    for action in set(TRANSITIONS.values()):
        for requestor in (True, False):
            assert isinstance(next_state(action, requestor=requestor), State)
    assert next_state(Action.AR_8, requestor=True) == State.STA9
    assert next_state(Action.AR_8, requestor=False) == State.STA10
    assert Action.AR_8 not in ACTION_NEXT_STATE


def test_receive_rows_cover_every_state_but_the_local_ones() -> None:
    receive_events = [
        Event.EVT3,
        Event.EVT4,
        Event.EVT6,
        Event.EVT10,
        Event.EVT12,
        Event.EVT13,
        Event.EVT16,
        Event.EVT19,
    ]
    for event in receive_events:
        for state in State:
            defined = (event, state) in TRANSITIONS
            assert defined == (state not in (State.STA1, State.STA4)), (event, state)


def _run(steps: list[tuple[int | str, bool, int]]) -> tuple[AssociationFsm, list[str]]:
    fsm = AssociationFsm()
    cells: list[str] = []
    for what, from_requestor, ts in steps:
        if what == "close":
            found = fsm.closed(by_requestor=from_requestor, ts=ts, frame=None)
        else:
            assert isinstance(what, int)
            found = fsm.pdu(what, from_requestor=from_requestor, ts=ts, frame=None)
        cells += [v.cell for v in found]
    cells += [v.cell for v in fsm.finish()]
    return fsm, cells


def test_normal_association() -> None:
    fsm, cells = _run(
        [
            (RQ, True, 1),
            (AC, False, 2),
            (DATA, True, 3),
            (DATA, False, 4),
            (RL_RQ, True, 5),
            (RL_RP, False, 6),
            ("close", True, 7),
        ]
    )
    assert cells == []
    assert fsm.acceptor.state == State.STA1  # AR-5 after the requestor's close


def test_rejected_association_closed_by_requestor() -> None:
    _fsm, cells = _run([(RQ, True, 1), (RJ, False, 2), ("close", True, 3)])
    assert cells == []


def test_data_crossing_a_release_request_is_legal() -> None:
    _, cells = _run(
        [
            (RQ, True, 1),
            (AC, False, 2),
            (DATA, True, 3),
            (RL_RQ, True, 4),
            (DATA, False, 5),
            (RL_RP, False, 6),
            ("close", True, 7),
        ]
    )
    assert cells == []


def test_abort_crossing_data_is_legal() -> None:
    _, cells = _run(
        [
            (RQ, True, 1),
            (AC, False, 2),
            (ABORT, False, 3),
            (DATA, True, 4),
            (DATA, True, 5),
            ("close", True, 6),
        ]
    )
    assert cells == []


def test_data_long_after_an_abort_is_a_violation() -> None:
    late = 3 + CROSSING_WINDOW_NS + 1
    _, cells = _run([(RQ, True, 1), (AC, False, 2), (ABORT, False, 3), (DATA, True, late)])
    assert cells == ["Evt9@Sta1"]


def test_release_collision_is_legal() -> None:
    _, cells = _run(
        [
            (RQ, True, 1),
            (AC, False, 2),
            (RL_RQ, True, 3),
            (RL_RQ, False, 4),
            (RL_RP, True, 5),
            (RL_RP, False, 6),
            ("close", True, 7),
        ]
    )
    assert cells == []


def test_ac_while_established_is_evt3_at_sta6() -> None:
    _, cells = _run([(RQ, True, 1), (AC, False, 2), (AC, False, 3)])
    assert cells == ["Evt7@Sta6"]  # the acceptor's own machine could not send it


def test_data_after_own_release_request() -> None:
    # The requestor sends P-DATA after its A-RELEASE-RQ (Evt9 is not allowed in Sta7).
    _, cells = _run([(RQ, True, 1), (AC, False, 2), (RL_RQ, True, 3), (DATA, True, 4)])
    assert cells == ["Evt9@Sta7"]


def test_unrecognised_pdu_makes_the_receiver_owe_an_abort() -> None:
    fsm, _cells = _run([(RQ, True, 1), (AC, False, 2)])
    found = fsm.pdu(None, from_requestor=True, ts=3, frame=None)
    found += fsm.pdu(ABORT, from_requestor=False, ts=4, frame=None)
    assert [v.cell for v in found] == ["Evt19@Sta6"]


def test_transport_drop_states() -> None:
    fsm = AssociationFsm()
    fsm.pdu(RQ, from_requestor=True, ts=1, frame=None)
    fsm.pdu(AC, from_requestor=False, ts=2, frame=None)
    assert fsm.state_before_close(of_requestor=True) == State.STA6
    fsm.closed(by_requestor=False, ts=3, frame=None)
    assert fsm.state_before_close(of_requestor=True) == State.STA1  # AA-4, once it has read it
    assert fsm.finish() == []
    assert fsm.requestor.state == State.STA1


def test_abort_crossing_a_close_is_legal() -> None:
    # The requestor resets the connection while the acceptor's A-ABORT is already on its way.
    fsm = AssociationFsm()
    fsm.pdu(RQ, from_requestor=True, ts=1, frame=None)
    fsm.pdu(AC, from_requestor=False, ts=2, frame=None)
    assert fsm.closed(by_requestor=True, ts=3, frame=None) == []
    assert fsm.pdu(ABORT, from_requestor=False, ts=4, frame=None) == []
    assert fsm.finish() == []


def test_the_table_is_pynetdicoms() -> None:
    """All 123 cells of PS3.8 Table 9-10, as pynetdicom transcribes them."""
    from pynetdicom.fsm import TRANSITION_TABLE

    ours = {(e.label, s.label): str(a) for (e, s), a in TRANSITIONS.items()}
    assert len(TRANSITION_TABLE) == 123
    assert ours == dict(TRANSITION_TABLE)


@settings(max_examples=400, deadline=None)
@given(conversations())
def test_two_conforming_peers_never_violate_the_table(conv: Conversation) -> None:
    """Whatever two conforming peers do, in whatever order a capture point sees it, the
    observer's machines find no violation, and the outcome is what happened."""
    fsm = AssociationFsm()
    found = []
    for ts, (kind, from_requestor) in enumerate(conv.wire):
        if kind == FIN:
            found += fsm.closed(by_requestor=from_requestor, ts=ts * 1000, frame=ts)
        else:
            found += fsm.pdu(kind, from_requestor=from_requestor, ts=ts * 1000, frame=ts)
    found += fsm.finish()
    assert found == [], (conv.wire, found)
    end = ending(fsm)
    assert (end.outcome, end.by) == conv.expected(), conv.wire


_ANY_STEP = st.tuples(
    st.sampled_from([RQ, AC, RJ, DATA, DATA, DATA, DATA, RL_RQ, RL_RP, ABORT, None, FIN]),
    st.booleans(),  # from the requestor
    st.integers(0, 3 * CROSSING_WINDOW_NS // 2),  # time since the step before
    st.integers(0, 7).map(lambda n: n == 0),  # injected
)


def _replay(steps: list[tuple[int | None, bool, int, bool]]) -> tuple[object, ...]:
    fsm = AssociationFsm()
    found = []
    ts = 0
    for kind, from_requestor, dt, injected in steps:
        ts += dt
        if kind == FIN:
            found += fsm.closed(by_requestor=from_requestor, ts=ts, frame=ts, injected=injected)
        else:
            found += fsm.pdu(
                kind, from_requestor=from_requestor, ts=ts, frame=ts, injected=injected
            )
    pending = [(m.state, list(m.pending)) for m in (fsm.requestor, fsm.acceptor)]
    found += fsm.finish()
    return found, fsm.log, pending, fsm.first_close


@settings(max_examples=300)
@given(st.lists(_ANY_STEP, max_size=40), st.lists(st.just((DATA, True, 0, False)), max_size=3))
def test_p_data_shortcuts_decide_as_the_table_does(
    steps: list[tuple[int | None, bool, int, bool]], data: list[tuple[int, bool, int, bool]]
) -> None:
    """Whatever the PDUs, their order and their times: the machines take the same steps,
    find the same violations and keep the same receives pending with the shortcuts for
    P-DATA as through the table alone."""
    steps = [(RQ, True, 0, False), (AC, False, 1, False), *data, *steps]
    fast = _replay(steps)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ul_fsm, "_DATA_BOTH_WAYS", frozenset())
        mp.setattr(ul_fsm, "_DATA_LOOPS", frozenset())
        slow = _replay(steps)
    assert fast == slow
