"""Streaming PDU framing for one direction of a connection: bytes in, records out.

The framer turns an ordered byte stream (with possible holes) into PDU and PDV boundaries.
It calls nobody: like h11's connection object, it is given bytes with
:meth:`PduFramer.receive_data` (holes with :meth:`PduFramer.gap`) and returns the small
immutable records (:data:`FramerRecord`) those bytes completed, in stream order, for the
caller to consume::

    framer = PduFramer()
    for record in framer.receive_data(memoryview(chunk)):
        match record:
            case PdvChunk(data, offset):
                ...  # payload bytes of the current PDV, at stream offset ``offset``
            case PduStart(pdu_type, length, offset):
                ...

Association, release and abort PDUs are short and are handed over whole (:class:`PduBody`),
or, when a hole in the capture cuts one (a snap length), as far as they were captured
(:class:`PduBodyCut`: the framer stays in sync when the hole ends within that PDU);
a P-DATA-TF is never buffered: its PDV headers are parsed and its payload is passed through
as memoryview slices of the caller's buffer (:class:`PdvChunk`, zero-copy; valid as long as
that buffer is), so a PDU that claims 4 GB costs nothing but a counter. A declared length is
never used to allocate. Every offset is a stream offset of this direction: the number of
bytes (data and holes) given to the framer before that byte.

When the stream makes no sense (unknown PDU type, a PDV that overruns its PDU, a hole in the
capture that swallowed a header) the framer reports it (:class:`FramingProblem`,
:class:`LostSync`) and *scans* for the next plausible PDU header (:class:`Resynced`). The scan
is a loop over the chunk at hand: its cost is linear in the bytes scanned, however many bad
PDUs follow each other. A capture that starts mid-connection begins in a strict scan, which
accepts only a P-DATA-TF carrying the start of a command set (group 0000 group length, always
Implicit VR Little Endian), or an exact A-RELEASE or A-ABORT PDU.

Records are :class:`~typing.NamedTuple` s: immutable, typed, usable in ``match``, and several
times cheaper to build than a dataclass (the framer builds one per TCP segment of bulk data).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from dissectors.pdu.constants import pdu_name
from dissectors.pdu.pdus import PDU_HEADER as _PDU_HEADER
from dissectors.pdu.pdus import PDV_HEADER as _PDV_HEADER

#: Largest association/release/abort PDU body buffered whole. An A-ASSOCIATE-RQ with 128
#: contexts and extended negotiation stays far below.
CONTROL_PDU_LIMIT = 1 << 20
#: Largest P-DATA-TF length a scan accepts as plausible when resynchronising.
SCAN_PDU_LIMIT = 1 << 26
#: An unknown PDU type with a declared length up to this is stepped over, not rescanned.
UNKNOWN_PDU_LIMIT = 1 << 16
_SCAN_KEEP = 24  # bytes carried between chunks while scanning (a candidate needs 20)
_JOIN = 2 * _SCAN_KEEP  # bytes of a new chunk joined to the carried ones (see _join_carry)

_COMMAND_START = b"\x00\x00\x00\x00\x04\x00\x00\x00"  # (0000,0000) UL, length 4
# Every header a strict scan accepts holds these six bytes: a command set's start from its
# second byte (its P-DATA-TF header 13 bytes before them), an A-RELEASE-RQ/RP or A-ABORT
# from its third. A literal is found a hundred times faster than an alternation.
_STRICT_NEEDLE = re.compile(re.escape(b"\x00\x00\x00\x04\x00\x00"))
_RELAXED = re.compile(rb"[\x01-\x07]\x00")

HEADER, CONTROL, PDV_HEADER, PDV_BODY, SKIP, SCAN, DRAIN = range(7)
# DRAIN: the rest of a control PDU already handed over cut (PduBodyCut), skipped silently.


# --- records -----------------------------------------------------------------------------


class PduStart(NamedTuple):
    """A PDU header was read (any type, including undefined ones) at stream ``offset``."""

    pdu_type: int
    length: int
    offset: int


class PduBody(NamedTuple):
    """The whole body of an association, release or abort PDU (types 1-3, 5-7).

    It ends that PDU: no :class:`PduEnd` follows."""

    pdu_type: int
    body: bytes


class PduBodyCut(NamedTuple):
    """The captured start of an association, release or abort PDU body that a hole in the
    capture cut (a snap length, a lost segment): ``body`` is what came before the hole,
    ``missing`` the bytes of the body from there to its end, not handed over.

    It ends that PDU, as :class:`PduBody` does; the rest of its body is skipped."""

    pdu_type: int
    body: bytes
    missing: int


class PdvStart(NamedTuple):
    """A PDV header was read at stream ``offset``; ``length`` is the item length (data + 2)."""

    context_id: int
    control: int
    length: int
    offset: int


class PdvChunk(NamedTuple):
    """Payload bytes of the current PDV (a slice of the caller's buffer) at stream ``offset``."""

    data: memoryview
    offset: int


class PdvLost(NamedTuple):
    """``size`` payload bytes of the current PDV, at stream ``offset``, are missing."""

    size: int
    offset: int


class PdvEnd(NamedTuple):
    """The current PDV is complete."""


class PduEnd(NamedTuple):
    """The current P-DATA-TF (or skipped PDU) is complete."""


class Hole(NamedTuple):
    """``size`` bytes at stream ``offset`` are missing outside any PDV payload."""

    size: int
    offset: int


class FramingProblem(NamedTuple):
    """The stream broke PS3.8 framing at ``offset`` (``code`` is stable, kebab-case)."""

    code: str
    text: str
    offset: int


class LostSync(NamedTuple):
    """The framer no longer knows where PDUs start; it scans from after ``offset``.

    Whatever PDU or PDV was being read will not be completed."""

    offset: int


class Resynced(NamedTuple):
    """A plausible PDU header was found at ``offset`` after ``skipped`` bytes."""

    offset: int
    skipped: int


FramerRecord = (
    PduStart
    | PduBody
    | PduBodyCut
    | PdvStart
    | PdvChunk
    | PdvLost
    | PdvEnd
    | PduEnd
    | Hole
    | FramingProblem
    | LostSync
    | Resynced
)

_PDV_END = PdvEnd()
_PDU_END = PduEnd()
# ``tuple.__new__(PdvChunk, (data, offset))`` builds the same record as ``PdvChunk(data,
# offset)`` in about half the time (no keyword handling); used where it counts.
_new = tuple.__new__


def plausible_header(buf: bytes | bytearray | memoryview, p: int, strict: bool) -> bool | None:
    """Whether a PDU could start at ``buf[p]``; None when more bytes are needed to tell."""
    avail = len(buf) - p
    if avail < 6:
        return None
    pdu_type, reserved, length = _PDU_HEADER.unpack_from(buf, p)
    if reserved != 0 or not 1 <= pdu_type <= 7:
        return False
    if pdu_type == 4:
        if not 12 <= length <= SCAN_PDU_LIMIT:
            return False
        if avail < 12:
            return None
        pdv_len, ctx, control = _PDV_HEADER.unpack_from(buf, p + 6)
        if not 2 < pdv_len <= length - 4 or ctx % 2 == 0 or control > 3:
            return False
        if not strict:
            return True
        if not control & 1:
            return False
        if avail < 20:
            return None
        return bytes(buf[p + 12 : p + 20]) == _COMMAND_START
    if pdu_type in (1, 2):
        if not 68 <= length <= CONTROL_PDU_LIMIT:
            return False
        if avail < 8:
            return None
        return buf[p + 6] == 0 and buf[p + 7] == 1
    if length != 4:
        return False
    if avail < 10:
        return None
    body = bytes(buf[p + 6 : p + 10])
    if pdu_type in (5, 6):
        return body == b"\x00\x00\x00\x00"
    if pdu_type == 7:
        return body[2] <= 2 and body[3] <= 6
    # A-ASSOCIATE-RJ
    return body[1] in (1, 2) and 1 <= body[2] <= 3 and not strict


class PduFramer:
    """Frames one direction: :meth:`receive_data` and :meth:`gap` in, records out.

    ``synced`` False starts in a strict scan (the stream's start was not captured).
    ``offset`` is the stream offset of the next byte expected.
    """

    __slots__ = (
        "_body",
        "_carry",
        "_carry_offset",
        "_hdr",
        "_pdu_remaining",
        "_pdu_type",
        "_pdv_remaining",
        "_scan_start",
        "_state",
        "_strict",
        "offset",
    )

    def __init__(self, *, synced: bool = True) -> None:
        self._state = HEADER if synced else SCAN
        self._strict = not synced
        self._hdr = bytearray()  # a PDU or PDV header split across chunks
        self._body = bytearray()  # the body of a control PDU split across chunks
        self._pdu_type = 0
        self._pdu_remaining = 0
        self._pdv_remaining = 0
        # While scanning: the last bytes of earlier chunks not yet ruled out as a PDU start.
        self._carry = b""
        self._carry_offset = 0
        self._scan_start = 0
        self.offset = 0

    # --- input -------------------------------------------------------------------------

    def within_pdv(self, size: int) -> bool:
        """Whether the next ``size`` bytes lie inside the current PDV's payload, short of its
        end; if so they are taken as read: the caller hands them to whatever collects the
        PDV (what :meth:`receive_data` would return for them is one :class:`PdvChunk`)."""
        if self._state == PDV_BODY and size < self._pdv_remaining:
            self._pdv_remaining -= size
            self._pdu_remaining -= size
            self.offset += size
            return True
        return False

    def receive_data(self, data: memoryview) -> list[FramerRecord]:
        """The next bytes of the stream; returns the records they complete, in order."""
        n = len(data)
        base = self.offset
        if self._state == PDV_BODY and n < self._pdv_remaining:
            # The bulk of any association: a chunk inside a PDV's payload.
            self._pdv_remaining -= n
            self._pdu_remaining -= n
            self.offset = base + n
            return [_new(PdvChunk, (data, base))]
        out: list[FramerRecord] = []
        pos = 0
        while True:
            if self._carry:
                pos = self._join_carry(data, pos, base, out)
            if pos >= n:
                break
            pos = self._run(data, pos, base, out)
            if pos >= n:
                break
        self.offset = base + n
        return out

    def gap(self, size: int) -> list[FramerRecord]:
        """``size`` bytes of the stream are missing here; returns the records that follow."""
        out: list[FramerRecord] = []
        offset = self.offset
        state = self._state
        if state == PDV_BODY and size <= self._pdv_remaining:
            out.append(PdvLost(size, offset))
            self._pdv_remaining -= size
            self._pdu_remaining -= size
            self.offset += size
            if self._pdv_remaining == 0:
                out.append(_PDV_END)
                self._after_pdv(out)
            return out
        if state == CONTROL:
            # The body is cut: hand over what came before the hole.
            out.append(PduBodyCut(self._pdu_type, bytes(self._body), self._pdu_remaining))
            self._body.clear()
            state = self._state = DRAIN
        out.append(Hole(size, offset))
        self.offset += size
        if state == DRAIN and size <= self._pdu_remaining:
            self._pdu_remaining -= size
            if self._pdu_remaining == 0:
                self._state = HEADER
            return out
        if state == SKIP and size <= self._pdu_remaining:
            self._pdu_remaining -= size
            if self._pdu_remaining == 0:
                self._state = HEADER
                out.append(_PDU_END)
            return out
        if state == SCAN:
            self._carry = b""  # whatever they began is cut by the hole
            return out
        out.append(LostSync(offset))
        self._enter_scan(self.offset, strict=False)
        return out

    # --- the loop ----------------------------------------------------------------------

    def _join_carry(self, data: memoryview, pos: int, base: int, out: list[FramerRecord]) -> int:
        """Look for a PDU starting in the carried bytes, with the first bytes of ``data``
        after them (from ``pos``) to tell; returns where to go on in ``data``.

        Only a few dozen bytes are joined: past the carried bytes, the scan goes on in
        ``data`` itself."""
        carry, carry_offset = self._carry, self._carry_offset
        self._carry = b""
        n = len(data)
        end = min(n, pos + _JOIN)
        small = memoryview(carry + bytes(data[pos:end]))
        if end >= n:  # all of ``data`` is in ``small``
            self._run(small, 0, carry_offset, out)
            return n
        found = self._scan(small, 0, carry_offset, out, len(carry))
        if found is None:  # nothing starts in the carried bytes
            assert not self._carry, "too few bytes joined to the carry"
            return pos
        self._run(small, found, carry_offset, out)
        if not self._carry:
            return end
        # Scanning again: what is carried now lies in ``data``; go on from there.
        resume = self._carry_offset - base
        assert resume >= pos, "the carry moved backwards"
        self._carry = b""
        return resume

    def _run(self, buf: memoryview, pos: int, base: int, out: list[FramerRecord]) -> int:
        """Frame ``buf`` from ``pos``; ``buf[0]`` is at stream offset ``base``.

        Returns ``len(buf)``, or, when a bad header began in an earlier chunk, the position
        in ``buf`` to go on from once the carried bytes it left have been scanned."""
        append = out.append
        n = len(buf)
        while pos < n:
            state = self._state
            if state == PDV_BODY:
                take = self._pdv_remaining
                avail = n - pos
                if take >= avail:
                    take = avail
                    append(_new(PdvChunk, (buf if pos == 0 else buf[pos:], base + pos)))
                else:
                    append(_new(PdvChunk, (buf[pos : pos + take], base + pos)))
                pos += take
                self._pdu_remaining -= take
                self._pdv_remaining -= take
                if self._pdv_remaining == 0:
                    append(_PDV_END)
                    self._after_pdv(out)
            elif state == HEADER:
                hdr = self._hdr
                prior = len(hdr)
                if not prior and n - pos >= 6:
                    pdu_type, _, length = _PDU_HEADER.unpack_from(buf, pos)
                    pos += 6
                else:
                    take = min(6 - prior, n - pos)
                    hdr += buf[pos : pos + take]
                    pos += take
                    if len(hdr) < 6:
                        break
                    split = bytes(hdr)
                    hdr.clear()
                    pdu_type, _, length = _PDU_HEADER.unpack(split)
                start = base + pos - 6
                if not self._start_pdu(pdu_type, length, start, out):
                    # Unframeable: rescan from the byte after the bad header's first byte.
                    carried = split[1:prior] if prior > 1 else b""
                    resume = self._rescan(start + 1, carried, base)
                    if resume is not None:
                        return resume
                    pos = start + 1 - base
            elif state == PDV_HEADER:
                if self._pdu_remaining < 6:
                    self._broken_pdu(base + pos, out)
                    continue
                hdr = self._hdr
                prior = len(hdr)
                if not prior and n - pos >= 6:
                    pdv_len, ctx, control = _PDV_HEADER.unpack_from(buf, pos)
                    pos += 6
                else:
                    take = min(6 - prior, n - pos)
                    hdr += buf[pos : pos + take]
                    pos += take
                    if len(hdr) < 6:
                        break
                    split = bytes(hdr)
                    hdr.clear()
                    pdv_len, ctx, control = _PDV_HEADER.unpack(split)
                self._pdu_remaining -= 6
                start = base + pos - 6
                if pdv_len < 2 or pdv_len - 2 > self._pdu_remaining:
                    append(
                        FramingProblem(
                            "pdv-length-invalid",
                            f"PDV length {pdv_len} does not fit the {self._pdu_remaining + 4} "
                            "byte(s) left in its P-DATA-TF",
                            start,
                        )
                    )
                    append(LostSync(start))
                    # Rescan from the PDV header itself.
                    carried = split[:prior] if prior else b""
                    resume = self._rescan(start, carried, base)
                    if resume is not None:
                        return resume
                    pos = start - base
                    continue
                if pdv_len % 2:
                    append(
                        FramingProblem(
                            "pdv-length-odd",
                            f"PDV length {pdv_len} is odd (PS3.8 Annex E: fragments have even "
                            "length)",
                            start,
                        )
                    )
                append(_new(PdvStart, (ctx, control, pdv_len, start)))
                self._pdv_remaining = pdv_len - 2
                if self._pdv_remaining == 0:
                    append(_PDV_END)
                    self._after_pdv(out)
                else:
                    self._state = PDV_BODY
            elif state == CONTROL:
                take = min(self._pdu_remaining, n - pos)
                self._body += buf[pos : pos + take]
                pos += take
                self._pdu_remaining -= take
                if self._pdu_remaining == 0:
                    body = bytes(self._body)
                    self._body.clear()
                    self._state = HEADER
                    append(PduBody(self._pdu_type, body))
            elif state in (SKIP, DRAIN):
                take = min(self._pdu_remaining, n - pos)
                pos += take
                self._pdu_remaining -= take
                if self._pdu_remaining == 0:
                    self._state = HEADER
                    if state == SKIP:  # a cut control PDU was ended by PduBodyCut
                        append(_PDU_END)
            else:  # SCAN
                found = self._scan(buf, pos, base, out)
                if found is None:
                    return n
                pos = found
        return n

    def _rescan(self, start: int, carried: bytes, base: int) -> int | None:
        """Scan from stream offset ``start``. ``carried`` are the bytes from there on that came
        in an earlier chunk (the head of a header split across chunks): they are carried, and
        the position in the current chunk to go on from is returned. None when the scan can
        go on in the current chunk itself."""
        self._enter_scan(start, strict=False)
        if not carried:
            return None
        self._carry = carried
        self._carry_offset = start
        return start + len(carried) - base

    def _scan(
        self,
        buf: memoryview,
        pos: int,
        base: int,
        out: list[FramerRecord],
        limit: int | None = None,
    ) -> int | None:
        """Look for a plausible PDU header in ``buf`` from ``pos``: its position (the framer is
        then in sync again), or None when ``buf`` holds none (what may begin one is carried).
        With ``limit``, only a header starting before it counts, and nothing is carried."""
        strict = self._strict
        n = len(buf)
        search_from = pos
        candidates: tuple[int, ...]
        while True:
            if strict:
                m = _STRICT_NEEDLE.search(buf, search_from)
                if m is not None:
                    k = m.start()
                    search_from = k + 1
                    # A command set's P-DATA-TF 13 bytes before; a release or abort PDU 2.
                    if k < 2 or buf[k - 1] != 0:
                        candidates = ()
                    elif 5 <= buf[k - 2] <= 7:
                        candidates = (k - 13, k - 2)
                    else:
                        candidates = (k - 13,)
            else:
                m = _RELAXED.search(buf, search_from)
                if m is not None:
                    search_from = m.start() + 1
                    candidates = (m.start(),)
            if m is None or (limit is not None and search_from - 1 >= limit + 13):
                if limit is None:
                    keep = min(_SCAN_KEEP, n - pos)
                    self._carry = bytes(buf[n - keep : n])
                    self._carry_offset = base + n - keep
                return None
            for p in candidates:
                if p < pos or (limit is not None and p >= limit):
                    continue
                verdict = plausible_header(buf, p, strict)
                if verdict is None:
                    # Need more bytes: carry from this candidate on, and whatever later
                    # candidates (found with more bytes) could start before it.
                    p = max(pos, min(p, n - _SCAN_KEEP))
                    self._carry = bytes(buf[p:n])
                    self._carry_offset = base + p
                    return None
                if verdict:
                    found_at = base + p
                    self._state = HEADER
                    out.append(Resynced(found_at, found_at - self._scan_start))
                    return p

    # --- PDUs --------------------------------------------------------------------------

    def _after_pdv(self, out: list[FramerRecord]) -> None:
        if self._pdu_remaining == 0:
            self._state = HEADER
            out.append(_PDU_END)
        else:
            self._state = PDV_HEADER

    def _broken_pdu(self, offset: int, out: list[FramerRecord]) -> None:
        """Fewer than 6 bytes are left in a P-DATA-TF: they cannot hold a PDV."""
        out.append(
            FramingProblem(
                "pdu-trailing-bytes",
                f"{self._pdu_remaining} byte(s) at the end of a P-DATA-TF do not form a PDV",
                offset,
            )
        )
        self._hdr.clear()
        if self._pdu_remaining:
            self._state = SKIP
        else:
            self._state = HEADER
            out.append(_PDU_END)

    def _start_pdu(self, pdu_type: int, length: int, start: int, out: list[FramerRecord]) -> bool:
        """Dispatch on a PDU header; False when it cannot be framed."""
        append = out.append
        append(_new(PduStart, (pdu_type, length, start)))
        self._pdu_type = pdu_type
        self._pdu_remaining = length
        if pdu_type == 4:
            if length < 6:
                append(
                    FramingProblem(
                        "pdu-length-invalid",
                        f"P-DATA-TF of length {length} cannot hold a PDV",
                        start,
                    )
                )
                self._state = SKIP if length else HEADER
                if not length:
                    append(_PDU_END)
                return True
            self._state = PDV_HEADER
            return True
        if not 1 <= pdu_type <= 7:
            append(FramingProblem("unknown-pdu-type", f"unknown PDU type 0x{pdu_type:02X}", start))
            if length > UNKNOWN_PDU_LIMIT:
                append(LostSync(start))
                return False
            # A short PDU of an unknown type: step over it by its length and stay in sync.
            self._state = SKIP if length else HEADER
            if not length:
                append(_PDU_END)
            return True
        limit = CONTROL_PDU_LIMIT if pdu_type in (1, 2) else 1024
        if length > limit:
            append(
                FramingProblem(
                    "pdu-length-invalid",
                    f"{pdu_name(pdu_type)} declares {length} bytes; no such PDU is that long",
                    start,
                )
            )
            append(LostSync(start))
            return False
        if length == 0:
            self._state = HEADER
            append(PduBody(pdu_type, b""))
            return True
        self._state = CONTROL
        return True

    def _enter_scan(self, offset: int, *, strict: bool) -> None:
        self._state = SCAN
        self._strict = strict
        self._hdr.clear()
        self._body.clear()
        self._carry = b""
        self._scan_start = offset
