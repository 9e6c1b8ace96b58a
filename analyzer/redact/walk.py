"""Where the values of a data set are, in its encoded bytes, as the bytes stream by.

:class:`DataSetWalker` reads the element headers of an encoded data set (Implicit VR Little
Endian, Explicit VR Little or Big Endian; nested sequences and items of defined and
undefined length; encapsulated Pixel Data) and reports, for each value that the PS3.15
Basic Profile replaces or removes (and for Pixel Data), its tag, VR, offset and length in
the data set's encoding, with the value itself when it is small. Bytes are fed in any
pieces; nothing but a header being read and a reported value is held, so a multi-gigabyte
data set costs no memory. The same walker serves the display (a kept prefix masked before it
is shown), the anonymizer (values rewritten in place in a capture) and a command set (always
Implicit VR Little Endian).

Lengths are never trusted: a value or item that overruns its parent, a tag that is not an
item where one must be, or an Explicit VR header without a VR stops the walk; ``broken``
then says why and where, and the caller treats everything after ``offset`` as unreadable.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import NamedTuple

from pydicom.datadict import dictionary_VR

from .profile import Action, action

#: Values up to this length are collected and reported with their bytes.
VALUE_LIMIT = 1 << 16
UNDEFINED = 0xFFFFFFFF
#: Pixel data elements: reported whether or not they are hidden, so they can be zeroed.
PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD

_LONG_VRS = frozenset(
    {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"}
)
_VRS = _LONG_VRS | frozenset(
    {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD", "IS", "LO", "LT", "PN", "SH"}
    | {"SL", "SS", "ST", "TM", "UI", "UL", "US"}
)
_SEQ, _ITEM, _ENCAP = range(3)


class Element(NamedTuple):
    """One value the walker reports.

    ``offset`` is where the value starts in the data set's encoding, ``length`` its length
    (for an element cut by the end of the bytes, what was seen of it). ``value`` holds the
    bytes of a hidden (or ``report``-ed) element of at most :data:`VALUE_LIMIT` bytes, which is
    reported when its value ends; any other element (pixel data, large values) is reported
    with ``value`` None as soon as its value starts. ``action`` is the
    profile's action for the tag itself; ``hidden`` is True when the profile replaces the
    value: its tag has an action, or it sits inside a sequence that has one.
    ``fragment`` marks an item of encapsulated Pixel Data (``tag`` is then the Pixel Data's).
    """

    tag: int
    vr: str
    offset: int
    length: int
    value: bytes | None
    hidden: bool
    action: Action | None
    fragment: bool = False


class _Frame:
    __slots__ = ("end", "hidden", "implicit", "kind", "tag")

    def __init__(self, kind: int, tag: int, end: int | None, hidden: bool, implicit: bool) -> None:
        self.kind = kind
        self.tag = tag
        self.end = end
        self.hidden = hidden
        self.implicit = implicit


def implicit_vr(tag: int) -> str:
    """The VR of ``tag`` in an Implicit VR encoding: the dictionary's, UN when unknown."""
    if tag & 0xFFFF == 0:
        return "UL"
    try:
        vr = str(dictionary_VR(tag))
    except KeyError:
        return "UN"
    return vr.split(" or ")[0]


class DataSetWalker:
    """Walks one data set's encoding fed in pieces (see the module's docstring).

    ``report`` chooses, beyond hidden elements and pixel data, which other elements to
    report (with their values, as for hidden ones).
    """

    def __init__(
        self,
        *,
        implicit: bool,
        little: bool = True,
        report: Callable[[int, str], bool] | None = None,
    ) -> None:
        self._implicit = implicit
        self._end = "<" if little else ">"
        self._tag_s = struct.Struct(self._end + "HH")
        self._u16 = struct.Struct(self._end + "H")
        self._u32 = struct.Struct(self._end + "I")
        self._report = report
        self._stack: list[_Frame] = []
        self._hdr = bytearray()
        self._skip = 0
        self._current: Element | None = None
        self._value: bytearray | None = None
        self.offset = 0
        """Bytes of the encoding walked so far (an element header being read is counted
        once it is complete)."""
        self.broken: str | None = None
        """Why the walk stopped (the bytes from ``offset`` on could not be read), or None."""

    @property
    def in_value(self) -> bool:
        """True while inside a value (the next byte is not an element header)."""
        return self._skip > 0

    def feed(self, data: bytes | bytearray | memoryview) -> list[Element]:
        """Walk the next bytes; return the elements whose values ended in them."""
        out: list[Element] = []
        if self.broken is not None:
            self.offset += len(data)
            return out
        view = memoryview(data)
        pos, n = 0, len(view)
        while pos < n:
            if self._skip:
                take = min(self._skip, n - pos)
                if self._value is not None:
                    self._value += view[pos : pos + take]
                pos += take
                self.offset += take
                self._skip -= take
                if not self._skip:
                    self._value_done(out)
                continue
            if not self._close_frames():
                self.offset += n - pos
                return out
            pos = self._header(view, pos, out)
            if self.broken is not None:
                self.offset += n - pos
                return out
        return out

    def lost(self, size: int) -> None:
        """``size`` bytes of the encoding are missing: nothing after them can be placed,
        unless the hole falls entirely inside one value (then only that value is partial)."""
        if self.broken is None and self._skip >= size and self._value is None:
            self._skip -= size
            self.offset += size
            return
        self._stop(f"{size} byte(s) missing at offset {self.offset}")
        self.offset += size

    def finish(self) -> list[Element]:
        """The encoding ends here: the element being read, if one is to be reported, cut."""
        cur = self._current
        if cur is None or not self._skip:
            return []
        self._current = None
        seen = cur.length - self._skip
        value = bytes(self._value) if self._value is not None else None
        self._value = None
        self._skip = 0
        return [cur._replace(length=seen, value=value)]

    # --- internals -------------------------------------------------------------------

    def _stop(self, why: str) -> None:
        if self.broken is None:
            self.broken = why

    def _close_frames(self) -> bool:
        """Pop the items and sequences of defined length that end here; False if one was
        overrun (the walk is then broken)."""
        stack = self._stack
        while stack and stack[-1].end is not None:
            end = stack[-1].end
            if self.offset < end:
                break
            if self.offset > end:
                self._stop(f"an element overruns its sequence or item at offset {end}")
                return False
            stack.pop()
        return True

    def _header(self, view: memoryview, pos: int, out: list[Element]) -> int:
        """Read an element header from ``view[pos:]`` (or complete a buffered one); return
        the new position in ``view``."""
        implicit = self._stack[-1].implicit if self._stack else self._implicit
        hdr = self._hdr
        avail = len(view) - pos
        if not hdr and avail >= 12:
            used = self._parse(view[pos : pos + 12], implicit, out)
            return pos + (used or 0)
        take = min(12 - len(hdr), avail)
        hdr += view[pos : pos + take]
        if len(hdr) < 8:
            return pos + take
        before = len(hdr) - take  # bytes of the header buffered before this call
        used = self._parse(memoryview(bytes(hdr)), implicit, out)
        if used is None:  # a 12-byte header of which fewer are at hand
            return pos + take
        hdr.clear()
        return pos + max(0, used - before)

    def _parse(self, raw: memoryview, implicit: bool, out: list[Element]) -> int | None:
        """Parse the header at the start of ``raw`` (8 to 12 bytes), which starts at
        ``offset``; return its length, None if it needs 12 bytes and ``raw`` is shorter,
        0 if it broke the walk."""
        group, elem = self._tag_s.unpack_from(raw, 0)
        tag = group << 16 | elem
        start = self.offset
        if group == 0xFFFE:
            length = self._u32.unpack_from(raw, 4)[0]
            self.offset += 8
            if not self._delimiter(tag, length, start, out):
                return 0
            return 8
        parent = self._stack[-1] if self._stack else None
        if parent is not None and parent.kind != _ITEM:
            self._stop(f"an element where an item must be, at offset {start}")
            return 0
        if implicit:
            length = self._u32.unpack_from(raw, 4)[0]
            vr = implicit_vr(tag)
            hlen = 8
        else:
            vr = bytes(raw[4:6]).decode("latin-1")
            if vr not in _VRS:
                self._stop(f"no VR in the element header at offset {start}")
                return 0
            if vr in _LONG_VRS:
                if len(raw) < 12:
                    return None
                length = self._u32.unpack_from(raw, 8)[0]
                hlen = 12
            else:
                length = self._u16.unpack_from(raw, 6)[0]
                hlen = 8
        self.offset += hlen
        code = action(tag)
        hidden = code is not None or (parent is not None and parent.hidden)
        if vr == "SQ" or (length == UNDEFINED and vr == "UN"):
            end = None if length == UNDEFINED else self.offset + length
            if (
                end is not None
                and parent is not None
                and parent.end is not None
                and end > parent.end
            ):
                self._stop(f"a sequence overruns its item at offset {start}")
                return 0
            # An UN of undefined length holds Implicit VR Little Endian items (CP-246).
            nested_implicit = implicit or (vr == "UN" and end is None)
            self._stack.append(_Frame(_SEQ, tag, end, hidden, nested_implicit))
            if self._wanted(tag, vr, hidden):
                size = 0 if end is None else length
                out.append(Element(tag, vr, self.offset, size, None, hidden, code))
            return hlen
        if length == UNDEFINED:
            if tag in PIXEL_TAGS:
                self._stack.append(_Frame(_ENCAP, tag, None, hidden, implicit))
                return hlen
            self._stop(f"undefined length for a {vr} element at offset {start}")
            return 0
        if not self._value_start(tag, vr, length, hidden, code, False, out):
            return 0
        return hlen

    def _delimiter(self, tag: int, length: int, start: int, out: list[Element]) -> bool:
        """An item or delimiter header (already counted in ``offset``); False if it broke
        the walk."""
        top = self._stack[-1] if self._stack else None
        if tag == ITEM:
            if top is None or top.kind == _ITEM:
                self._stop(f"an item outside a sequence at offset {start}")
                return False
            if top.kind == _ENCAP:
                if length == UNDEFINED:
                    self._stop(f"a pixel data fragment of undefined length at offset {start}")
                    return False
                code = action(top.tag)
                return self._value_start(top.tag, "OB", length, top.hidden, code, True, out)
            end = None if length == UNDEFINED else self.offset + length
            if end is not None and top.end is not None and end > top.end:
                self._stop(f"an item overruns its sequence at offset {start}")
                return False
            self._stack.append(_Frame(_ITEM, top.tag, end, top.hidden, top.implicit))
            return True
        if tag == ITEM_END and top is not None and top.kind == _ITEM and top.end is None:
            self._stack.pop()
            return True
        if tag == SEQUENCE_END and top is not None and top.kind != _ITEM and top.end is None:
            self._stack.pop()
            return True
        where = f"({tag >> 16:04X},{tag & 0xFFFF:04X}) at offset {start}"
        self._stop(f"an unexpected item or delimiter {where}")
        return False

    def _value_start(
        self,
        tag: int,
        vr: str,
        length: int,
        hidden: bool,
        code: Action | None,
        fragment: bool,
        out: list[Element],
    ) -> bool:
        """A value of ``length`` bytes starts at ``offset``; False if it broke the walk."""
        parent = self._stack[-1] if self._stack else None
        if parent is not None and parent.end is not None and self.offset + length > parent.end:
            self._stop(f"a value overruns its item at offset {self.offset}")
            return False
        wanted = self._wanted(tag, vr, hidden)
        if not (wanted or tag in PIXEL_TAGS):
            self._skip = length
            self._current = None
            self._value = None
            return True
        element = Element(tag, vr, self.offset, length, None, hidden, code, fragment)
        if not wanted or length > VALUE_LIMIT:
            # Not collected: reported as its value starts, so that its bytes can be dealt
            # with as they stream by.
            out.append(element)
            self._skip = length
            self._current = None
            self._value = None
            return True
        self._current = element
        self._value = bytearray()
        self._skip = length
        if not length:
            self._value_done(out)
        return True

    @property
    def pending_from(self) -> int:
        """The offset of the earliest byte a later report may still cover: the start of the
        value being collected, else :attr:`offset`."""
        cur = self._current
        if cur is not None and self._skip:
            return cur.offset
        return self.offset

    def _value_done(self, out: list[Element]) -> None:
        cur = self._current
        if cur is None:
            return
        self._current = None
        value = bytes(self._value) if self._value is not None else None
        self._value = None
        out.append(cur._replace(value=value))

    def _wanted(self, tag: int, vr: str, hidden: bool) -> bool:
        return hidden or (self._report is not None and self._report(tag, vr))
