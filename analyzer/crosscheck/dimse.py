"""The DIMSE fields: every request and final response of dicomtap's
:class:`~analyzer.model.Exchange` records against the command sets tshark decoded, and the
pending responses and cancels dicomtap counts per exchange."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from analyzer.model import DimseMessage, Exchange
from dissectors.dimse import PENDING_STATUSES, CommandField

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
        return bool((self.command.command_field or 0) & 0x8000)

    @property
    def answers(self) -> int | None:
        c = self.command
        return c.message_id_being_responded_to if self.is_response else c.message_id


def compare_dimse(
    checker: Checker,
    exchanges: Sequence[Exchange],
    contents: dict[int, tuple[PduContent, ...]],
    rows: dict[int, FrameRow],
) -> None:
    theirs = [
        _TheirCommand(frame, rows[frame].src == checker.client, command)
        for frame in sorted(contents)
        if frame in rows
        for pdu in contents[frame]
        for command in pdu.commands
    ]

    def match(msg: DimseMessage) -> _TheirCommand | None:
        start = msg.frame or 0
        end = msg.end_frame or start
        cmd = msg.command
        key = cmd.message_id_being_responded_to if cmd.is_response else cmd.message_id
        window = [
            t
            for t in theirs
            if not t.used and t.from_requestor == msg.from_requestor and start <= t.frame <= end
        ]
        pending = cmd.status in PENDING_STATUSES

        def score(t: _TheirCommand) -> tuple[bool, bool, bool]:
            c = t.command
            return (t.answers == key, c.command_field == cmd.command_field,
                    (c.status in PENDING_STATUSES) == pending)  # fmt: skip

        if window:
            best = max(window, key=score)  # the first of the best, in frame order
            best.used = True
            return best
        return None

    for exchange in exchanges:
        for msg in (exchange.request, exchange.final):
            if msg is None:
                continue
            cmd = msg.command
            key = cmd.message_id_being_responded_to if cmd.is_response else cmd.message_id
            name = f"{cmd.label} (message ID {key})"
            frame = msg.end_frame or msg.frame or 0
            their = match(msg)
            if their is None:
                checker.differ(
                    frame,
                    msg.from_requestor,
                    name,
                    "command set",
                    "no command set",
                    start=msg.frame,
                )
                continue
            tc, f, side = their.command, their.frame, msg.from_requestor
            checker.field(
                f, side, f"{name} command field", cmd.command_field, tc.command_field,
                start=msg.frame, show=lambda v: command_text(v if isinstance(v, int) else None),
                dimse=True,
            )  # fmt: skip
            if cmd.is_response:
                checker.field(
                    f, side, f"{name} message ID being responded to",
                    cmd.message_id_being_responded_to, tc.message_id_being_responded_to,
                    start=msg.frame, dimse=True,
                )  # fmt: skip
                checker.field(
                    f, side, f"{name} status", cmd.status, tc.status, start=msg.frame,
                    show=lambda v: status_text(v if isinstance(v, int) else None), dimse=True,
                )  # fmt: skip
            else:
                checker.field(
                    f, side, f"{name} message ID", cmd.message_id, tc.message_id,
                    start=msg.frame, dimse=True,
                )  # fmt: skip
            if cmd.sop_class_uid is not None or tc.sop_class_uid is not None:
                checker.field(
                    f, side, f"{name} SOP class UID", cmd.sop_class_uid, tc.sop_class_uid,
                    start=msg.frame, dimse=True,
                )  # fmt: skip

    # Pending responses and cancels: dicomtap counts them per exchange.
    for exchange in exchanges:
        first = exchange.request.frame if exchange.request else None
        last = exchange.final.frame if exchange.final else None
        lo, hi = first or 0, last if last is not None else INF
        responder = not exchange.from_requestor
        pending = [
            t
            for t in theirs
            if not t.used
            and t.is_response
            and t.from_requestor == responder
            and t.command.status in PENDING_STATUSES
            and t.answers == exchange.message_id
            and lo <= t.frame <= hi
        ]
        cancels = [
            t
            for t in theirs
            if not t.used
            and t.command.command_field == CommandField.C_CANCEL_RQ
            and t.from_requestor == exchange.from_requestor
            and t.answers == exchange.message_id
            and lo <= t.frame <= hi
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
                "sent" if exchange.cancelled else "(none)",
                "sent" if cancels else "(none)", dimse=True,
            )  # fmt: skip

    for t in theirs:
        if not t.used:
            checker.differ(
                t.frame,
                t.from_requestor,
                f"{command_text(t.command.command_field)} (message ID {t.answers})",
                "no such message",
                "command set",
            )
