"""Where the PHI lies in each TCP stream, and what goes there instead.

Fed, per connection and direction, what the framer found (PDV headers, payload bytes with
their stream offsets, losses, control PDU bodies, bytes it could not frame), the
:class:`Locator` walks each command set and data set (:class:`~analyzer.redact.walk.DataSetWalker`)
as its fragments pass, across PDV, PDU and TCP segment boundaries, and turns each value to
replace into :class:`Edit` s in stream offsets: same-length replacement bytes for a PHI value,
or a run of zeros for what must go and cannot be rewritten in place (pixel data unless kept,
large private values, a deflated data set, bytes that cannot be parsed).

Only bytes that may still belong to a value being read are remembered (at most
:data:`~analyzer.redact.walk.VALUE_LIMIT` of a data set at a time): the locator streams.

A replacement must not hold a value it hides elsewhere: a pseudonym UID's drawn digits may
spell a date or a time of the capture, and a fixed word may too ("19000101000000" holds the
time "100000"). Which values are hidden is known only at the end of the capture, so
:meth:`Locator.settle` checks every replacement then, draws such UIDs again (everywhere
they were put) and blanks such words.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import ahocorasick_rs

from analyzer.redact.uids import UidMap
from analyzer.redact.values import replacement
from analyzer.redact.walk import PIXEL_TAGS, DataSetWalker, Element
from dissectors.dimse.dataset import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    sniff_transfer_syntax,
)
from dissectors.pdu.items import Defect, iter_items
from dissectors.pdu.pdus import AssociateAc, decode_cut_control_pdu

from .hosts import AeMap

_SNIFF = 16  # data set bytes looked at to guess its encoding when none was negotiated
_MOVE_DESTINATION, _MOVE_ORIGINATOR = 0x00000600, 0x00001030
_ASSOCIATE_RQ, _ASSOCIATE_AC = 1, 2
_USER_INFORMATION, _USER_IDENTITY_RQ, _USER_IDENTITY_AC = 0x50, 0x58, 0x59
_TITLES_END, _ITEMS_START = 36, 68  # in an A-ASSOCIATE-RQ/AC body


class Edit(NamedTuple):
    """Bytes to put at stream ``offset``: ``data``, or ``length`` zeros when it is None."""

    offset: int
    length: int
    data: bytes | None


@dataclass(slots=True)
class Tally:
    """What was replaced, zeroed and why (for the report and the file's comment)."""

    values: dict[str, int] = field(default_factory=dict)
    """Values replaced, by what they were (an attribute keyword or a PDU field)."""
    pixel_bytes: int = 0
    private_or_large_bytes: int = 0
    deflated_datasets: int = 0
    deflated_bytes: int = 0
    unparsed_bytes: int = 0
    """Bytes zeroed because they could not be parsed (a broken encoding, unframed bytes)."""

    def value(self, what: str) -> None:
        self.values[what] = self.values.get(what, 0) + 1


class _Part:
    """One command set or data set being walked."""

    __slots__ = ("deflated", "fed", "head", "is_command", "spans", "walker", "zero_from", "zeros")

    def __init__(self, is_command: bool) -> None:
        self.is_command = is_command
        self.walker: DataSetWalker | None = None
        self.head = bytearray()  # the first bytes, while the encoding is being guessed
        self.deflated = False
        self.fed = 0  # bytes of this part seen (lost ones included)
        # (part offset, stream offset, length) of recent chunks, for values still being read
        self.spans: deque[tuple[int, int, int]] = deque()
        self.zeros: list[tuple[int, int, str]] = []  # part ranges [start, end) to zero, why
        self.zero_from: int | None = None  # everything from here on is zeroed


class _Side:
    __slots__ = ("current", "last", "parts", "pdu_offset")

    def __init__(self) -> None:
        self.parts: dict[tuple[int, bool], _Part] = {}
        self.current: _Part | None = None
        self.last = False
        self.pdu_offset = 0


class Locator:
    """Finds the edits of every stream of a capture (see the module's docstring).

    The transfer syntax of each presentation context comes from the A-ASSOCIATE-AC seen on
    the connection (``transfer_syntax`` overrides that); when none was seen (a capture begun
    mid-association) the encoding is guessed from the data set's first bytes.
    """

    def __init__(
        self,
        uids: UidMap,
        transfer_syntax: Callable[[int, int], str | None] | None = None,
        *,
        keep_pixels: bool = False,
        ae_titles: AeMap | None = None,
    ) -> None:
        self._accepted: dict[tuple[int, int], str] = {}
        self._ts = transfer_syntax or (lambda conn, ctx: self._accepted.get((conn, ctx)))
        self.uids = uids
        self.keep_pixels = keep_pixels
        self.ae_titles = ae_titles
        self.edits: dict[tuple[int, bool], list[Edit]] = {}
        self.tally = Tally()
        self.originals: set[bytes] = set()
        """The PHI values replaced (at least 4 bytes, padding stripped): none may be left in
        the output."""
        self._sides: dict[tuple[int, bool], _Side] = {}
        # Every value replaced in a command or data set: its stream, the index of its first
        # edit there, how many edits it took (one per chunk it came in) and its VR ("" when
        # some of its bytes were not seen).
        self._values: list[tuple[tuple[int, bool], int, int, str]] = []
        self._settled = False

    # --- framer records ------------------------------------------------------------------

    def _side(self, connection: int, from_requestor: bool) -> _Side:
        key = (connection, from_requestor)
        side = self._sides.get(key)
        if side is None:
            side = self._sides[key] = _Side()
        return side

    def pdu_start(self, connection: int, from_requestor: bool, offset: int) -> None:
        self._side(connection, from_requestor).pdu_offset = offset

    def control_pdu(
        self, connection: int, from_requestor: bool, pdu_type: int, body: bytes, missing: int
    ) -> None:
        """An association PDU's body: user identity fields always, AE titles when hosts are
        pseudonymized, replaced in place. Of a body a capture gap cut (``missing`` bytes),
        every captured byte of those fields, the start of a field the gap cuts included."""
        if pdu_type not in (_ASSOCIATE_RQ, _ASSOCIATE_AC):
            return
        if len(body) < (_TITLES_END if missing else _ITEMS_START):
            return
        if pdu_type == _ASSOCIATE_AC:
            ac, _ = decode_cut_control_pdu(pdu_type, body, missing)
            if isinstance(ac, AssociateAc):
                for ctx in ac.presentation_contexts:
                    if ctx.result == 0 and ctx.transfer_syntax:
                        self._accepted[(connection, ctx.context_id)] = ctx.transfer_syntax
        start = self._side(connection, from_requestor).pdu_offset + 6
        if self.ae_titles is not None:
            for at in (4, 20):  # called, calling AE title
                old = body[at : at + 16]
                new = self.ae_titles.replace(old)
                if new != old:
                    self._edit(connection, from_requestor, start + at, new, old)
                    self.tally.value("AE title (A-ASSOCIATE)")
        defects: list[Defect] = []
        cut = missing > 0
        items = iter_items(body[_ITEMS_START:], _ITEMS_START, defects, cut=cut, partial=cut)
        for item_type, _, item, offset in items:
            if item_type != _USER_INFORMATION:
                continue
            for sub_type, _, sub, sub_offset in iter_items(
                item, offset + 4, defects, cut=cut, partial=cut
            ):
                if sub_type == _USER_IDENTITY_RQ and len(sub) >= 4:
                    self._identity_rq(connection, from_requestor, start + sub_offset + 4, sub)
                elif sub_type == _USER_IDENTITY_AC and len(sub) >= 2:
                    n = int.from_bytes(sub[0:2], "big")
                    field_bytes = sub[2 : 2 + n]
                    self._blank(connection, from_requestor, start + sub_offset + 6, field_bytes)
                    self.tally.value("user identity server response")

    def _identity_rq(self, connection: int, from_requestor: bool, at: int, sub: bytes) -> None:
        # Type (1), positive response requested (1), primary field length (2) and field,
        # secondary field length (2) and field.
        n = int.from_bytes(sub[2:4], "big")
        self._blank(connection, from_requestor, at + 4, sub[4 : 4 + n])
        self.tally.value("user identity primary field")
        rest = 4 + n
        if len(sub) >= rest + 2:
            m = int.from_bytes(sub[rest : rest + 2], "big")
            self._blank(connection, from_requestor, at + rest + 2, sub[rest + 2 : rest + 2 + m])
            self.tally.value("user identity secondary field")

    def _blank(self, connection: int, from_requestor: bool, at: int, old: bytes) -> None:
        if old:
            self._edit(connection, from_requestor, at, replacement("LO", old, self.uids), old)

    def pdv_start(
        self, connection: int, from_requestor: bool, context_id: int, control: int
    ) -> None:
        side = self._side(connection, from_requestor)
        is_command = bool(control & 1)
        key = (context_id, is_command)
        part = side.parts.get(key)
        if part is None:
            part = side.parts[key] = _Part(is_command)
            if is_command:
                part.walker = DataSetWalker(implicit=True, report=self._report)
            else:
                self._encoding(part, self._ts(connection, context_id))
                if part.deflated:
                    part.zero_from = 0  # no same-length rewrite inside a deflate stream
        side.current = part
        side.last = bool(control & 2)

    def pdv_data(
        self, connection: int, from_requestor: bool, data: memoryview, offset: int
    ) -> None:
        side = self._sides.get((connection, from_requestor))
        part = side.current if side is not None else None
        if part is None:
            return
        key = (connection, from_requestor)
        part.spans.append((part.fed, offset, len(data)))
        start = part.fed
        part.fed += len(data)
        self._zero_new(key, part, start, offset, len(data))
        if part.walker is None and not part.deflated:
            part.head += data
            if len(part.head) < _SNIFF:
                return
            self._encoding(part, sniff_transfer_syntax(bytes(part.head)))
            if part.walker is None:  # deflated, or no idea: zeroed
                self._zero(key, part, 0, None, "deflated" if part.deflated else "unparsed")
                return
            head, part.head = bytes(part.head), bytearray()
            self._walk(key, part, head)
        elif part.walker is not None:
            self._walk(key, part, data)
        self._prune(part)

    def pdv_lost(self, connection: int, from_requestor: bool, size: int) -> None:
        side = self._sides.get((connection, from_requestor))
        part = side.current if side is not None else None
        if part is None:
            return
        key = (connection, from_requestor)
        walker = part.walker
        if walker is not None:
            pending = walker.pending_from
            walker.lost(size)
            if walker.broken is not None:
                # The value being read, and everything after the hole, cannot be placed.
                self._zero(key, part, min(pending, part.fed), None, "unparsed")
        part.fed += size

    def pdv_end(self, connection: int, from_requestor: bool, ts: int, frame: int | None) -> None:
        side = self._sides.get((connection, from_requestor))
        if side is None or side.current is None:
            return
        part, last = side.current, side.last
        side.current = None
        if last:
            self._close(connection, from_requestor, side, part)

    def broken(self, connection: int, from_requestor: bool, ts: int, frame: int | None) -> None:
        """The stream lost its PDU boundaries: what is in flight ends here, cut."""
        side = self._sides.get((connection, from_requestor))
        if side is None:
            return
        side.current = None
        for part in list(side.parts.values()):
            self._close(connection, from_requestor, side, part)

    def unparsed(self, connection: int, from_requestor: bool, offset: int, size: int) -> None:
        """``size`` bytes at stream ``offset`` were not framed (skipped while resynchronising):
        zeroed."""
        if size > 0:
            self._add(connection, from_requestor, Edit(offset, size, None))
            self.tally.unparsed_bytes += size

    # --- walking -----------------------------------------------------------------------

    def _report(self, tag: int, vr: str) -> bool:
        return self.ae_titles is not None and tag in (_MOVE_DESTINATION, _MOVE_ORIGINATOR)

    def _encoding(self, part: _Part, transfer_syntax: str | None) -> None:
        if transfer_syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
            part.deflated = True
        elif transfer_syntax is not None:
            part.walker = DataSetWalker(
                implicit=transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN,
                little=transfer_syntax != EXPLICIT_VR_BIG_ENDIAN,
            )

    def _walk(self, key: tuple[int, bool], part: _Part, data: bytes | memoryview) -> None:
        walker = part.walker
        assert walker is not None
        was_broken = walker.broken is not None
        for element in walker.feed(data):
            self._element(key, part, element)
        if walker.broken is not None and not was_broken:
            self._zero(key, part, walker.offset, None, "unparsed")

    def _element(self, key: tuple[int, bool], part: _Part, e: Element) -> None:
        if e.value is not None:
            if e.vr == "AE" and self.ae_titles is not None:
                # An AE title: the same pseudonym as in the association's PDUs.
                new = self.ae_titles.replace(e.value)
                what = "AE title (DIMSE)" if e.hidden else "AE title (command set)"
            else:
                new = replacement(e.vr, e.value, self.uids)
                what = _keyword(e.tag)
            if new != e.value:
                # AE titles name hosts, which stay in the PDUs unless pseudonymized: not a
                # value the output may not hold.
                keep = e.vr == "AE" and self.ae_titles is None
                first = len(self.edits.get(key, ()))
                self._part_edit(key, part, e.offset, new, b"" if keep else e.value)
                placed = self.edits.get(key, [])[first:]
                if placed and e.vr != "AE":  # a host's pseudonym stays the same everywhere
                    # Only a whole value can have its UIDs changed; any part can be blanked.
                    whole = sum(p.length for p in placed) == len(new)
                    self._values.append((key, first, len(placed), e.vr if whole else ""))
                self.tally.value(what)
            return
        if e.hidden:
            self._zero(key, part, e.offset, e.offset + e.length, "large")
        elif e.tag in PIXEL_TAGS and not self.keep_pixels:
            self._zero(key, part, e.offset, e.offset + e.length, "pixels")

    def _close(self, connection: int, from_requestor: bool, side: _Side, part: _Part) -> None:
        key = (connection, from_requestor)
        if part.walker is not None:
            for element in part.walker.finish():  # a value cut by the end: zeroed
                self._zero(key, part, element.offset, element.offset + element.length, "unparsed")
        elif part.head:  # too short to guess its encoding
            self._zero(key, part, 0, None, "unparsed")
        if part.deflated:
            self.tally.deflated_datasets += 1
        for k, p in list(side.parts.items()):
            if p is part:
                del side.parts[k]

    # --- edits ---------------------------------------------------------------------------

    def _part_edit(
        self, key: tuple[int, bool], part: _Part, start: int, new: bytes, old: bytes
    ) -> None:
        """``new`` replaces the part's bytes from ``start``: mapped to the stream through the
        spans of the chunks they came in."""
        end = start + len(new)
        for p_off, s_off, length in part.spans:
            lo, hi = max(start, p_off), min(end, p_off + length)
            if lo < hi:
                self._add(
                    key[0], key[1], Edit(s_off + lo - p_off, hi - lo, new[lo - start : hi - start])
                )
        self._original(old)

    def _edit(self, connection: int, from_requestor: bool, at: int, new: bytes, old: bytes) -> None:
        self._add(connection, from_requestor, Edit(at, len(new), new))
        self._original(old)

    def _original(self, old: bytes) -> None:
        text = old.strip(b"\0 ")
        if len(text) >= 4:
            self.originals.add(text)

    def _zero(
        self, key: tuple[int, bool], part: _Part, start: int, end: int | None, why: str
    ) -> None:
        """Zero the part's bytes ``[start, end)`` (to its end when ``end`` is None): those
        already seen now, the others as they come."""
        if end is None:
            part.zero_from = start if part.zero_from is None else min(part.zero_from, start)
        else:
            part.zeros.append((start, end, why))
        for p_off, s_off, length in part.spans:
            self._zero_span(key, part, p_off, s_off, length, [(start, end, why)])

    def _zero_new(
        self, key: tuple[int, bool], part: _Part, p_off: int, s_off: int, length: int
    ) -> None:
        ranges: list[tuple[int, int | None, str]] = list(part.zeros)
        if part.zero_from is not None:
            ranges.append((part.zero_from, None, "deflated" if part.deflated else "unparsed"))
        if ranges:
            self._zero_span(key, part, p_off, s_off, length, ranges)
            part.zeros = [z for z in part.zeros if z[1] > p_off + length]

    def _zero_span(
        self,
        key: tuple[int, bool],
        part: _Part,
        p_off: int,
        s_off: int,
        length: int,
        ranges: list[tuple[int, int | None, str]],
    ) -> None:
        for start, end, why in ranges:
            lo = max(start, p_off)
            hi = p_off + length if end is None else min(end, p_off + length)
            if lo >= hi:
                continue
            self._add(key[0], key[1], Edit(s_off + lo - p_off, hi - lo, None))
            n = hi - lo
            if why == "pixels":
                self.tally.pixel_bytes += n
            elif why == "large":
                self.tally.private_or_large_bytes += n
            elif why == "deflated":
                self.tally.deflated_bytes += n
            else:
                self.tally.unparsed_bytes += n

    def _prune(self, part: _Part) -> None:
        keep_from = part.walker.pending_from if part.walker is not None else part.fed
        spans = part.spans
        while spans and spans[0][0] + spans[0][2] <= keep_from:
            spans.popleft()

    def _add(self, connection: int, from_requestor: bool, edit: Edit) -> None:
        edits = self.edits.setdefault((connection, from_requestor), [])
        if edits and edit.data is None:
            last = edits[-1]
            if last.data is None and last.offset + last.length == edit.offset:
                edits[-1] = Edit(last.offset, last.length + edit.length, None)
                return
        edits.append(edit)

    def settle(self) -> None:
        """Once every value is known: no replacement may hold one of :attr:`originals`.
        A pseudonym UID that does is drawn again (and changed wherever it was put); any other
        replacement that does is blanked (spaces: an empty value)."""
        if self._settled:
            return
        self._settled = True
        needles = sorted(self.originals)
        if not needles or not self._values:
            return
        matcher = ahocorasick_rs.BytesAhoCorasick(needles)

        def holds(data: bytes) -> bool:
            return bool(matcher.find_matches_as_indexes(data))

        drawn: dict[bytes, bytes] = {}
        for uid, pseudonym in self.uids.pairs().items():
            if holds(pseudonym.encode("ascii")):
                again = self.uids.redraw(uid, lambda c: holds(c.encode("ascii")))
                drawn[pseudonym.encode("ascii")] = again.encode("ascii")
        for key, first, count, vr in self._values:
            edits = self.edits[key]
            pieces = edits[first : first + count]
            data = b"".join(e.data or b"" for e in pieces)
            value = _swap_uids(data, drawn) if vr == "UI" and drawn else data
            if holds(value):
                value = (b"\0" if vr == "UI" else b" ") * len(data)
            if value == data:
                continue
            at = 0
            for i, e in enumerate(pieces, first):
                edits[i] = Edit(e.offset, e.length, value[at : at + e.length])
                at += e.length

    def sorted_edits(self) -> dict[tuple[int, bool], list[Edit]]:
        """Every stream's edits in offset order, settled (:meth:`settle`)."""
        self.settle()
        return {k: sorted(v, key=lambda e: e.offset) for k, v in self.edits.items()}


def _swap_uids(value: bytes, drawn: dict[bytes, bytes]) -> bytes:
    """A UI replacement ``value`` (UIDs joined by backslashes, padded) with each UID that was
    drawn again changed to its new one (the same length)."""
    text = value.rstrip(b"\0 ")
    parts = [drawn.get(p, p) for p in text.split(b"\\")]
    return b"\\".join(parts) + value[len(text) :]


def _keyword(tag: int) -> str:
    from pydicom.datadict import keyword_for_tag

    if tag >> 16 & 1:
        return "private attribute"
    return keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
