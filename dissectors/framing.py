"""Streaming PDU framing for one direction of a connection.

The framer turns an ordered byte stream (with possible holes) into PDU and PDV boundaries.
Association, release and abort PDUs are short and are handed over whole; a P-DATA-TF is
never buffered: its PDV headers are parsed and its payload is passed through as memoryview
slices, so a PDU that claims 4 GB costs nothing but a counter. A declared length is never
used to allocate.

When the stream makes no sense (unknown PDU type, a PDV that overruns its PDU, a hole in the
capture that swallowed a header) the framer reports it and *scans* for the next plausible
PDU header. A capture that starts mid-connection begins in a strict scan, which accepts only
a P-DATA-TF carrying the start of a command set (group 0000 group length, always Implicit VR
Little Endian), or an exact A-RELEASE or A-ABORT PDU.
"""

from __future__ import annotations

import re
from typing import Protocol

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

_COMMAND_START = b"\x00\x00\x00\x00\x04\x00\x00\x00"  # (0000,0000) UL, length 4
_STRICT = re.compile(
    re.escape(_COMMAND_START)
    + rb"|[\x05\x06]\x00\x00\x00\x00\x04\x00\x00\x00\x00"
    + rb"|\x07\x00\x00\x00\x00\x04\x00\x00[\x00-\x02][\x00-\x06]"
)
_RELAXED = re.compile(rb"[\x01-\x07]\x00")

HEADER, CONTROL, PDV_HEADER, PDV_BODY, SKIP, SCAN = range(6)


class FramerHandler(Protocol):
    """What the framer reports; implemented by the association observer."""

    def pdu_header(
        self, pdu_type: int, length: int, offset: int, ts: int, frame: int | None
    ) -> None:
        """A PDU header was read (any type, including undefined ones)."""

    def control_pdu(self, pdu_type: int, body: bytes, ts: int, frame: int | None) -> None:
        """The whole body of an association, release or abort PDU (types 1-3, 5-7) arrived."""

    def pdv_start(
        self, context_id: int, control: int, length: int, ts: int, frame: int | None
    ) -> None:
        """A PDV header was read; ``length`` is the PDV item length (data + 2)."""

    def pdv_data(self, data: memoryview) -> None:
        """Payload bytes of the current PDV."""

    def pdv_lost(self, size: int) -> None:
        """Payload bytes of the current PDV are missing from the capture."""

    def pdv_end(self, ts: int, frame: int | None) -> None:
        """The current PDV is complete."""

    def pdu_end(self, ts: int, frame: int | None) -> None:
        """The current P-DATA-TF (or skipped PDU) is complete."""

    def framing_problem(
        self, code: str, text: str, offset: int, ts: int, frame: int | None
    ) -> None:
        """The stream broke PS3.8 framing at ``offset``."""

    def lost_sync(self, offset: int, ts: int, frame: int | None) -> None:
        """The framer no longer knows where PDUs start; it scans from ``offset``."""

    def resynced(self, offset: int, skipped: int, ts: int, frame: int | None) -> None:
        """A plausible PDU header was found at ``offset`` after ``skipped`` bytes."""


def plausible_header(buf: bytes | bytearray, p: int, strict: bool) -> bool | None:
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
        return buf[p + 12 : p + 20] == _COMMAND_START
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
    body = buf[p + 6 : p + 10]
    if pdu_type in (5, 6):
        return body == b"\x00\x00\x00\x00"
    if pdu_type == 7:
        return body[2] <= 2 and body[3] <= 6
    # A-ASSOCIATE-RJ
    return body[1] in (1, 2) and 1 <= body[2] <= 3 and not strict


