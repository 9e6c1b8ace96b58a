"""The DICOM Upper Layer state machine (PS3.8 §9.2), run by an observer for both roles.

Theory of operation
-------------------
PS3.8 describes one state machine per Application Entity: states Sta1-Sta13, events
Evt1-Evt19 and actions (AE-n, DT-n, AR-n, AA-n), in Table 9-10. Local events (primitives
such as Evt9 "P-DATA request") are invisible on the wire, but each one makes the local AE
*send* a PDU, so a passive observer can infer them: a PDU on the wire is a **send event on
the sender's machine** and a **receive event on the receiver's machine**. The observer runs
two machines side by side: the requestor's (the TCP client) and the acceptor's (the TCP
server). Every rule lives in this file, and the two roles obey the same table; the only role
dependence is the one PS3.8 itself has (AR-8 goes to Sta9 on the requestor, Sta10 on the
acceptor).

Crossings. The capture point sits somewhere between the two AEs, so it can see a PDU from X
before Y has read it while Y is already sending. PS3.8 allows two such crossings (data that
crosses an A-RELEASE-RQ, and anything that crosses an A-ABORT); the release collision is a
third. To evaluate them fairly, a receive event is not applied to the receiver's machine at
capture time but queued (``pending``) until the receiver next acts (sends a PDU or closes
the connection). At that point the receiver may have read any number of the queued
receives, but all those captured more than :data:`CROSSING_WINDOW_NS` earlier: if the
action is legal after some such number, the PDUs crossed on the wire and nothing is flagged.
The largest such number is taken (an action usually answers what came before it), except
for P-DATA, which keeps the state: the smallest, so that an A-RELEASE-RQ that crossed the
data is read when the machine next acts, not before its own A-RELEASE-RQ (a release
collision). Only when no number makes the action legal is it a violation, named by its
table cell (``Evt9@Sta7``). A property test drives both machines with random conversations
of two conforming peers, in every order a capture point could see them: no violation.

The log. Each machine's steps (event, state, the action the table prescribes, or none) go
to :attr:`AssociationFsm.log` as they are taken: every step that changes a state, and the
first of each kind that breaks the table; the loops of data transfer (DT-1, DT-2, AR-6, AR-7,
AA-6) are not logged, so the log stays a few dozen entries long however long the
association. How the association ended is a function of this log
(:func:`dissectors.outcome.ending`).

Third parties. A middlebox (the proxy) sometimes writes a PDU, or closes the connection, on
its own: an A-ABORT to a client after a write timeout, say. Such a PDU is *injected*: it is a
receive event on the receiver's machine but no send event on any machine, and its steps say
so, so that the outcome names a third party rather than the peer.

Violations. A receive event whose cell is AA-8 (or AA-1 in Sta2, AA-7 in Sta13) means the
peer sent something the receiver's machine cannot accept: the receiver would answer with an
A-ABORT. A send event with no cell in the table means the sender did something its own
machine cannot do. Each offending PDU is reported once. A receiver that owes an A-ABORT and
sends one is consistent; the observer keeps its state as it was, so that a peer which
tolerates the violation is followed without a cascade of further reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .pdu.constants import PduType
from .ul_terms import STATE_DESCRIPTIONS, Action, Event, Party, State

__all__ = [
    "ABORTING_ACTIONS",
    "ACTION_NEXT_STATE",
    "CROSSING_WINDOW_NS",
    "LOOPS",
    "RECEIVE_EVENT",
    "SENDS",
    "SEND_EVENT",
    "STATE_DESCRIPTIONS",
    "TRANSITIONS",
    "Action",
    "AssociationFsm",
    "Close",
    "Event",
    "FsmViolation",
    "Party",
    "State",
    "Step",
    "cell",
    "next_state",
]


# Which event a PDU is on the sender's machine and on the receiver's machine.
SEND_EVENT: dict[int, Event] = {
    PduType.A_ASSOCIATE_RQ: Event.EVT2,  # AE-2 sends the RQ once the transport is up
    PduType.A_ASSOCIATE_AC: Event.EVT7,
    PduType.A_ASSOCIATE_RJ: Event.EVT8,
    PduType.P_DATA_TF: Event.EVT9,
    PduType.A_RELEASE_RQ: Event.EVT11,
    PduType.A_RELEASE_RP: Event.EVT14,
    PduType.A_ABORT: Event.EVT15,
}
RECEIVE_EVENT: dict[int, Event] = {
    PduType.A_ASSOCIATE_RQ: Event.EVT6,
    PduType.A_ASSOCIATE_AC: Event.EVT3,
    PduType.A_ASSOCIATE_RJ: Event.EVT4,
    PduType.P_DATA_TF: Event.EVT10,
    PduType.A_RELEASE_RQ: Event.EVT12,
    PduType.A_RELEASE_RP: Event.EVT13,
    PduType.A_ABORT: Event.EVT16,
}

_S = State
_E = Event
_A = Action

# PS3.8 Table 9-10. Cells not listed are not defined by the standard.
TRANSITIONS: dict[tuple[Event, State], Action] = {
    (_E.EVT1, _S.STA1): _A.AE_1,
    (_E.EVT2, _S.STA4): _A.AE_2,
    **{(_E.EVT3, s): _A.AA_8 for s in _S if s not in (_S.STA1, _S.STA4)},
    (_E.EVT3, _S.STA2): _A.AA_1,
    (_E.EVT3, _S.STA5): _A.AE_3,
    (_E.EVT3, _S.STA13): _A.AA_6,
    **{(_E.EVT4, s): _A.AA_8 for s in _S if s not in (_S.STA1, _S.STA4)},
    (_E.EVT4, _S.STA2): _A.AA_1,
    (_E.EVT4, _S.STA5): _A.AE_4,
    (_E.EVT4, _S.STA13): _A.AA_6,
    (_E.EVT5, _S.STA1): _A.AE_5,
    **{(_E.EVT6, s): _A.AA_8 for s in _S if s not in (_S.STA1, _S.STA4)},
    (_E.EVT6, _S.STA2): _A.AE_6,
    (_E.EVT6, _S.STA13): _A.AA_7,
    (_E.EVT7, _S.STA3): _A.AE_7,
    (_E.EVT8, _S.STA3): _A.AE_8,
    (_E.EVT9, _S.STA6): _A.DT_1,
    (_E.EVT9, _S.STA8): _A.AR_7,
    **{(_E.EVT10, s): _A.AA_8 for s in _S if s not in (_S.STA1, _S.STA4)},
    (_E.EVT10, _S.STA2): _A.AA_1,
    (_E.EVT10, _S.STA6): _A.DT_2,
    (_E.EVT10, _S.STA7): _A.AR_6,
    (_E.EVT10, _S.STA13): _A.AA_6,
    (_E.EVT11, _S.STA6): _A.AR_1,
    **{(_E.EVT12, s): _A.AA_8 for s in _S if s not in (_S.STA1, _S.STA4)},
    (_E.EVT12, _S.STA2): _A.AA_1,
    (_E.EVT12, _S.STA6): _A.AR_2,
    (_E.EVT12, _S.STA7): _A.AR_8,
    (_E.EVT12, _S.STA13): _A.AA_6,
    **{(_E.EVT13, s): _A.AA_8 for s in _S if s not in (_S.STA1, _S.STA4)},
    (_E.EVT13, _S.STA2): _A.AA_1,
    (_E.EVT13, _S.STA7): _A.AR_3,
    (_E.EVT13, _S.STA10): _A.AR_10,
    (_E.EVT13, _S.STA11): _A.AR_3,
    (_E.EVT13, _S.STA13): _A.AA_6,
    (_E.EVT14, _S.STA8): _A.AR_4,
    (_E.EVT14, _S.STA9): _A.AR_9,
    (_E.EVT14, _S.STA12): _A.AR_4,
    **{(_E.EVT15, s): _A.AA_1 for s in _S if s not in (_S.STA1, _S.STA2, _S.STA13)},
    (_E.EVT15, _S.STA4): _A.AA_2,
    **{(_E.EVT16, s): _A.AA_3 for s in _S if s not in (_S.STA1, _S.STA4)},
    (_E.EVT16, _S.STA2): _A.AA_2,
    (_E.EVT16, _S.STA13): _A.AA_2,
    **{(_E.EVT17, s): _A.AA_4 for s in _S if s != _S.STA1},
    (_E.EVT17, _S.STA2): _A.AA_5,
    (_E.EVT17, _S.STA13): _A.AR_5,
    (_E.EVT18, _S.STA2): _A.AA_2,
    (_E.EVT18, _S.STA13): _A.AA_2,
    **{(_E.EVT19, s): _A.AA_8 for s in _S if s not in (_S.STA1, _S.STA4)},
    (_E.EVT19, _S.STA2): _A.AA_1,
    (_E.EVT19, _S.STA13): _A.AA_7,
}

# PS3.8 Table 9-6 to 9-9: the state each action leaves the machine in. AE-6 goes to Sta3
# when the request is passed to the user; the provider's own reject (to Sta13) looks the same
# on the wire as the user's (Evt8 in Sta3), so the observer always takes Sta3. AR-8 depends
# on the role and is handled in :func:`next_state`.
ACTION_NEXT_STATE: dict[Action, State] = {
    _A.AE_1: _S.STA4,
    _A.AE_2: _S.STA5,
    _A.AE_3: _S.STA6,
    _A.AE_4: _S.STA1,
    _A.AE_5: _S.STA2,
    _A.AE_6: _S.STA3,
    _A.AE_7: _S.STA6,
    _A.AE_8: _S.STA13,
    _A.DT_1: _S.STA6,
    _A.DT_2: _S.STA6,
    _A.AR_1: _S.STA7,
    _A.AR_2: _S.STA8,
    _A.AR_3: _S.STA1,
    _A.AR_4: _S.STA13,
    _A.AR_5: _S.STA1,
    _A.AR_6: _S.STA7,
    _A.AR_7: _S.STA8,
    _A.AR_9: _S.STA11,
    _A.AR_10: _S.STA12,
    _A.AA_1: _S.STA13,
    _A.AA_2: _S.STA1,
    _A.AA_3: _S.STA1,
    _A.AA_4: _S.STA1,
    _A.AA_5: _S.STA1,
    _A.AA_6: _S.STA13,
    _A.AA_7: _S.STA13,
    _A.AA_8: _S.STA13,
}

#: Actions that mean "the received PDU is not acceptable here; send an A-ABORT".
ABORTING_ACTIONS = frozenset({Action.AA_1, Action.AA_7, Action.AA_8})
#: Actions that keep the machine where it is, repeated for every PDU of a data transfer
#: (and AA-6, which ignores what arrives in Sta13): not logged.
LOOPS = frozenset({Action.DT_1, Action.DT_2, Action.AR_6, Action.AR_7, Action.AA_6})

#: How long after a PDU was captured its receiver may still act without having read it.
CROSSING_WINDOW_NS = 1_000_000_000


def next_state(action: Action, *, requestor: bool) -> State:
    """The state an action leads to; AR-8 (release collision) depends on the role."""
    if action == Action.AR_8:
        return _S.STA9 if requestor else _S.STA10
    return ACTION_NEXT_STATE[action]


#: States in which sending P-DATA-TF loops on the same state (DT-1 in Sta6, AR-7 in Sta8).
_DATA_LOOPS = frozenset(
    s
    for (e, s), action in TRANSITIONS.items()
    if e == Event.EVT9 and ACTION_NEXT_STATE[action] == s
)
#: Of those, the states in which receiving P-DATA-TF loops as well, with actions that are
#: never logged (DT-2 in Sta6, AR-6 in Sta8): a data transfer in both directions.
_DATA_BOTH_WAYS = frozenset(
    s
    for s in _DATA_LOOPS
    if TRANSITIONS[(Event.EVT9, s)] in LOOPS
    and TRANSITIONS.get((Event.EVT10, s)) in LOOPS
    and ACTION_NEXT_STATE[TRANSITIONS[(Event.EVT10, s)]] == s
)


def cell(event: Event, state: State) -> str:
    """The table cell name, e.g. ``Evt10@Sta8``."""
    return f"{event.label}@{state.label}"


@dataclass(frozen=True, slots=True)
class FsmViolation:
    """A PDU or close that the PS3.8 table does not allow.

    ``requestor`` says on whose machine the cell was evaluated; ``by_sender`` whether that
    machine is the sender's (an action it could not take) or the receiver's (a PDU it could
    not accept). ``pdu_type`` is None for a transport close or an undecodable PDU.
    """

    requestor: bool
    by_sender: bool
    event: Event
    state: State
    action: Action | None
    pdu_type: int | None
    ts: int
    frame: int | None

    @property
    def cell(self) -> str:
        return cell(self.event, self.state)


#: Events that are a PDU its machine sends.
SENDS = frozenset(SEND_EVENT.values())


@dataclass(frozen=True, slots=True)
class Step:
    """One step of one machine, as :attr:`AssociationFsm.log` records it.

    ``requestor`` says whose machine; ``event`` happened in ``state``; ``action`` is what the
    table prescribes there (None: no cell, the step broke the table). ``injected``: the PDU
    or the close came from a third party, not from the other AE.
    """

    requestor: bool
    event: Event
    state: State
    action: Action | None
    ts: int
    frame: int | None
    injected: bool = False

    @property
    def sent(self) -> bool:
        """The step is a PDU this machine sent."""
        return self.event in SENDS

    @property
    def party(self) -> Party:
        """Who wrote the PDU of a send or receive step: this machine's AE for a send, the
        other AE for a receive, a third party for an injected one."""
        return Party.sender(self.requestor == self.sent, self.injected)


@dataclass(frozen=True, slots=True)
class Close:
    """The first TCP close (FIN or RST) of the connection.

    ``left_state`` is the state of the machine left behind once it has read everything sent
    to it: where the transport dropped, for it.
    """

    by: Party
    ts: int
    frame: int | None
    left_state: State


@dataclass(slots=True)
class _Pending:
    event: Event
    pdu_type: int | None
    ts: int
    frame: int | None
    flagged: bool  # the sender side already reported this PDU
    injected: bool = False


@dataclass(slots=True)
class _Machine:
    requestor: bool
    state: State
    pending: list[_Pending] = field(default_factory=list)
    owes_abort: Action | None = None  # the AA-n that calls for an A-ABORT from this machine

    def receive(
        self,
        event: Event,
        pdu_type: int | None,
        ts: int,
        frame: int | None,
        flagged: bool,
        injected: bool = False,
    ) -> None:
        last = self.pending[-1] if self.pending else None
        # P-DATA receives loop on their state (DT-2, AR-6, AA-6): keep one entry for a run.
        if (
            last is not None
            and last.event == event == Event.EVT10
            and not flagged
            and last.injected == injected
        ):
            return
        self.pending.append(_Pending(event, pdu_type, ts, frame, flagged, injected))


def _trial(
    state: State, entries: list[_Pending], requestor: bool
) -> tuple[State, list[tuple[_Pending, State, Action | None]]]:
    """Apply receive entries to ``state``; return the new state and each entry's outcome."""
    outcomes: list[tuple[_Pending, State, Action | None]] = []
    for entry in entries:
        if state == State.STA1:
            # Sta1 is reached by closing the transport (AE-4, AR-3, AA-3 ...): whatever
            # arrives afterwards goes to a closed connection and is never read.
            continue
        action = TRANSITIONS.get((entry.event, state))
        outcomes.append((entry, state, action))
        if action is None or action in ABORTING_ACTIONS:
            # The receiver would abort (or the cell is undefined); keep following the
            # traffic as if the PDU had been ignored.
            continue
        state = next_state(action, requestor=requestor)
    return state, outcomes


