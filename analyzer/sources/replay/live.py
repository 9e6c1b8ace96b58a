"""What the live peer has done so far, read from the events of the replay's own observer.

The replay decides nothing from bytes of its own parsing: the peer's A-ASSOCIATE-AC, its
requests and responses, its release and abort are the events the observer emits for the
live connection (the same events a capture gives), kept here for the player to wait on.
"""

from __future__ import annotations

from collections import Counter

from dissectors import DimseMessageObserved, DissectorEvent, PduObserved
from dissectors.dimse import PENDING_STATUSES, CommandSet
from dissectors.pdu import Abort, AssociateAc, AssociateRj, AssociateRq, ReleaseRp, ReleaseRq

__all__ = ["LiveState"]


class LiveState:
    """The peer's side of the live association (``requestor``: the replay is the requestor)."""

    def __init__(self, requestor: bool) -> None:
        self.requestor = requestor
        self.rq: AssociateRq | None = None
        self.answer: AssociateAc | AssociateRj | None = None
        self.requests: list[CommandSet] = []
        """The peer's requests (C-CANCEL-RQ included), in order."""
        self.finals: Counter[int] = Counter()
        """Final responses of the peer, by the Message ID they respond to."""
        self.pending = 0
        self.undefined = 0
        """PDUs of a type PS3.8 does not define."""
        self.release_rq = False
        self.release_rp = False
        self.abort: Abort | None = None

    def _peer(self, from_requestor: bool) -> bool:
        return from_requestor != self.requestor

    def handle(self, event: DissectorEvent) -> None:
        """One event of the live connection."""
        match event:
            case PduObserved(from_requestor=by_requestor, pdu_type=kind, pdu=None):
                if self._peer(by_requestor) and not 1 <= kind <= 7:
                    self.undefined += 1
            case PduObserved(from_requestor=by_requestor, pdu=pdu) if pdu is not None:
                if not self._peer(by_requestor):
                    return
                match pdu:
                    case AssociateRq() if self.rq is None:
                        self.rq = pdu
                    case AssociateAc() | AssociateRj() if self.answer is None:
                        self.answer = pdu
                    case ReleaseRq():
                        self.release_rq = True
                    case ReleaseRp():
                        self.release_rp = True
                    case Abort() if self.abort is None:
                        self.abort = pdu
                    case _:
                        pass
            case DimseMessageObserved(from_requestor=by_requestor, message=message):
                if not self._peer(by_requestor):
                    return
                cmd = message.command
                if not cmd.is_response:
                    self.requests.append(cmd)
                elif cmd.status in PENDING_STATUSES:
                    self.pending += 1
                elif cmd.message_id_being_responded_to is not None:
                    self.finals[cmd.message_id_being_responded_to] += 1
            case _:
                pass

    @property
    def accepted(self) -> AssociateAc | None:
        """The peer's A-ASSOCIATE-AC, when it accepted (requestor mode)."""
        return self.answer if isinstance(self.answer, AssociateAc) else None
