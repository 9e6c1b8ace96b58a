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
the connection). At that point the receiver's action is tried after all queued receives,
then after fewer of them: if it is legal only before some receives were processed, and
those receives were captured at most :data:`CROSSING_WINDOW_NS` earlier, the PDUs crossed
on the wire and nothing is flagged. Only when no ordering makes the action legal is it a
violation, named by its table cell (``Evt9@Sta7``).

Violations. A receive event whose cell is AA-8 (or AA-1 in Sta2, AA-7 in Sta13) means the
peer sent something the receiver's machine cannot accept: the receiver would answer with an
A-ABORT. A send event with no cell in the table means the sender did something its own
machine cannot do. Each offending PDU is reported once. A receiver that owes an A-ABORT and
sends one is consistent; the observer keeps its state as it was, so that a peer which
tolerates the violation is followed without a cascade of further reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from .pdu.constants import PduType


class State(IntEnum):
    """Association states, PS3.8 Table 9-1 (names shortened)."""

    STA1 = 1
    """Idle."""
    STA2 = 2
    """Transport connection open, awaiting A-ASSOCIATE-RQ PDU (acceptor)."""
    STA3 = 3
    """Awaiting local A-ASSOCIATE response primitive (acceptor)."""
    STA4 = 4
    """Awaiting transport connection opening to complete (requestor)."""
    STA5 = 5
    """Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU (requestor)."""
    STA6 = 6
    """Association established and ready for data transfer."""
    STA7 = 7
    """Awaiting A-RELEASE-RP PDU."""
    STA8 = 8
    """Awaiting local A-RELEASE response primitive."""
    STA9 = 9
    """Release collision requestor side; awaiting A-RELEASE response primitive."""
    STA10 = 10
    """Release collision acceptor side; awaiting A-RELEASE-RP PDU."""
    STA11 = 11
    """Release collision requestor side; awaiting A-RELEASE-RP PDU."""
    STA12 = 12
    """Release collision acceptor side; awaiting A-RELEASE response primitive."""
    STA13 = 13
    """Awaiting transport connection close indication."""

    @property
    def label(self) -> str:
        return f"Sta{self.value}"

    @property
    def description(self) -> str:
        return STATE_DESCRIPTIONS[self]


STATE_DESCRIPTIONS: dict[State, str] = {
    # Worded to read after "while" and in parentheses alike.
    State.STA1: "idle (the association is over)",
    State.STA2: "connected and waiting for the A-ASSOCIATE-RQ",
    State.STA3: "deciding whether to accept the A-ASSOCIATE-RQ",
    State.STA4: "waiting for the TCP connection to open",
    State.STA5: "waiting for the answer to its A-ASSOCIATE-RQ",
    State.STA6: "the association is established",
    State.STA7: "waiting for the A-RELEASE-RP to its A-RELEASE-RQ",
    State.STA8: "about to answer an A-RELEASE-RQ",
    State.STA9: "in a release collision (requestor), about to answer",
    State.STA10: "in a release collision (acceptor), waiting for the A-RELEASE-RP",
    State.STA11: "in a release collision (requestor), waiting for the A-RELEASE-RP",
    State.STA12: "in a release collision (acceptor), about to answer",
    State.STA13: "waiting for the TCP connection to close",
}


class Event(IntEnum):
    """State machine events, PS3.8 Table 9-2."""

    EVT1 = 1
    """A-ASSOCIATE request (local user)."""
    EVT2 = 2
    """Transport connect confirmation (local transport service)."""
    EVT3 = 3
    """A-ASSOCIATE-AC PDU received."""
    EVT4 = 4
    """A-ASSOCIATE-RJ PDU received."""
    EVT5 = 5
    """Transport connection indication."""
    EVT6 = 6
    """A-ASSOCIATE-RQ PDU received."""
    EVT7 = 7
    """A-ASSOCIATE response primitive (accept): send A-ASSOCIATE-AC."""
    EVT8 = 8
    """A-ASSOCIATE response primitive (reject): send A-ASSOCIATE-RJ."""
    EVT9 = 9
    """P-DATA request primitive: send P-DATA-TF."""
    EVT10 = 10
    """P-DATA-TF PDU received."""
    EVT11 = 11
    """A-RELEASE request primitive: send A-RELEASE-RQ."""
    EVT12 = 12
    """A-RELEASE-RQ PDU received."""
    EVT13 = 13
    """A-RELEASE-RP PDU received."""
    EVT14 = 14
    """A-RELEASE response primitive: send A-RELEASE-RP."""
    EVT15 = 15
    """A-ABORT request primitive: send A-ABORT."""
    EVT16 = 16
    """A-ABORT PDU received."""
    EVT17 = 17
    """Transport connection closed indication."""
    EVT18 = 18
    """ARTIM timer expired."""
    EVT19 = 19
    """Unrecognized or invalid PDU received."""

    @property
    def label(self) -> str:
        return f"Evt{self.value}"


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