class PduFramer:
    """Frames one direction. Feed it bytes in stream order with :meth:`feed` and holes with
    :meth:`gap`; it calls back into a :class:`FramerHandler`."""

    __slots__ = (
        "_body",
        "_h",
        "_hdr",
        "_pdu_remaining",
        "_pdu_type",
        "_pdv_remaining",
        "_scan",
        "_scan_offset",
        "_scan_start",
        "_state",
        "_strict",
        "offset",
    )

    def __init__(self, handler: FramerHandler, *, synced: bool = True) -> None:
        self._h = handler
        self._state = HEADER if synced else SCAN
        self._strict = not synced
        self._hdr = bytearray()
        self._body = bytearray()
        self._pdu_type = 0
        self._pdu_remaining = 0
        self._pdv_remaining = 0
        self._scan = bytearray()
        self._scan_offset = 0
        self._scan_start = 0
        self.offset = 0

    def feed(self, data: memoryview, ts: int, frame: int | None) -> None:
        """Process the next bytes of the stream."""
        h = self._h
        pos = 0
        n = len(data)
        while pos < n:
            state = self._state
            if state == PDV_BODY:
                take = self._pdv_remaining
                if take > n - pos:
                    take = n - pos
                h.pdv_data(data[pos : pos + take])
                pos += take
                self._pdv_remaining -= take
                self._pdu_remaining -= take
                if self._pdv_remaining == 0:
                    self.offset += pos
                    n -= pos
                    data = data[pos:]
                    pos = 0
                    h.pdv_end(ts, frame)
                    self._after_pdv(ts, frame)
            elif state == HEADER:
                header, pos = self._header(data, pos)
                if header is None:
                    break
                pdu_type, _, length = _PDU_HEADER.unpack(header)
                self.offset += pos
                data = data[pos:]
                n -= pos
                pos = 0
                if not self._start_pdu(pdu_type, length, ts, frame):
                    # Unframeable: rescan from the byte after the bad header's first byte.
                    self._enter_scan(self.offset - 5, strict=False)
                    self._scan_feed(header[1:] + bytes(data), ts, frame)
                    return
            elif state == PDV_HEADER:
                if self._pdu_remaining < 6:
                    self._broken_pdu(ts, frame)
                    continue
                header, pos = self._header(data, pos)
                if header is None:
                    break
                pdv_len, ctx, control = _PDV_HEADER.unpack(header)
                self._pdu_remaining -= 6
                self.offset += pos
                data = data[pos:]
                n -= pos
                pos = 0
                if pdv_len < 2 or pdv_len - 2 > self._pdu_remaining:
                    h.framing_problem(
                        "pdv-length-invalid",
                        f"PDV length {pdv_len} does not fit the {self._pdu_remaining + 4} "
                        "byte(s) left in its P-DATA-TF",
                        self.offset - 6,
                        ts,
                        frame,
                    )
                    h.lost_sync(self.offset - 6, ts, frame)
                    self._enter_scan(self.offset - 6, strict=False)
                    self._scan_feed(header + bytes(data), ts, frame)
                    return
                if pdv_len % 2:
                    h.framing_problem(
                        "pdv-length-odd",
                        f"PDV length {pdv_len} is odd (PS3.8 Annex E: fragments have even length)",
                        self.offset - 6,
                        ts,
                        frame,
                    )
                self._pdv_remaining = pdv_len - 2
                h.pdv_start(ctx, control, pdv_len, ts, frame)
                if self._pdv_remaining == 0:
                    h.pdv_end(ts, frame)
                    self._after_pdv(ts, frame)
                else:
                    self._state = PDV_BODY
            elif state == CONTROL:
                take = min(self._pdu_remaining, n - pos)
                self._body += data[pos : pos + take]
                pos += take
                self._pdu_remaining -= take
                if self._pdu_remaining == 0:
                    self.offset += pos
                    data = data[pos:]
                    n -= pos
                    pos = 0
                    body = bytes(self._body)
                    self._body.clear()
                    self._state = HEADER
                    h.control_pdu(self._pdu_type, body, ts, frame)
            elif state == SKIP:
                take = min(self._pdu_remaining, n - pos)
                pos += take
                self._pdu_remaining -= take
                if self._pdu_remaining == 0:
                    self.offset += pos
                    data = data[pos:]
                    n -= pos
                    pos = 0
                    self._state = HEADER
                    h.pdu_end(ts, frame)
            else:  # SCAN
                self.offset += pos
                self._scan_feed(bytes(data[pos:]), ts, frame)
                return
        self.offset += pos

    def _header(self, data: memoryview, pos: int) -> tuple[bytes | None, int]:
        """The next 6-byte header (PDU or PDV), from ``data`` or completing a split one;
        None when ``data`` ends before it does (the part seen is kept)."""
        if not self._hdr and len(data) - pos >= 6:
            return bytes(data[pos : pos + 6]), pos + 6
        take = min(6 - len(self._hdr), len(data) - pos)
        self._hdr += data[pos : pos + take]
        if len(self._hdr) < 6:
            return None, pos + take
        header = bytes(self._hdr)
        self._hdr.clear()
        return header, pos + take

    def _after_pdv(self, ts: int, frame: int | None) -> None:
        if self._pdu_remaining == 0:
            self._state = HEADER
            self._h.pdu_end(ts, frame)
        else:
            self._state = PDV_HEADER

    def _broken_pdu(self, ts: int, frame: int | None) -> None:
        """Fewer than 6 bytes are left in a P-DATA-TF: they cannot hold a PDV."""
        self._h.framing_problem(
            "pdu-trailing-bytes",
            f"{self._pdu_remaining} byte(s) at the end of a P-DATA-TF do not form a PDV",
            self.offset,
            ts,
            frame,
        )
        self._hdr.clear()
        if self._pdu_remaining:
            self._state = SKIP
        else:
            self._state = HEADER
            self._h.pdu_end(ts, frame)

    def _start_pdu(self, pdu_type: int, length: int, ts: int, frame: int | None) -> bool:
        """Dispatch on a PDU header; False when it cannot be framed."""
        h = self._h
        start = self.offset - 6
        h.pdu_header(pdu_type, length, start, ts, frame)
        self._pdu_type = pdu_type
        self._pdu_remaining = length
        if pdu_type == 4:
            if length < 6:
                h.framing_problem(
                    "pdu-length-invalid",
                    f"P-DATA-TF of length {length} cannot hold a PDV",
                    start,
                    ts,
                    frame,
                )
                self._state = SKIP if length else HEADER
                if not length:
                    h.pdu_end(ts, frame)
                return True
            self._state = PDV_HEADER
            return True
        if not 1 <= pdu_type <= 7:
            h.framing_problem(
                "unknown-pdu-type", f"unknown PDU type 0x{pdu_type:02X}", start, ts, frame
            )
            if length > UNKNOWN_PDU_LIMIT:
                h.lost_sync(start, ts, frame)
                return False
            # A short PDU of an unknown type: step over it by its length and stay in sync.
            self._state = SKIP if length else HEADER
            if not length:
                h.pdu_end(ts, frame)
            return True
        limit = CONTROL_PDU_LIMIT if pdu_type in (1, 2) else 1024
        if length > limit:
            h.framing_problem(
                "pdu-length-invalid",
                f"{pdu_name(pdu_type)} declares {length} bytes; no such PDU is that long",
                start,
                ts,
                frame,
            )
            h.lost_sync(start, ts, frame)
            return False
        if length == 0:
            self._state = HEADER
            h.control_pdu(pdu_type, b"", ts, frame)
            return True
        self._state = CONTROL
        return True

    def gap(self, size: int, ts: int, frame: int | None) -> None:
        """``size`` bytes of the stream are missing here."""
        h = self._h
        if self._state == PDV_BODY and size <= self._pdv_remaining:
            h.pdv_lost(size)
            self._pdv_remaining -= size
            self._pdu_remaining -= size
            self.offset += size
            if self._pdv_remaining == 0:
                h.pdv_end(ts, frame)
                self._after_pdv(ts, frame)
            return
        if self._state == SKIP and size <= self._pdu_remaining:
            self._pdu_remaining -= size
            self.offset += size
            if self._pdu_remaining == 0:
                self._state = HEADER
                h.pdu_end(ts, frame)
            return
        if self._state == SCAN:
            self._scan.clear()
            self.offset += size
            self._scan_offset = self.offset
            return
        h.lost_sync(self.offset, ts, frame)
        self.offset += size
        self._enter_scan(self.offset, strict=False)

    def _enter_scan(self, offset: int, *, strict: bool) -> None:
        self._state = SCAN
        self._strict = strict
        self._hdr.clear()
        self._body.clear()
        self._scan.clear()
        self._scan_offset = offset
        self._scan_start = offset

    def _scan_feed(self, data: bytes, ts: int, frame: int | None) -> None:
        buf = self._scan
        buf += data
        pattern = _STRICT if self._strict else _RELAXED
        pos = 0
        while True:
            m = pattern.search(buf, pos)
            if m is None:
                break
            p = m.start()
            if self._strict and buf[p : p + 8] == _COMMAND_START:
                p -= 12  # the command set starts 12 bytes into its P-DATA-TF
                if p < 0:
                    pos = m.start() + 1
                    continue
            verdict = plausible_header(buf, p, self._strict)
            if verdict is None:
                # Need more bytes; keep from this candidate on.
                del buf[:p]
                self._scan_offset += p
                self.offset = self._scan_offset + len(buf)
                return
            if verdict:
                skipped = self._scan_offset + p - self._scan_start
                found_at = self._scan_offset + p
                rest = bytes(buf[p:])
                buf.clear()
                self._state = HEADER
                self.offset = found_at
                self._h.resynced(found_at, skipped, ts, frame)
                self.feed(memoryview(rest), ts, frame)
                return
            pos = m.start() + 1
        keep = min(len(buf), _SCAN_KEEP)
        drop = len(buf) - keep
        del buf[:drop]
        self._scan_offset += drop
        self.offset = self._scan_offset + len(buf)
