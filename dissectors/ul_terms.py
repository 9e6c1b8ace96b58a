"""The names PS3.8 §9.2 gives to the Upper Layer state machine: states (Table 9-1), events
(Table 9-2) and actions (Tables 9-6 to 9-9); and the parties to an association. The table
that joins them is in :mod:`dissectors.ul_fsm`."""

from __future__ import annotations

from enum import IntEnum, StrEnum


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


class Action(StrEnum):
    """State machine actions, PS3.8 Tables 9-6 to 9-9 (the value is the standard's name)."""

    AE_1 = "AE-1"
    """Issue TRANSPORT CONNECT request primitive to local transport service."""
    AE_2 = "AE-2"
    """Send A-ASSOCIATE-RQ PDU."""
    AE_3 = "AE-3"
    """Issue A-ASSOCIATE confirmation (accept) primitive."""
    AE_4 = "AE-4"
    """Issue A-ASSOCIATE confirmation (reject) primitive and close transport connection."""
    AE_5 = "AE-5"
    """Issue Transport connection response primitive; start ARTIM timer."""
    AE_6 = "AE-6"
    """Stop ARTIM timer; issue A-ASSOCIATE indication primitive (or reject it)."""
    AE_7 = "AE-7"
    """Send A-ASSOCIATE-AC PDU."""
    AE_8 = "AE-8"
    """Send A-ASSOCIATE-RJ PDU and start ARTIM timer."""
    DT_1 = "DT-1"
    """Send P-DATA-TF PDU."""
    DT_2 = "DT-2"
    """Send P-DATA indication primitive."""
    AR_1 = "AR-1"
    """Send A-RELEASE-RQ PDU."""
    AR_2 = "AR-2"
    """Issue A-RELEASE indication primitive."""
    AR_3 = "AR-3"
    """Issue A-RELEASE confirmation primitive and close transport connection."""
    AR_4 = "AR-4"
    """Issue A-RELEASE-RP PDU and start ARTIM timer."""
    AR_5 = "AR-5"
    """Stop ARTIM timer."""
    AR_6 = "AR-6"
    """Issue P-DATA indication."""
    AR_7 = "AR-7"
    """Issue P-DATA-TF PDU."""
    AR_8 = "AR-8"
    """Issue A-RELEASE indication (release collision)."""
    AR_9 = "AR-9"
    """Send A-RELEASE-RP PDU (release collision, requestor)."""
    AR_10 = "AR-10"
    """Issue A-RELEASE confirmation primitive (release collision, acceptor)."""
    AA_1 = "AA-1"
    """Send A-ABORT PDU (service-user source) and start (or restart) ARTIM timer."""
    AA_2 = "AA-2"
    """Stop ARTIM timer if running; close transport connection."""
    AA_3 = "AA-3"
    """Issue A-ABORT or A-P-ABORT indication and close transport connection."""
    AA_4 = "AA-4"
    """Issue A-P-ABORT indication primitive (the transport connection was lost)."""
    AA_5 = "AA-5"
    """Stop ARTIM timer."""
    AA_6 = "AA-6"
    """Ignore PDU."""
    AA_7 = "AA-7"
    """Send A-ABORT PDU."""
    AA_8 = "AA-8"
    """Send A-ABORT PDU (service-provider source), issue an A-P-ABORT indication, start ARTIM."""


class Party(StrEnum):
    """Who did something to an association: one of its two AEs, or someone between them."""

    REQUESTOR = "requestor"
    ACCEPTOR = "acceptor"
    THIRD_PARTY = "third-party"
    """A middlebox (the proxy) that wrote a PDU or closed the connection on its own."""

    @staticmethod
    def of(requestor: bool) -> Party:
        """The requestor or the acceptor."""
        return Party.REQUESTOR if requestor else Party.ACCEPTOR

    @staticmethod
    def sender(from_requestor: bool, injected: bool) -> Party:
        """Who wrote bytes going ``from_requestor``'s way: that side, or, when a middlebox
        ``injected`` them, a third party."""
        return Party.THIRD_PARTY if injected else Party.of(from_requestor)