# PS3.8 Table 9-10. Cells not listed are not defined by the standard.
TRANSITIONS: dict[tuple[Event, State], str] = {
    (_E.EVT1, _S.STA1): "AE-1",
    (_E.EVT2, _S.STA4): "AE-2",
    **{(_E.EVT3, s): "AA-8" for s in _S if s not in (_S.STA1, _S.STA4)},
    (_E.EVT3, _S.STA2): "AA-1",
    (_E.EVT3, _S.STA5): "AE-3",
    (_E.EVT3, _S.STA13): "AA-6",
    **{(_E.EVT4, s): "AA-8" for s in _S if s not in (_S.STA1, _S.STA4)},
    (_E.EVT4, _S.STA2): "AA-1",
    (_E.EVT4, _S.STA5): "AE-4",
    (_E.EVT4, _S.STA13): "AA-6",
    (_E.EVT5, _S.STA1): "AE-5",
    **{(_E.EVT6, s): "AA-8" for s in _S if s not in (_S.STA1, _S.STA4)},
    (_E.EVT6, _S.STA2): "AE-6",
    (_E.EVT6, _S.STA13): "AA-7",
    (_E.EVT7, _S.STA3): "AE-7",
    (_E.EVT8, _S.STA3): "AE-8",
    (_E.EVT9, _S.STA6): "DT-1",
    (_E.EVT9, _S.STA8): "AR-7",
    **{(_E.EVT10, s): "AA-8" for s in _S if s not in (_S.STA1, _S.STA4)},
    (_E.EVT10, _S.STA2): "AA-1",
    (_E.EVT10, _S.STA6): "DT-2",
    (_E.EVT10, _S.STA7): "AR-6",
    (_E.EVT10, _S.STA13): "AA-6",
    (_E.EVT11, _S.STA6): "AR-1",
    **{(_E.EVT12, s): "AA-8" for s in _S if s not in (_S.STA1, _S.STA4)},
    (_E.EVT12, _S.STA2): "AA-1",
    (_E.EVT12, _S.STA6): "AR-2",
    (_E.EVT12, _S.STA7): "AR-8",
    (_E.EVT12, _S.STA13): "AA-6",
    **{(_E.EVT13, s): "AA-8" for s in _S if s not in (_S.STA1, _S.STA4)},
    (_E.EVT13, _S.STA2): "AA-1",
    (_E.EVT13, _S.STA7): "AR-3",
    (_E.EVT13, _S.STA10): "AR-10",
    (_E.EVT13, _S.STA11): "AR-3",
    (_E.EVT13, _S.STA13): "AA-6",
    (_E.EVT14, _S.STA8): "AR-4",
    (_E.EVT14, _S.STA9): "AR-9",
    (_E.EVT14, _S.STA12): "AR-4",
    **{(_E.EVT15, s): "AA-1" for s in _S if s not in (_S.STA1, _S.STA2, _S.STA13)},
    (_E.EVT15, _S.STA4): "AA-2",
    **{(_E.EVT16, s): "AA-3" for s in _S if s not in (_S.STA1, _S.STA4)},
    (_E.EVT16, _S.STA2): "AA-2",
    (_E.EVT16, _S.STA13): "AA-2",
    **{(_E.EVT17, s): "AA-4" for s in _S if s != _S.STA1},
    (_E.EVT17, _S.STA2): "AA-5",
    (_E.EVT17, _S.STA13): "AR-5",
    (_E.EVT18, _S.STA2): "AA-2",
    (_E.EVT18, _S.STA13): "AA-2",
    **{(_E.EVT19, s): "AA-8" for s in _S if s not in (_S.STA1, _S.STA4)},
    (_E.EVT19, _S.STA2): "AA-1",
    (_E.EVT19, _S.STA13): "AA-7",
}

