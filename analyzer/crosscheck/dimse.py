"""The DIMSE fields: every request and final response of dicomtap's
:class:`~analyzer.model.Exchange` records against the command sets tshark decoded, and the
pending responses and cancels dicomtap counts per exchange."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analyzer.model import DimseMessage, Exchange
from dissectors.dimse import PENDING_STATUSES, CommandField, is_response

from .checker import Checker, command_text, status_text
from .hazards import INF
from .records import Command, FrameRow, PduContent

__all__ = ["compare_dimse"]


@dataclass(slots=True)
class _TheirCommand:
    frame: int
    from_requestor: bool
    command: Command
    used: bool = False

    @property
    def is_response(self) -> bool:
        return is_response(self.command.command_field or 0)

    @property
    def answers(self) -> int | None:
        """The message ID a request carries, or the one a response or C-CANCEL-RQ names."""
        c = self.command
        if self.is_response or c.command_field == CommandField.C_CANCEL_RQ:
            return c.message_id_being_responded_to
        return c.message_id


class _Theirs:
    """tshark's command sets of one association, indexed by side and frame, and by the
    message ID they carry or answer."""

    def __init__(self, commands: Sequence[_TheirCommand]) -> None:
        self.all = commands
        self._by_side: dict[bool, list[_TheirCommand]] = {True: [], False: []}
        self._by_id: dict[tuple[bool, int | None], list[_TheirCommand]] = defaultdict(list)
        for t in commands:  # in frame order
            self._by_side[t.from_requestor].append(t)
            self._by_id[t.from_requestor, t.answers].append(t)
        self._frames = {side: [t.frame for t in ts] for side, ts in self._by_side.items()}

    def sent(self, from_requestor: bool, first: int, last: int) -> list[_TheirCommand]:
        """Those not matched yet that one side sent in frames ``first``..``last``."""
        frames = self._frames[from_requestor]
        lo, hi = bisect_left(frames, first), bisect_right(frames, last)
        return [t for t in self._by_side[from_requestor][lo:hi] if not t.used]

    def answering(
        self, from_requestor: bool, message_id: int | None, first: int, last: int
    ) -> list[_TheirCommand]:
        """Those not matched yet that one side sent naming ``message_id``, in the frames."""
        return [
            t
            for t in self._by_id.get((from_requestor, message_id), ())
            if not t.used and first <= t.frame <= last
        ]


def _match(theirs: _Theirs, msg: DimseMessage) -> _TheirCommand | None:
    """tshark's command set for one of dicomtap's messages: sent by the same side within
    the message's frames, best with the same message ID, command field and pendingness."""
    cmd = msg.command
    key = cmd.message_id_being_responded_to if cmd.is_response else cmd.message_id
    pending = cmd.status in PENDING_STATUSES
    start = msg.frame or 0
    window = theirs.sent(msg.from_requestor, start, msg.end_frame or start)

    def score(t: _TheirCommand) -> tuple[bool, bool, bool]:
        c = t.command
        return (t.answers == key, c.command_field == cmd.command_field,
                (c.status in PENDING_STATUSES) == pending)  # fmt: skip

    if not window:
        return None
    best = max(window, key=score)  # the first of the best, in frame order
    best.used = True
    return best


def _message(checker: Checker, theirs: _Theirs, msg: DimseMessage) -> None:
    cmd = msg.command
    key = cmd.message_id_being_responded_to if cmd.is_response else cmd.message_id
    name = f"{cmd.label} (message ID {key})"
    their = _match(theirs, msg)
    if their is None:
        frame = msg.end_frame or msg.frame or 0
        checker.differ(
            frame, msg.from_requestor, name, "command set", "no command set", start=msg.frame
        )
        return
    tc, side = their.command, msg.from_requestor

    def field(label: str, ours: int | str | None, theirs: int | str | None, **kw: Any) -> None:
        checker.field(their.frame, side, f"{name} {label}", ours, theirs, start=msg.frame,
                      dimse=True, **kw)  # fmt: skip

    field("command field", cmd.command_field, tc.command_field, show=_shown(command_text))
    if cmd.is_response:
        field(
            "message ID being responded to",
            cmd.message_id_being_responded_to,
            tc.message_id_being_responded_to,
        )
        field("status", cmd.status, tc.status, show=_shown(status_text))
    else:
        field("message ID", cmd.message_id, tc.message_id)
    if cmd.sop_class_uid is not None or tc.sop_class_uid is not None:
        field("SOP class UID", cmd.sop_class_uid, tc.sop_class_uid)


def _shown(show: Callable[[int | None], str]) -> Callable[[object], str]:
    return lambda v: show(v if isinstance(v, int) else None)


def _counted(checker: Checker, theirs: _Theirs, exchange: Exchange) -> None:
    """The pending responses and the C-CANCEL-RQ dicomtap counts for one exchange."""
    first = exchange.request.frame if exchange.request else None
    last = exchange.final.frame if exchange.final else None
    lo, hi = first or 0, last if last is not None else INF
    responder = not exchange.from_requestor
    pending = [
        t
        for t in theirs.answering(responder, exchange.message_id, lo, hi)
        if t.is_response and t.command.status in PENDING_STATUSES
    ]
    cancels = [
        t
        for t in theirs.answering(exchange.from_requestor, exchange.message_id, lo, hi)
        if t.command.command_field == CommandField.C_CANCEL_RQ
    ]
    for t in (*pending, *cancels[:1]):
        t.used = True
    frame = last or (exchange.request.end_frame if exchange.request else None) or 0
    label = exchange.final.command.label if exchange.final else exchange.service
    if exchange.pending or pending:
        checker.field(
            frame, responder, f"{label} (message ID {exchange.message_id}) pending responses",
            exchange.pending, len(pending), dimse=True,
        )  # fmt: skip
    if exchange.cancelled or cancels:
        checker.field(
            frame, exchange.from_requestor,
            f"{exchange.service} (message ID {exchange.message_id}) C-CANCEL-RQ",
            "sent" if exchange.cancelled else "(none)", "sent" if cancels else "(none)",
            dimse=True,
        )  # fmt: skip


def compare_dimse(
    checker: Checker,
    exchanges: Sequence[Exchange],
    contents: Mapping[int, tuple[PduContent, ...]],
    rows: Mapping[int, FrameRow],
) -> None:
    """Compare every request and final response of ``exchanges`` with the command sets
    tshark decoded (``contents`` by frame, sides from ``rows``), then the pending
    responses and cancels; a command set tshark shows that none of them accounts for is a
    difference too."""
    theirs = _Theirs(
        [
            _TheirCommand(frame, rows[frame].src == checker.client, command)
            for frame in sorted(contents)
            if frame in rows
            for pdu in contents[frame]
            for command in pdu.commands
        ]
    )
    for exchange in exchanges:
        for msg in (exchange.request, exchange.final):
            if msg is not None:
                _message(checker, theirs, msg)
    for exchange in exchanges:
        _counted(checker, theirs, exchange)
    for t in theirs.all:
        if not t.used:
            checker.differ(
                t.frame,
                t.from_requestor,
                f"{command_text(t.command.command_field)} (message ID {t.answers})",
                "no such message",
                "command set",
            )
