"""How an association ended: worked out once, from what its state machines logged.

The observer's two PS3.8 machines log every step they take (:attr:`AssociationFsm.log
<dissectors.ul_fsm.AssociationFsm.log>`) and the first TCP close; :func:`ending` reads the
outcome and the party responsible off that record. Nothing else in dicomtap works it out
again: the model, the findings and the reports take :class:`Ending` as it is.

In order of precedence:

* **rejected**: an A-ASSOCIATE-RJ was sent (by the acceptor, or injected by a third party);
* **aborted**: an A-ABORT was sent (AA-1, or the A-ABORT that AA-8 &c. call for, or one out
  of turn), or a third party injected one; the first one names who aborted;
* **release collision**: both machines took AR-8 and both A-RELEASE-RPs were sent;
* **released**: one side sent an A-RELEASE-RQ and the other answered with an A-RELEASE-RP
  (a release collision left unanswered is *not* released);
* **transport dropped**: the connection closed first (by either side, or a third party);
* **open at end**: none of the above when the capture ended.
"""

from __future__ import annotations

from dataclasses import dataclass

from .events import Outcome
from .ul_fsm import Action, AssociationFsm, Event, Party, State


@dataclass(frozen=True, slots=True)
class Ending:
    """The outcome of an association and who brought it about.

    ``by``: who rejected, aborted, released (asked for the release; None for a release
    collision, where both did) or closed the connection first (transport dropped); None
    while the association is open. ``state``: for transport-dropped, the state of the side
    left behind when the connection closed; for open-at-end, the requestor's state.
    ``closed_by``: who closed the TCP connection first, whatever the outcome.
    """

    outcome: Outcome
    by: Party | None
    state: State | None
    closed_by: Party | None


def ending(fsm: AssociationFsm) -> Ending:
    """The outcome of the association whose machines are ``fsm``, so far."""
    log = fsm.log
    close = fsm.first_close
    closed_by = close.by if close is not None else None
    for step in log:
        if (step.event == Event.EVT8 and not step.injected) or (
            step.event == Event.EVT4 and step.injected
        ):
            return Ending(Outcome.REJECTED, step.party, None, closed_by)
    for step in log:
        if (step.event == Event.EVT15 and not step.injected) or (
            step.event == Event.EVT16 and step.injected
        ):
            return Ending(Outcome.ABORTED, step.party, None, closed_by)
    answered = {step.requestor for step in log if step.event == Event.EVT14}
    if any(step.action == Action.AR_8 for step in log):
        if answered == {True, False}:
            return Ending(Outcome.RELEASE_COLLISION, None, None, closed_by)
    else:
        asked = next((step for step in log if step.event == Event.EVT11), None)
        if asked is not None and (not asked.requestor) in answered:
            return Ending(Outcome.RELEASED, Party.of(asked.requestor), None, closed_by)
    if close is not None:
        return Ending(Outcome.TRANSPORT_DROPPED, close.by, close.left_state, closed_by)
    return Ending(Outcome.OPEN_AT_END, None, fsm.requestor.state, None)