# PS3.8 Table 9-6 to 9-9: the state each action leaves the machine in. AE-6 goes to Sta3
# when the request is passed to the user; the provider's own reject (to Sta13) looks the same
# on the wire as the user's (Evt8 in Sta3), so the observer always takes Sta3. AR-8 depends
# on the role and is handled in :func:`next_state`.
ACTION_NEXT_STATE: dict[str, State] = {
    "AE-1": _S.STA4,
    "AE-2": _S.STA5,
    "AE-3": _S.STA6,
    "AE-4": _S.STA1,
    "AE-5": _S.STA2,
    "AE-6": _S.STA3,
    "AE-7": _S.STA6,
    "AE-8": _S.STA13,
    "DT-1": _S.STA6,
    "DT-2": _S.STA6,
    "AR-1": _S.STA7,
    "AR-2": _S.STA8,
    "AR-3": _S.STA1,
    "AR-4": _S.STA13,
    "AR-5": _S.STA1,
    "AR-6": _S.STA7,
    "AR-7": _S.STA8,
    "AR-9": _S.STA11,
    "AR-10": _S.STA12,
    "AA-1": _S.STA13,
    "AA-2": _S.STA1,
    "AA-3": _S.STA1,
    "AA-4": _S.STA1,
    "AA-5": _S.STA1,
    "AA-6": _S.STA13,
    "AA-7": _S.STA13,
    "AA-8": _S.STA13,
}

#: Actions that mean "the received PDU is not acceptable here; send an A-ABORT".
ABORTING_ACTIONS = frozenset({"AA-1", "AA-7", "AA-8"})

#: How long after a PDU was captured its receiver may still act without having read it.
CROSSING_WINDOW_NS = 1_000_000_000


def next_state(action: str, *, requestor: bool) -> State:
    """The state an action leads to; AR-8 (release collision) depends on the role."""
    if action == "AR-8":
        return _S.STA9 if requestor else _S.STA10
    return ACTION_NEXT_STATE[action]