def _prefix_states(state: State, entries: list[_Pending], requestor: bool) -> list[State]:
    """The state after each number of ``entries`` applied (0 to all), as :func:`_trial`
    would leave it."""
    states = [state]
    for entry in entries:
        if state != State.STA1:
            action = TRANSITIONS.get((entry.event, state))
            if action is not None and action not in ABORTING_ACTIONS:
                state = next_state(action, requestor=requestor)
        states.append(state)
    return states


class AssociationFsm:
    """Both PS3.8 machines of one association, driven by what the capture shows.

    Call :meth:`pdu` for each PDU in capture order, :meth:`closed` when a side closes (FIN or
    RST), and :meth:`finish` at the end. Each call returns the violations it found; the
    steps taken are in :attr:`log`, the first close in :attr:`first_close`.
    """

    def __init__(
        self, *, mid_stream: bool = False, start: tuple[State, State] | None = None
    ) -> None:
        if start is None:
            # Mid-stream: assume the association is established; otherwise the transport is
            # up and the A-ASSOCIATE-RQ comes next.
            start = (State.STA6, State.STA6) if mid_stream else (State.STA4, State.STA2)
        self.requestor = _Machine(True, start[0])
        self.acceptor = _Machine(False, start[1])
        self.log: list[Step] = []
        self.first_close: Close | None = None
        self._logged: set[tuple[bool, Event, State, Action | None]] = set()

    def _machines(self, from_requestor: bool) -> tuple[_Machine, _Machine]:
        if from_requestor:
            return self.requestor, self.acceptor
        return self.acceptor, self.requestor

    def _log(
        self,
        machine: _Machine,
        event: Event,
        state: State,
        action: Action | None,
        moved: bool,
        ts: int,
        frame: int | None,
        injected: bool = False,
    ) -> None:
        """Record a step: always when it ``moved`` the machine, once per kind otherwise."""
        if action in LOOPS:
            return
        if not moved:
            key = (machine.requestor, event, state, action)
            if key in self._logged:
                return
            self._logged.add(key)
        self.log.append(Step(machine.requestor, event, state, action, ts, frame, injected))

    def _act(
        self, machine: _Machine, event: Event, pdu_type: int | None, ts: int, frame: int | None
    ) -> tuple[FsmViolation | None, list[FsmViolation]]:
        """Apply the sender-side ``event`` on ``machine`` after the pending receives that fit.

        The machine may have read any number of its pending receives, but all those captured
        more than :data:`CROSSING_WINDOW_NS` before. Of the numbers that make ``event``
        legal, the largest is taken (an action usually answers what came before it), except
        for an action that keeps the state (P-DATA: DT-1, AR-7): then the smallest, so that
        a request that crossed the data on the wire is read when the machine next acts,
        rather than too early. Linear in the number of pending receives."""
        pending = machine.pending
        states = _prefix_states(machine.state, pending, machine.requestor)
        first = 0
        while first < len(pending) and ts - pending[first].ts > CROSSING_WINDOW_NS:
            first += 1
        legal = [k for k in range(first, len(pending) + 1) if (event, states[k]) in TRANSITIONS]
        chosen = len(pending)
        if legal:
            chosen = legal[0] if TRANSITIONS[(event, states[legal[0]])] in LOOPS else legal[-1]
        applied = states[chosen]
        _, outcomes = _trial(machine.state, pending[:chosen], machine.requestor)
        found = self._apply(machine, outcomes)
        del pending[:chosen]
        machine.state = applied
        before = machine.state
        if event == Event.EVT15 and machine.owes_abort is not None:
            # The A-ABORT that AA-1/AA-7/AA-8 sends: consistent, whatever the state.
            owed, machine.owes_abort = machine.owes_abort, None
            machine.state = State.STA13
            self._log(machine, event, before, owed, before != State.STA13, ts, frame)
            return None, found
        own: FsmViolation | None = None
        action = TRANSITIONS.get((event, before))
        if action is None:
            own = FsmViolation(machine.requestor, True, event, before, None, pdu_type, ts, frame)
            if event == Event.EVT15:
                machine.state = State.STA13
        else:
            machine.state = next_state(action, requestor=machine.requestor)
        self._log(machine, event, before, action, machine.state != before, ts, frame)
        return own, found

    def pdu(
        self,
        pdu_type: int | None,
        *,
        from_requestor: bool,
        ts: int,
        frame: int | None,
        injected: bool = False,
    ) -> list[FsmViolation]:
        """A PDU was captured; ``pdu_type`` None means undecodable (Evt19 on the receiver).

        ``injected``: a third party wrote it in the sender's direction; no machine sent it.
        """
        sender, receiver = self._machines(from_requestor)
        if (
            pdu_type == PduType.P_DATA_TF
            and not sender.pending
            and sender.state in _DATA_LOOPS
            and sender.owes_abort is None
            and not injected
        ):
            # The bulk of any association: data sent where DT-1/AR-7 keep the state, with
            # nothing queued for the sender. The table lookup below would say the same.
            receiver.receive(Event.EVT10, pdu_type, ts, frame, False)
            return []
        pending = sender.pending
        if (
            pdu_type == PduType.P_DATA_TF
            and len(pending) == 1
            and pending[0].event == Event.EVT10
            and sender.state in _DATA_BOTH_WAYS
            and sender.owes_abort is None
            and not injected
        ):
            # A request answered (or data crossing data): what the sender has been sent is
            # one run of P-DATA, read without leaving its state and without a logged step.
            # What :meth:`_act` does then reduces to this: the run is read if it was
            # captured more than the crossing window before, else it stays pending.
            if ts - pending[0].ts > CROSSING_WINDOW_NS:
                pending.clear()
            receiver.receive(Event.EVT10, pdu_type, ts, frame, False)
            return []
        violations: list[FsmViolation] = []
        flagged = False
        if pdu_type is not None and pdu_type in SEND_EVENT and not injected:
            own, found = self._act(sender, SEND_EVENT[pdu_type], pdu_type, ts, frame)
            violations.extend(found)
            if own is not None:
                violations.append(own)
                flagged = True
        event = RECEIVE_EVENT.get(pdu_type, Event.EVT19) if pdu_type is not None else Event.EVT19
        receiver.receive(event, pdu_type, ts, frame, flagged, injected)
        return violations

    def closed(
        self, *, by_requestor: bool, ts: int, frame: int | None, injected: bool = False
    ) -> list[FsmViolation]:
        """A side closed the TCP connection (FIN or RST); ``injected``: a third party closed
        it in that side's name (the side itself did nothing)."""
        closer, other = self._machines(by_requestor)
        violations: list[FsmViolation] = []
        if not injected:
            # Everything the closer received was read before it closed.
            _, outcomes = _trial(closer.state, closer.pending, closer.requestor)
            violations = self._apply(closer, outcomes)
            closer.pending.clear()
            closer.state = State.STA1
        if self.first_close is None:
            by = Party.THIRD_PARTY if injected else Party.of(by_requestor)
            left = self.state_before_close(of_requestor=not by_requestor)
            self.first_close = Close(by, ts, frame, left)
        # The other side learns of the close like of a PDU: it may still send what crossed
        # it (an A-ABORT that was already on its way is not a violation).
        other.receive(Event.EVT17, None, ts, frame, False, injected)
        return violations

    def _apply(
        self, machine: _Machine, outcomes: list[tuple[_Pending, State, Action | None]]
    ) -> list[FsmViolation]:
        """Log applied receives; violations among them (the receiver then owes an A-ABORT:
        AA-8 &c.). A PDU its sender already got flagged for is not reported a second time."""
        found: list[FsmViolation] = []
        for entry, st, action in outcomes:
            aborting = action is None or action in ABORTING_ACTIONS
            moved = False
            if action is not None and not aborting:
                moved = next_state(action, requestor=machine.requestor) != st
            self._log(
                machine, entry.event, st, action, moved, entry.ts, entry.frame, entry.injected
            )
            if aborting:
                machine.owes_abort = action or Action.AA_8
                if not entry.flagged:
                    found.append(
                        FsmViolation(
                            machine.requestor,
                            False,
                            entry.event,
                            st,
                            action,
                            entry.pdu_type,
                            entry.ts,
                            entry.frame,
                        )
                    )
        return found

    def state_before_close(self, *, of_requestor: bool) -> State:
        """The state a machine is in once it has read everything sent to it so far."""
        machine = self.requestor if of_requestor else self.acceptor
        state, _ = _trial(machine.state, machine.pending, machine.requestor)
        return state

    def finish(self) -> list[FsmViolation]:
        """The capture ended: apply what is still queued on both machines."""
        violations: list[FsmViolation] = []
        for machine in (self.requestor, self.acceptor):
            state, outcomes = _trial(machine.state, machine.pending, machine.requestor)
            violations.extend(self._apply(machine, outcomes))
            machine.pending.clear()
            machine.state = state
        return violations
