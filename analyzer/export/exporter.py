"""Which data sets are written, and how each one finds its message.

Two streams meet here. The payload tap (the observer's framer, see :mod:`.tap`) gives, per
connection and direction, each PDV's header, bytes and losses: data set fragments are
spooled to disk as they pass (:class:`~analyzer.export.spool.Spool`), one spool per data
set, closed at its last fragment. The model (the store the pipeline fills) gives each
exchange with its messages once the response is in: a message is matched with its spool by
connection, direction, presentation context, data set length and the time and frame of its
last fragment, all of which the observer and the tap report alike. Then the file is written:
File Meta Information (:mod:`.meta`), the data set bytes as they were on the wire, under a
name from :mod:`.names`, and a manifest line.

Never silently corrupt: a data set with lost bytes, cut by the end of the capture or by a
broken stream, or whose command was never seen is not written as a ``.dcm``; with
``partial`` it is written as ``.partial.dcm`` and the manifest lists the missing ranges.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from analyzer import redact
from analyzer.filter import Filter, StreamFilter
from analyzer.model import Association, DimseMessage, Exchange
from analyzer.redact.uids import UidMap
from analyzer.store import Change, ChangeKind, Store
from dissectors.dimse.assembly import COMMAND_SET_LIMIT
from dissectors.dimse.commands import CommandField, CommandSet, decode_command_set

from .deidentify import deidentify
from .meta import file_meta, valid_uid
from .names import OutputFolder, base_name
from .spool import Spool

#: Finished data sets held per direction while their exchange is not in the model yet (an
#: asynchronous operations window); beyond, the oldest is dropped and counted.
MAX_WAITING = 256

_STORE_RQ = CommandField.C_STORE_RQ
_PENDING = frozenset({0xFF00, 0xFF01})


@dataclass(frozen=True, slots=True)
class Selection:
    """What to write. Empty sets select everything."""

    sop_classes: frozenset[str] = frozenset()
    associations: frozenset[int] = frozenset()
    include_queries: bool = False
    """Also C-FIND/C-GET/C-MOVE identifiers and N-service data sets (not only C-STORE)."""
    partial: bool = False
    """Write incomplete data sets as ``<uid>.partial.dcm`` instead of leaving them out."""
    filter: Filter | None = None
    """Only the associations that match, as known when the data set's exchange ends."""


@dataclass(slots=True)
class Counts:
    """What an export did."""

    written: int = 0
    partial: int = 0
    left_out_incomplete: int = 0
    unmatched: int = 0
    bytes: int = 0
    files: list[str] = field(default_factory=list)


class _Direction:
    __slots__ = ("command", "commands", "current", "data", "done", "open")

    def __init__(self) -> None:
        self.open: dict[int, Spool] = {}
        self.current: Spool | None = None
        self.data = False  # the current PDV is the last fragment of its data set
        self.done: deque[Spool] = deque()
        # The latest command set per context, and whether its last fragment was seen: the
        # pending responses (C-FIND, C-GET, C-MOVE) are not kept by the model, so their data
        # sets are named from their own command set.
        self.commands: dict[int, tuple[bytearray, bool]] = {}
        self.command: bytearray | None = None  # the command set the current PDV adds to


Manifest = Callable[[dict[str, Any]], None]