#: States in which sending P-DATA-TF loops on the same state (DT-1 in Sta6, AR-7 in Sta8).
_DATA_LOOPS = frozenset(
    s
    for (e, s), action in TRANSITIONS.items()
    if e == Event.EVT9 and ACTION_NEXT_STATE[action] == s
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
    action: str | None
    pdu_type: int | None
    ts: int
    frame: int | None

    @property
    def cell(self) -> str:
        return cell(self.event, self.state)


@dataclass(slots=True)
class _Pending:
    event: Event
    pdu_type: int | None
    ts: int
    frame: int | None
    flagged: bool  # the sender side already reported this PDU


@dataclass(slots=True)
class _Machine:
    requestor: bool
    state: State
    pending: list[_Pending] = field(default_factory=list)
    owes_abort: bool = False

    def receive(
        self, event: Event, pdu_type: int | None, ts: int, frame: int | None, flagged: bool
    ) -> None:
        last = self.pending[-1] if self.pending else None
        # P-DATA receives loop on their state (DT-2, AR-6, AA-6): keep one entry for a run.
        if last is not None and last.event == event == Event.EVT10 and not flagged:
            return
        self.pending.append(_Pending(event, pdu_type, ts, frame, flagged))


def _trial(
    state: State, entries: list[_Pending], requestor: bool
) -> tuple[State, list[tuple[_Pending, State, str | None]]]:
    """Apply receive entries to ``state``; return the new state and each entry's outcome."""
    outcomes: list[tuple[_Pending, State, str | None]] = []
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


class AssociationFsm:
    """Both PS3.8 machines of one association, driven by what the capture shows.

    Call :meth:`pdu` for each PDU in capture order, :meth:`closed` when a side closes (FIN or
    RST), and :meth:`finish` at the end. Each call returns the violations it found.
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

    def _machines(self, from_requestor: bool) -> tuple[_Machine, _Machine]:
        if from_requestor:
            return self.requestor, self.acceptor
        return self.acceptor, self.requestor

    def _act(
        self, machine: _Machine, event: Event, pdu_type: int | None, ts: int, frame: int | None
    ) -> tuple[FsmViolation | None, list[FsmViolation]]:
        """Apply the sender-side ``event`` on ``machine`` after as many pending receives as fit."""
        pending = machine.pending
        chosen = len(pending)
        applied, outcomes = _trial(machine.state, pending, machine.requestor)
        if (event, applied) not in TRANSITIONS:
            for k in range(len(pending) - 1, -1, -1):
                if ts - pending[k].ts > CROSSING_WINDOW_NS:
                    # Receives older than the window were read by now: no crossing possible.
                    break
                state, fewer = _trial(machine.state, pending[:k], machine.requestor)
                if (event, state) in TRANSITIONS:
                    chosen, applied, outcomes = k, state, fewer
                    break
        found = self._report(machine, outcomes)
        del pending[:chosen]
        machine.state = applied
        if event == Event.EVT15 and machine.owes_abort:
            # The A-ABORT that AA-1/AA-7/AA-8 sends: consistent, whatever the state.
            machine.owes_abort = False
            machine.state = State.STA13
            return None, found
        own: FsmViolation | None = None
        action = TRANSITIONS.get((event, machine.state))
        if action is None:
            own = FsmViolation(
                machine.requestor, True, event, machine.state, None, pdu_type, ts, frame
            )
            if event == Event.EVT15:
                machine.state = State.STA13
        else:
            machine.state = next_state(action, requestor=machine.requestor)
        return own, found

    def pdu(
        self, pdu_type: int | None, *, from_requestor: bool, ts: int, frame: int | None
    ) -> list[FsmViolation]:
        """A PDU was captured; ``pdu_type`` None means undecodable (Evt19 on the receiver)."""
        sender, receiver = self._machines(from_requestor)
        if (
            pdu_type == PduType.P_DATA_TF
            and not sender.pending
            and sender.state in _DATA_LOOPS
            and not sender.owes_abort
        ):
            # The bulk of any association: data sent where DT-1/AR-7 keep the state, with
            # nothing queued for the sender. The table lookup below would say the same.
            receiver.receive(Event.EVT10, pdu_type, ts, frame, False)
            return []
        violations: list[FsmViolation] = []
        flagged = False
        if pdu_type is not None and pdu_type in SEND_EVENT:
            own, found = self._act(sender, SEND_EVENT[pdu_type], pdu_type, ts, frame)
            violations.extend(found)
            if own is not None:
                violations.append(own)
                flagged = True
        event = RECEIVE_EVENT.get(pdu_type, Event.EVT19) if pdu_type is not None else Event.EVT19
        receiver.receive(event, pdu_type, ts, frame, flagged)
        return violations

    def closed(self, *, by_requestor: bool, ts: int, frame: int | None) -> list[FsmViolation]:
        """A side closed the TCP connection (FIN or RST)."""
        closer, other = self._machines(by_requestor)
        # Everything the closer received was read before it closed.
        _, outcomes = _trial(closer.state, closer.pending, closer.requestor)
        violations = self._report(closer, outcomes)
        closer.pending.clear()
        closer.state = State.STA1
        # The other side learns of the close like of a PDU: it may still send what crossed
        # it (an A-ABORT that was already on its way is not a violation).
        other.receive(Event.EVT17, None, ts, frame, False)
        return violations

    def _report(
        self, machine: _Machine, outcomes: list[tuple[_Pending, State, str | None]]
    ) -> list[FsmViolation]:
        """Violations among applied receives; the receiver then owes an A-ABORT (AA-8 &c.).

        A PDU its sender already got flagged for is not reported a second time."""
        found: list[FsmViolation] = []
        for entry, st, action in outcomes:
            if action in ABORTING_ACTIONS or action is None:
                machine.owes_abort = True
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
            violations.extend(self._report(machine, outcomes))
            machine.pending.clear()
            machine.state = state
        return violations
