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

from analyzer.model import Association, DimseMessage, Exchange
from analyzer.store import Change, ChangeKind, Store
from dissectors.dimse.commands import CommandField

from .meta import file_meta, valid_uid
from .names import OutputFolder, base_name
from .spool import Spool

#: Finished data sets held per direction while their exchange is not in the model yet (an
#: asynchronous operations window); beyond, the oldest is dropped and counted.
MAX_WAITING = 256

_STORE_RQ = CommandField.C_STORE_RQ


@dataclass(frozen=True, slots=True)
class Selection:
    """What to write. Empty sets select everything."""

    sop_classes: frozenset[str] = frozenset()
    associations: frozenset[int] = frozenset()
    include_queries: bool = False
    """Also C-FIND/C-GET/C-MOVE identifiers and N-service data sets (not only C-STORE)."""
    partial: bool = False
    """Write incomplete data sets as ``<uid>.partial.dcm`` instead of leaving them out."""


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
    __slots__ = ("current", "data", "done", "open")

    def __init__(self) -> None:
        self.open: dict[int, Spool] = {}
        self.current: Spool | None = None
        self.data = False  # the current PDV carries data set bytes
        self.done: deque[Spool] = deque()


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
            side.data = False
            return
        spool = side.open.get(context_id)
        if spool is None:
            spool = side.open[context_id] = Spool(self.folder.spool(), context_id)
        side.current = spool
        side.data = bool(control & 2)  # the last fragment of its data set

    def pdu_start(self, connection: int, from_requestor: bool, offset: int) -> None:
        pass

    def control_pdu(
        self, connection: int, from_requestor: bool, pdu_type: int, body: bytes
    ) -> None:
        pass

    def unparsed(self, connection: int, from_requestor: bool, offset: int, size: int) -> None:
        pass

    def pdv_data(
        self, connection: int, from_requestor: bool, data: memoryview, offset: int
    ) -> None:
        side = self._sides.get((connection, from_requestor))
        if side is not None and side.current is not None:
            side.current.write(data)

    def pdv_lost(self, connection: int, from_requestor: bool, size: int) -> None:
        side = self._sides.get((connection, from_requestor))
        if side is not None and side.current is not None:
            side.current.lost(size)

    def pdv_end(self, connection: int, from_requestor: bool, ts: int, frame: int | None) -> None:
        side = self._sides.get((connection, from_requestor))
        if side is None or side.current is None:
            return
        spool, last = side.current, side.data
        side.current = None
        if last:
            del side.open[spool.context_id]
            spool.ended(ts, frame)
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

    def _wait(self, side: _Direction, spool: Spool) -> None:
        side.done.append(spool)
        while len(side.done) > MAX_WAITING:
            side.done.popleft().close()
            self.counts.unmatched += 1

    # --- the model side ----------------------------------------------------------------

    def _changed(self, change: Change) -> None:
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

    def _selected(self, a: Association, e: Exchange, msg: DimseMessage) -> bool:
        sel = self.selection
        if sel.associations and a.id not in sel.associations:
            return False
        cmd = msg.command
        if cmd.command_field != _STORE_RQ and not sel.include_queries:
            return False
        return not sel.sop_classes or (cmd.sop_class_uid or e.sop_class) in sel.sop_classes

    def _consider(self, a: Association, e: Exchange, msg: DimseMessage, spool: Spool) -> None:
        if not self._selected(a, e, msg):
            return
        info = msg.dataset
        assert info is not None
        cmd = msg.command
        complete = msg.complete and info.complete and spool.complete
        record: dict[str, Any] = {
            "type": "dataset",
            "file": None,
            "association": a.id,
            "exchange": e.index,
            "message_id": cmd.message_id,
            "command": cmd.label,
            "from": "requestor" if msg.from_requestor else "acceptor",
            "sop_class": cmd.sop_class_uid,
            "sop_instance": cmd.affected_sop_instance_uid or cmd.requested_sop_instance_uid,
            "transfer_syntax": info.transfer_syntax,
            "transfer_syntax_guessed": info.sniffed,
            "bytes": spool.length,
            "status": e.status if cmd.command_field == _STORE_RQ else None,
            "complete": complete,
            "missing": [list(r) for r in spool.missing],
            "missing_end": spool.cut,
            "frames": [msg.frame, msg.end_frame],
        }
        if not complete and not self.selection.partial:
            self.counts.left_out_incomplete += 1
            record["left_out"] = "incomplete (use --partial to write it as .partial.dcm)"
        elif info.transfer_syntax is None:
            self.counts.left_out_incomplete += 1
            record["left_out"] = "transfer syntax unknown"
        else:
            record["file"] = self._write(a, msg, spool, info.transfer_syntax, complete)
        if self._manifest is not None:
            self._manifest(record)

    def _write(
        self, a: Association, msg: DimseMessage, spool: Spool, transfer_syntax: str, complete: bool
    ) -> str:
        cmd = msg.command
        instance = cmd.affected_sop_instance_uid or cmd.requested_sop_instance_uid
        if cmd.command_field == _STORE_RQ:
            stem = base_name(instance, a.id, cmd.message_id)
        else:
            what = cmd.label.replace(" ", "-")
            stem = f"association-{a.id}-message-{cmd.message_id}-{what}"
        # The sender's AE title: the requestor's is the calling one (a C-GET's C-STORE comes
        # from the acceptor, the called one).
        ae = a.calling_ae if msg.from_requestor else a.called_ae
        source_ae = ae.decode("ascii", "replace").strip() if ae else None
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

    def finish(self) -> None:
        """The capture ended: drop what never met its message."""
        self._unsubscribe()
        for side in self._sides.values():
            for spool in [*side.done, *side.open.values()]:
                spool.close()
                self.counts.unmatched += 1
            side.done.clear()
            side.open.clear()
