"""Random conversations between two conforming PS3.8 peers, as a capture point sees them.

Each peer runs its own Upper Layer machine honestly: it sends only what its state allows,
reads what arrives in order, closes the connection only where the standard has it close
(AE-4, AR-3, AA-2, AA-3, after a close indication, or when ARTIM expires in Sta13). The
wire between them is two FIFO queues with a capture point in the middle: a PDU passes the
capture point after it was sent and before it is read. Every interleaving of sends, captures
and reads that the choices produce is one the capture could show.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import strategies as st

from dissectors import Outcome, Party
from dissectors.pdu import PduType
from dissectors.ul_fsm import (
    ABORTING_ACTIONS,
    RECEIVE_EVENT,
    SEND_EVENT,
    TRANSITIONS,
    Action,
    Event,
    State,
    next_state,
)

FIN = 0  # a close travels the wire like a PDU, after what was sent before it

_SENDABLE: dict[State, tuple[int, ...]] = {
    State.STA3: (PduType.A_ASSOCIATE_AC, PduType.A_ASSOCIATE_RJ, PduType.A_ABORT),
    State.STA4: (PduType.A_ASSOCIATE_RQ,),
    State.STA5: (PduType.A_ABORT,),
    State.STA6: (PduType.P_DATA_TF, PduType.A_RELEASE_RQ, PduType.A_ABORT),
    State.STA7: (PduType.A_ABORT,),
    State.STA8: (PduType.P_DATA_TF, PduType.A_RELEASE_RP, PduType.A_ABORT),
    State.STA9: (PduType.A_RELEASE_RP, PduType.A_ABORT),
    State.STA10: (PduType.A_ABORT,),
    State.STA11: (PduType.A_ABORT,),
    State.STA12: (PduType.A_RELEASE_RP, PduType.A_ABORT),
}
# Actions after which the AE closes the transport connection.
_CLOSING = {
    Action.AE_4,
    Action.AR_3,
    Action.AA_2,
    Action.AA_3,
    Action.AA_4,
    Action.AA_5,
    Action.AR_5,
}


@dataclass
class _Peer:
    requestor: bool
    state: State
    closed: bool = False
    must_close: bool = False
    collided: bool = False


@dataclass
class Conversation:
    """What the capture saw (``(kind, from_requestor)``, kind a PDU type or :data:`FIN`),
    and what really happened, to check the observer's verdict against."""

    wire: list[tuple[int, bool]] = field(default_factory=list)
    sent: list[tuple[int, bool]] = field(default_factory=list)
    collision: bool = False

    def expected(self) -> tuple[Outcome, Party | None]:
        """The outcome and the party responsible, from what the peers did."""
        captured = [(k, r) for k, r in self.wire]
        for kind, by in captured:
            if kind == PduType.A_ASSOCIATE_RJ:
                return Outcome.REJECTED, Party.of(by)
        for kind, by in captured:
            if kind == PduType.A_ABORT:
                return Outcome.ABORTED, Party.of(by)
        answered = {by for kind, by in captured if kind == PduType.A_RELEASE_RP}
        if self.collision:
            if answered == {True, False}:
                return Outcome.RELEASE_COLLISION, None
        else:
            asked = [by for kind, by in captured if kind == PduType.A_RELEASE_RQ]
            if asked and (not asked[0]) in answered:
                return Outcome.RELEASED, Party.of(asked[0])
        closes = [by for kind, by in captured if kind == FIN]
        if closes:
            return Outcome.TRANSPORT_DROPPED, Party.of(closes[0])
        return Outcome.OPEN_AT_END, None


@st.composite
def conversations(draw: st.DrawFn, max_steps: int = 120) -> Conversation:
    """A conversation of two conforming peers, captured in one of its possible orders."""
    peers = {True: _Peer(True, State.STA4), False: _Peer(False, State.STA2)}
    # Most conversations neither reject nor abort (a uniform choice among the moves would
    # abort nearly every one at once); moving bytes along is more likely than anything.
    rejects = draw(st.integers(0, 3)) == 0
    aborts = draw(st.integers(0, 3)) == 0
    # Per direction (keyed by the sender): sent but not captured, captured but not read.
    uncaptured: dict[bool, list[int]] = {True: [], False: []}
    unread: dict[bool, list[int]] = {True: [], False: []}
    conv = Conversation()
    for _ in range(max_steps):
        moves: list[tuple[str, bool, int]] = []
        for r, peer in peers.items():
            if peer.closed:
                continue
            if peer.must_close or peer.state in (State.STA1, State.STA13):
                moves.append(("close", r, FIN))
            if not peer.must_close:
                for kind in _SENDABLE.get(peer.state, ()):
                    if (kind != PduType.A_ABORT or aborts) and (
                        kind != PduType.A_ASSOCIATE_RJ or rejects
                    ):
                        moves += [("send", r, kind)] * (4 if kind == PduType.P_DATA_TF else 1)
            if unread[not r]:
                moves += [("read", r, 0)] * 3
            if uncaptured[r]:
                moves += [("capture", r, 0)] * 3
        for r in (True, False):  # what a closed peer sent is still on its way
            if peers[r].closed and uncaptured[r]:
                moves.append(("capture", r, 0))
        if not moves:
            break
        move, r, kind = draw(st.sampled_from(moves))
        peer = peers[r]
        if move == "send":
            action = TRANSITIONS[(SEND_EVENT[kind], peer.state)]
            peer.state = next_state(action, requestor=r)
            uncaptured[r].append(kind)
            conv.sent.append((kind, r))
        elif move == "close":
            peer.closed = True
            uncaptured[r].append(FIN)
        elif move == "capture":
            item = uncaptured[r].pop(0)
            conv.wire.append((item, r))
            unread[r].append(item)
        else:  # read what the other peer sent
            item = unread[not r].pop(0)
            if peer.state == State.STA1:
                continue  # the transport is closed: nothing is read any more
            event = Event.EVT17 if item == FIN else RECEIVE_EVENT[item]
            taken = TRANSITIONS.get((event, peer.state))
            assert taken is not None and taken not in ABORTING_ACTIONS, (
                f"a conforming peer drew {taken} for {event.label} in {peer.state.label}"
            )
            if taken == Action.AR_8:
                conv.collision = True
            peer.state = next_state(taken, requestor=r)
            if taken in _CLOSING:
                peer.must_close = True
    return conv
