"""DIMSE message assembly from PDV fragments (PS3.8 Annex E, PS3.7 §6.3.1).

One :class:`MessageAssembler` per direction. PDVs are grouped by presentation context; the
message control header says whether a fragment belongs to the command set (bit 0) and
whether it is the last of it (bit 1). The command set is decoded as soon as its last
fragment arrives; the data set is counted, and its start kept, as it streams by.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dissectors.pdu.items import Defect

from .commands import CommandSet, decode_command_set
from .dataset import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    DataSetCollector,
    DataSetInfo,
)

_TS_WORDS = {
    IMPLICIT_VR_LITTLE_ENDIAN: "Implicit VR Little Endian",
    EXPLICIT_VR_LITTLE_ENDIAN: "Explicit VR Little Endian",
    EXPLICIT_VR_BIG_ENDIAN: "Explicit VR Big Endian",
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN: "Deflated Explicit VR Little Endian",
}

#: A command set larger than this is not plausible (they are a few hundred bytes).
COMMAND_SET_LIMIT = 1 << 16


@dataclass(frozen=True, slots=True)
class AssembledMessage:
    """One DIMSE message (command set, optional data set) and where it was seen."""

    context_id: int
    command: CommandSet
    dataset: DataSetInfo | None
    ts: int
    frame: int | None
    end_ts: int
    end_frame: int | None
    complete: bool


@dataclass(frozen=True, slots=True)
class AssemblyProblem:
    """A fragment sequence that breaks PS3.8 Annex E or PS3.7 §6.3.1."""

    code: str
    text: str
    context_id: int
    ts: int
    frame: int | None


class _Partial:
    __slots__ = ("command", "command_bytes", "context_id", "dataset", "frame", "lost", "ts")

    def __init__(self, context_id: int, ts: int, frame: int | None) -> None:
        self.context_id = context_id
        self.command_bytes = bytearray()
        self.command: CommandSet | None = None
        self.dataset: DataSetCollector | None = None
        self.ts = ts
        self.frame = frame
        self.lost = False


class MessageAssembler:
    """Builds DIMSE messages for one direction of an association.

    ``transfer_syntax_of`` gives the accepted transfer syntax of a presentation context, or
    None when it is unknown (mid-stream capture); ``keep`` is how many bytes of each data set
    to keep for display.
    """

    def __init__(self, transfer_syntax_of: Callable[[int], str | None], keep: int) -> None:
        self._ts_of = transfer_syntax_of
        self._keep = keep
        self._partials: dict[int, _Partial] = {}
        self._current: _Partial | None = None
        self._is_command = False
        self._is_last = False
        self.messages: list[AssembledMessage] = []
        self.problems: list[AssemblyProblem] = []
        # Bytes were lost since the last command set that decoded whole: what looks odd
        # until the next one is most likely the loss, not the sender.
        self._damaged = False

    def pdv_start(self, context_id: int, control: int, ts: int, frame: int | None) -> None:
        """A PDV begins; its data follows through :meth:`pdv_data`."""
        partial = self._partials.get(context_id)
        is_command = bool(control & 0x01)
        if partial is None:
            if self._partials:
                other = next(iter(self._partials))
                self.problems.append(
                    AssemblyProblem(
                        "interleaved-messages",
                        f"a message on context {context_id} starts while the message on "
                        f"context {other} is not finished (PS3.8 Annex E forbids interleaving)",
                        context_id,
                        ts,
                        frame,
                    )
                )
            partial = _Partial(context_id, ts, frame)
            self._partials[context_id] = partial
            if not is_command and not self._damaged:
                self.problems.append(
                    AssemblyProblem(
                        "dataset-before-command",
                        f"a data set fragment on context {context_id} arrives with no command set "
                        "before it",
                        context_id,
                        ts,
                        frame,
                    )
                )
        elif is_command and partial.command is not None:
            self.problems.append(
                AssemblyProblem(
                    "command-after-command",
                    f"a new command set on context {context_id} starts before the data set of "
                    f"the previous {partial.command.label} arrived",
                    context_id,
                    ts,
                    frame,
                )
            )
            self._emit(partial, ts, frame, complete=False)
            partial = _Partial(context_id, ts, frame)
            self._partials[context_id] = partial
        elif not is_command and partial.command is None and partial.command_bytes:
            self.problems.append(
                AssemblyProblem(
                    "dataset-before-command-end",
                    f"a data set fragment on context {context_id} arrives before the last "
                    "command fragment",
                    context_id,
                    ts,
                    frame,
                )
            )
        if not is_command and partial.dataset is None:
            partial.dataset = DataSetCollector(self._ts_of(context_id), self._keep)
        self._current = partial
        self._is_command = is_command
        self._is_last = bool(control & 0x02)

    def pdv_data(self, data: memoryview) -> None:
        """Bytes of the current PDV (any number of calls)."""
        partial = self._current
        if partial is None:
            return
        if self._is_command:
            if len(partial.command_bytes) + len(data) > COMMAND_SET_LIMIT:
                partial.lost = True
                return
            partial.command_bytes += data
        elif partial.dataset is not None:
            partial.dataset.add(data)

    def pdv_lost(self, size: int) -> None:
        """Bytes of the current PDV were missing from the capture."""
        partial = self._current
        if partial is None:
            return
        partial.lost = True
        self._damaged = True
        if not self._is_command and partial.dataset is not None:
            partial.dataset.lost(size)

    def pdv_end(self, ts: int, frame: int | None) -> None:
        """The current PDV ended at ``ts``/``frame``."""
        partial = self._current
        self._current = None
        if partial is None or not self._is_last:
            return
        if self._is_command:
            command, defects = decode_command_set(bytes(partial.command_bytes))
            partial.command_bytes = bytearray()
            if partial.lost:
                defects = []  # bytes of it are missing from the capture: not the sender's fault
            else:
                self._damaged = False
            if command is None:
                self._report_defects(defects, partial.context_id, ts, frame)
                del self._partials[partial.context_id]
                return
            if defects:
                self._report_defects(defects, partial.context_id, ts, frame)
            partial.command = command
            if command.has_dataset and partial.dataset is None:
                return  # the data set follows
            if not command.has_dataset and partial.dataset is not None:
                self.problems.append(
                    AssemblyProblem(
                        "unexpected-dataset",
                        f"{command.label} says no data set follows, but one was sent",
                        partial.context_id,
                        ts,
                        frame,
                    )
                )
        elif partial.command is None:
            # A data set whose command was never seen (capture began mid-message).
            del self._partials[partial.context_id]
            return
        self._emit(partial, ts, frame, complete=not partial.lost)

    def _report_defects(self, defects: list[Defect], ctx: int, ts: int, frame: int | None) -> None:
        for d in defects:
            code = (
                "command-set-foreign-element"
                if d.code == "foreign-element"
                else "malformed-command-set"
            )
            self.problems.append(
                AssemblyProblem(code, f"{d.text} (offset {d.offset})", ctx, ts, frame)
            )

    def _emit(self, partial: _Partial, ts: int, frame: int | None, *, complete: bool) -> None:
        self._partials.pop(partial.context_id, None)
        if partial.command is None:
            return
        dataset = partial.dataset.finish(complete) if partial.dataset is not None else None
        if dataset is not None and dataset.encoded_as is not None:
            found = _TS_WORDS.get(dataset.encoded_as, dataset.encoded_as)
            agreed = dataset.transfer_syntax or "?"
            self.problems.append(
                AssemblyProblem(
                    "dataset-encoding-mismatch",
                    f"the data set of {partial.command.label} on context {partial.context_id} is "
                    f"encoded as {found}, not with the negotiated {_TS_WORDS.get(agreed, agreed)}",
                    partial.context_id,
                    ts,
                    frame,
                )
            )
        self.messages.append(
            AssembledMessage(
                partial.context_id,
                partial.command,
                dataset,
                partial.ts,
                partial.frame,
                ts,
                frame,
                complete and (dataset is None or dataset.complete),
            )
        )

    def abandon_all(self, ts: int, frame: int | None) -> None:
        """The stream broke (gap beyond a PDU, desync, end): flush what is in flight."""
        self._damaged = True
        for partial in list(self._partials.values()):
            partial.lost = True
            if partial.command is None and partial.command_bytes:
                command, _ = decode_command_set(bytes(partial.command_bytes))
                partial.command = command
            self._emit(partial, ts, frame, complete=False)
        self._current = None
