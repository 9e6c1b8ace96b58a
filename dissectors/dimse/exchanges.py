"""Pairing DIMSE requests with their responses (PS3.7 §9.1, §10.1, Annex C status rules).

A response names its request by Message ID Being Responded To (0000,0120); responses with a
Pending status (0xFF00, 0xFF01) are counted and the first non-pending one closes the
exchange. C-CANCEL-RQ names the request it cancels the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from .assembly import AssembledMessage
from .commands import PENDING_STATUSES, CommandField


@dataclass(frozen=True, slots=True)
class Exchange:
    """A request and what answered it.

    ``request`` is None when the capture began after the request was sent. ``final`` is None
    for an unanswered request. ``outstanding_before`` counts the other requests from the same
    side still unanswered when this one was sent (asynchronous operations). ``orphan``: the
    responses of a request that is not in the stream (sent before the capture began, or
    never seen): they are not an exchange of their own.
    """

    from_requestor: bool
    request: AssembledMessage | None
    final: AssembledMessage | None
    pending: int
    first_response_ts: int | None
    last_pending: AssembledMessage | None
    cancel: AssembledMessage | None
    outstanding_before: int
    orphan: bool = False

    @property
    def message_id(self) -> int | None:
        if self.request is not None:
            return self.request.command.message_id
        response = self.final or self.last_pending
        if response is not None:
            return response.command.message_id_being_responded_to
        return None


@dataclass(slots=True)
class _Open:
    request: AssembledMessage | None
    from_requestor: bool
    outstanding_before: int
    pending: int = 0
    first_response_ts: int | None = None
    last_pending: AssembledMessage | None = None
    cancel: AssembledMessage | None = None
    orphan: bool = False

    def close(self, final: AssembledMessage | None) -> Exchange:
        return Exchange(
            self.from_requestor,
            self.request,
            final,
            self.pending,
            self.first_response_ts,
            self.last_pending,
            self.cancel,
            self.outstanding_before,
            self.orphan,
        )


class ExchangeTracker:
    """Per association: open requests by (direction, message ID)."""

    def __init__(self) -> None:
        self._open: dict[tuple[bool, int], _Open] = {}
        self.problems: list[tuple[str, str, AssembledMessage]] = []

    def outstanding(self, from_requestor: bool) -> int:
        return sum(1 for d, _ in self._open if d == from_requestor)

    def message(self, msg: AssembledMessage, from_requestor: bool) -> Exchange | None:
        """Feed one message; return the exchange it completes, if any."""
        cmd = msg.command
        if cmd.command_field == CommandField.C_CANCEL_RQ:
            key = (from_requestor, cmd.message_id_being_responded_to or 0)
            target = self._open.get(key)
            if target is None:
                self.problems.append(
                    ("cancel-unknown-request", "C-CANCEL-RQ names no outstanding request", msg)
                )
            else:
                target.cancel = msg
            return None
        if not cmd.is_response:
            mid = cmd.message_id if cmd.message_id is not None else -1
            key = (from_requestor, mid)
            old = self._open.pop(key, None)
            if old is not None:
                self.problems.append(
                    (
                        "message-id-reused",
                        f"Message ID {mid} is reused while an earlier request with it is "
                        "still unanswered",
                        msg,
                    )
                )
            self._open[key] = _Open(msg, from_requestor, self.outstanding(from_requestor))
            return old.close(None) if old is not None else None
        key = (not from_requestor, cmd.message_id_being_responded_to or 0)
        entry = self._open.get(key)
        if entry is None:
            entry = _Open(None, not from_requestor, 0, orphan=True)
            if cmd.status in PENDING_STATUSES:
                self._open[key] = entry
        if entry.first_response_ts is None:
            entry.first_response_ts = msg.ts
        if cmd.status in PENDING_STATUSES:
            entry.pending += 1
            entry.last_pending = msg
            return None
        self._open.pop(key, None)
        return entry.close(msg)

    def finish(self) -> list[Exchange]:
        """The association ended: whatever is open was never answered."""
        done = [entry.close(None) for entry in self._open.values()]
        self._open.clear()
        return done