class Exporter:
    """Writes the selected data sets of a capture into ``folder``; ``manifest`` is given one
    record per data set considered (written or not)."""

    def __init__(
        self,
        folder: OutputFolder,
        store: Store,
        selection: Selection = Selection(),
        manifest: Manifest | None = None,
    ) -> None:
        self.folder = folder
        self.store = store
        self.selection = selection
        self._manifest = manifest
        self._sides: dict[tuple[int, bool], _Direction] = {}
        self.counts = Counts()
        # Under --redact phi: data sets de-identified in place, UIDs replaced consistently
        # (file names and the manifest included).
        self._uids = UidMap() if redact.phi_redacted() else None
        self._stream = StreamFilter(store, selection.filter) if selection.filter else None
        self._matches = True  # whether the exchange being ended is in a matching association
        self._unsubscribe = store.subscribe(self._changed)

    # --- the payload tap side ----------------------------------------------------------

    def _side(self, connection: int, from_requestor: bool) -> _Direction:
        key = (connection, from_requestor)
        side = self._sides.get(key)
        if side is None:
            side = self._sides[key] = _Direction()
        return side

    def pdv_start(
        self, connection: int, from_requestor: bool, context_id: int, control: int
    ) -> None:
        """A PDV header: a data set fragment (control bit 0 clear) goes to its spool."""
        side = self._side(connection, from_requestor)
        if control & 1:
            side.current = None
            side.data = bool(control & 2)
            raw, complete = side.commands.get(context_id, (bytearray(), True))
            if complete:
                raw = bytearray()
            side.commands[context_id] = (raw, False)
            side.command = raw if self.selection.include_queries else None
            return
        side.command = None
        spool = side.open.get(context_id)
        if spool is None:
            spool = side.open[context_id] = Spool(self.folder.spool(), context_id)
            raw, complete = side.commands.get(context_id, (bytearray(), False))
            spool.command = bytes(raw) if complete else None
        side.current = spool
        side.data = bool(control & 2)  # the last fragment of its data set

    def pdu_start(self, connection: int, from_requestor: bool, offset: int) -> None:
        pass

    def control_pdu(
        self, connection: int, from_requestor: bool, pdu_type: int, body: bytes, missing: int
    ) -> None:
        pass

    def unparsed(self, connection: int, from_requestor: bool, offset: int, size: int) -> None:
        pass

    def pdv_data(
        self, connection: int, from_requestor: bool, data: memoryview, offset: int
    ) -> None:
        side = self._sides.get((connection, from_requestor))
        if side is None:
            return
        if side.current is not None:
            side.current.write(data)
        elif side.command is not None and len(side.command) + len(data) <= COMMAND_SET_LIMIT:
            side.command += data

    def pdv_lost(self, connection: int, from_requestor: bool, size: int) -> None:
        side = self._sides.get((connection, from_requestor))
        if side is not None and side.current is not None:
            side.current.lost(size)

    def pdv_end(self, connection: int, from_requestor: bool, ts: int, frame: int | None) -> None:
        side = self._sides.get((connection, from_requestor))
        if side is None:
            return
        if side.current is None:
            if side.command is not None and side.data:  # a command set's last fragment
                for ctx, (raw, _) in side.commands.items():
                    if raw is side.command:
                        side.commands[ctx] = (raw, True)
            side.command = None
            return
        spool, last = side.current, side.data
        side.current = None
        if last:
            del side.open[spool.context_id]
            spool.ended(ts, frame)
            if not self._pending_response(connection, from_requestor, spool):
                self._wait(side, spool)

    def broken(self, connection: int, from_requestor: bool, ts: int, frame: int | None) -> None:
        """The stream lost its PDU boundaries (or ended): every data set in flight on this
        direction is cut where it is."""
        side = self._sides.get((connection, from_requestor))
        if side is None:
            return
        side.current = None
        for spool in side.open.values():
            spool.cut = True
            spool.ended(ts, frame)
            self._wait(side, spool)
        side.open.clear()

    def _pending_response(self, connection: int, from_requestor: bool, spool: Spool) -> bool:
        """Write the data set of a pending C-FIND/C-GET/C-MOVE response now (the model keeps
        no pending response to match it with); False if it is not one."""
        if not self.selection.include_queries or spool.command is None:
            return False
        cmd, _ = decode_command_set(spool.command)
        if cmd is None or not cmd.is_response or cmd.status not in _PENDING:
            return False
        a = next((a for a in self.store.associations() if a.connection == connection), None)
        if a is None:
            return False
        if not self._selected(a, cmd, None):
            spool.close()
            return True
        try:
            self._record(a, None, cmd, from_requestor, spool, complete=spool.complete)
        finally:
            spool.close()
        return True

    def _wait(self, side: _Direction, spool: Spool) -> None:
        side.done.append(spool)
        while len(side.done) > MAX_WAITING:
            side.done.popleft().close()
            self.counts.unmatched += 1

    # --- the model side ----------------------------------------------------------------

    def _changed(self, change: Change) -> None:
        # Every change feeds the filter, so that what it knows of an association (its
        # exchanges and findings so far) is current when one of its exchanges ends.
        self._matches = self._stream.accepts(change) if self._stream is not None else True
        if change.kind == ChangeKind.EXCHANGE and isinstance(change.record, Exchange):
            self._exchange(change.record)

    def _exchange(self, e: Exchange) -> None:
        a = self.store.association(e.association)
        if a is None:
            return
        for msg in (e.request, e.final):
            if msg is not None and msg.dataset is not None:
                spool = self._claim(a, msg)
                if spool is not None:
                    try:
                        self._consider(a, e, msg, spool)
                    finally:
                        spool.close()

    def _claim(self, a: Association, msg: DimseMessage) -> Spool | None:
        """The spool of ``msg``'s data set, taken out of the waiting ones."""
        side = self._sides.get((a.connection, msg.from_requestor))
        if side is None or msg.dataset is None:
            return None
        length = msg.dataset.length
        for spool in side.done:
            if (
                spool.context_id == msg.context_id
                and spool.end_ts == msg.end_ts
                and spool.end_frame == msg.end_frame
                and spool.length == length
            ):
                side.done.remove(spool)
                return spool
        if not msg.complete:  # cut by the end of the capture: still open
            left = side.open.pop(msg.context_id, None)
            if left is not None:
                left.cut = True
            return left
        return None

    def _selected(self, a: Association, cmd: CommandSet, sop_class: str | None) -> bool:
        sel = self.selection
        if not self._matches or (sel.associations and a.id not in sel.associations):
            return False
        if cmd.command_field != _STORE_RQ and not sel.include_queries:
            return False
        return not sel.sop_classes or (cmd.sop_class_uid or sop_class) in sel.sop_classes

    def _consider(self, a: Association, e: Exchange, msg: DimseMessage, spool: Spool) -> None:
        if not self._selected(a, msg.command, e.sop_class):
            return
        info = msg.dataset
        assert info is not None
        complete = msg.complete and info.complete and spool.complete
        self._record(
            a,
            e,
            msg.command,
            msg.from_requestor,
            spool,
            complete=complete,
            transfer_syntax=info.transfer_syntax,
            guessed=info.sniffed,
            frames=(msg.frame, msg.end_frame),
        )

    def _record(
        self,
        a: Association,
        e: Exchange | None,
        cmd: CommandSet,
        from_requestor: bool,
        spool: Spool,
        *,
        complete: bool,
        transfer_syntax: str | None = None,
        guessed: bool = False,
        frames: tuple[int | None, int | None] | None = None,
    ) -> None:
        """Write one data set (or say why not) and its manifest line."""
        if transfer_syntax is None:
            context = a.context(spool.context_id)
            transfer_syntax = context.accepted_transfer_syntax if context else None
        store = cmd.command_field == _STORE_RQ
        record: dict[str, Any] = {
            "type": "dataset",
            "file": None,
            "association": a.id,
            "exchange": e.index if e is not None else None,
            "message_id": cmd.message_id
            if cmd.message_id is not None
            else cmd.message_id_being_responded_to,
            "command": cmd.label,
            "from": "requestor" if from_requestor else "acceptor",
            "sop_class": cmd.sop_class_uid,
            "sop_instance": self._uid(
                cmd.affected_sop_instance_uid or cmd.requested_sop_instance_uid
            ),
            "transfer_syntax": transfer_syntax,
            "transfer_syntax_guessed": guessed,
            "bytes": spool.length,
            "status": (e.status if store and e is not None else cmd.status),
            "complete": complete,
            "missing": [list(r) for r in spool.missing],
            "missing_end": spool.cut,
            "frames": list(frames) if frames else [None, spool.end_frame],
        }
        if not complete and not self.selection.partial:
            self.counts.left_out_incomplete += 1
            record["left_out"] = "incomplete (use --partial to write it as .partial.dcm)"
        elif transfer_syntax is None:
            self.counts.left_out_incomplete += 1
            record["left_out"] = "transfer syntax unknown"
        elif self._uids is not None and (why := deidentify(spool, transfer_syntax, self._uids)):
            self.counts.left_out_incomplete += 1
            record["left_out"] = f"--redact phi: {why}"
        else:
            record["file"] = self._write(a, cmd, from_requestor, spool, transfer_syntax, complete)
        if self._manifest is not None:
            self._manifest(record)

    def _write(
        self,
        a: Association,
        cmd: CommandSet,
        from_requestor: bool,
        spool: Spool,
        transfer_syntax: str,
        complete: bool,
    ) -> str:
        instance = cmd.affected_sop_instance_uid or cmd.requested_sop_instance_uid
        number = cmd.message_id if cmd.message_id is not None else cmd.message_id_being_responded_to
        if cmd.command_field == _STORE_RQ:
            stem = base_name(self._uid(instance), a.id, number)
        else:
            what = cmd.label.replace(" ", "-")
            stem = f"association-{a.id}-message-{number}-{what}"
        # The sender's AE title: the requestor's is the calling one (a C-GET's C-STORE comes
        # from the acceptor, the called one).
        ae = a.calling_ae if from_requestor else a.called_ae
        source_ae = ae.decode("ascii", "replace").strip() if ae else None
        instance = self._uid(instance)
        head = file_meta(
            sop_class=cmd.sop_class_uid,
            sop_instance=instance if valid_uid(instance) else None,
            transfer_syntax=transfer_syntax,
            source_ae=source_ae,
        )
        name, out = self.folder.create(stem, partial=not complete)
        with out:
            out.write(head)
            spool.copy_to(out)
        self.counts.files.append(name)
        self.counts.bytes += spool.length
        if complete:
            self.counts.written += 1
        else:
            self.counts.partial += 1
        return name

    def _uid(self, uid: str | None) -> str | None:
        """A UID as the export writes it (its replacement under --redact phi)."""
        if uid is None or self._uids is None:
            return uid
        return self._uids.replace(uid)

    def finish(self) -> None:
        """The capture ended: drop what never met its message."""
        self._unsubscribe()
        for side in self._sides.values():
            for spool in [*side.done, *side.open.values()]:
                spool.close()
                self.counts.unmatched += 1
            side.done.clear()
            side.open.clear()
