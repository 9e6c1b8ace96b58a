"""Data sets carried by DIMSE messages: what is kept, transfer syntax sniffing, lazy decoding.

Bulk data is never held: the assembler keeps the first part of each data set (up to Pixel
Data, at most a configurable number of bytes) and counts the rest. Decoding that prefix
with pydicom happens only when someone asks for it.
"""

from __future__ import annotations

import warnings
import zlib
from dataclasses import dataclass, field
from io import BytesIO

from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"

PIXEL_DATA_TAG = 0x7FE00010
_PIXEL_DATA_LE = b"\xe0\x7f\x10\x00"
_PIXEL_DATA_BE = b"\x7f\xe0\x00\x10"

_VRS = frozenset(
    b"AE AS AT CS DA DS DT FL FD IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN "
    b"UR US UT UV".split()
)


@dataclass(frozen=True, slots=True)
class DataSetInfo:
    """What is known of one data set without holding it.

    ``length`` counts the bytes on the wire (compressed for deflate). ``kept`` is the start
    of the (inflated) encoding, cut after the Pixel Data header. ``transfer_syntax`` is the
    negotiated one, or the sniffed one when ``sniffed`` is True (capture began mid-association).
    """

    length: int
    transfer_syntax: str | None
    kept: bytes = field(repr=False)
    complete: bool = True
    missing_bytes: int = 0
    sniffed: bool = False
    encoded_as: str | None = None
    """Set when the bytes do not match the negotiated transfer syntax: what they look like."""

    @property
    def truncated(self) -> bool:
        """True when ``kept`` is only the start of the encoding."""
        return (
            len(self.kept) < self.length
            or self.transfer_syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN
        )

    def decode(self) -> Dataset:
        """Decode the kept part with pydicom, stopping before Pixel Data."""
        return decode_dataset(self.kept, self.transfer_syntax)


def sniff_transfer_syntax(data: bytes) -> str | None:
    """Guess the transfer syntax from the first element of a data set.

    Explicit VR shows two upper-case VR letters after the tag; big endian shows a group
    number byte-swapped; anything else that is not a plausible element is taken as
    deflated. Returns None when there is too little data to tell.
    """
    if len(data) < 8:
        return None
    group_le = data[0] | (data[1] << 8)
    group_be = (data[0] << 8) | data[1]
    vr = bytes(data[4:6])
    if vr in _VRS:
        if group_le <= 0x00FF or group_le <= group_be:
            return EXPLICIT_VR_LITTLE_ENDIAN
        return EXPLICIT_VR_BIG_ENDIAN
    if (group_le % 2 == 0 and 0x0002 <= group_le <= 0x7FE0) or group_le in (0xFFFE,):
        return IMPLICIT_VR_LITTLE_ENDIAN
    try:
        zlib.decompressobj(-zlib.MAX_WBITS).decompress(bytes(data), 16)
    except zlib.error:
        return None
    return DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN


def _stop_at_pixel_data(tag: object, vr: object, length: object) -> bool:
    return tag == PIXEL_DATA_TAG


def decode_dataset(kept: bytes, transfer_syntax: str | None) -> Dataset:
    """Decode the start of a data set; what is cut off is simply absent."""
    if transfer_syntax is None:
        transfer_syntax = sniff_transfer_syntax(kept) or IMPLICIT_VR_LITTLE_ENDIAN
    implicit = transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN
    little = transfer_syntax != EXPLICIT_VR_BIG_ENDIAN
    with warnings.catch_warnings():
        # A prefix usually ends inside an element; pydicom warns and returns what it read.
        warnings.simplefilter("ignore")
        try:
            ds = read_dataset(BytesIO(kept), implicit, little, stop_when=_stop_at_pixel_data)
        except Exception:
            return Dataset()
        _materialise(ds)
    return ds


def _materialise(ds: Dataset) -> None:
    """Convert every element now, the items of sequences included, while warnings are
    silenced: pydicom converts lazily, so a cut or crafted value (a wrong length, an unknown
    VR, a damaged item) would otherwise raise later, in whatever displays it. Such an element
    is dropped; the rest stands. A loop, not recursion: items nest as deep as bytes allow."""
    pending = [ds]
    while pending:
        current = pending.pop()
        for tag in list(current.keys()):
            try:
                elem = current[tag]
                value = elem.value
                items = list(value) if elem.VR == "SQ" and value is not None else []
            except Exception:
                del current[tag]
                continue
            pending.extend(items)


class DataSetCollector:
    """Counts a data set's bytes and keeps its start (inflating deflated ones)."""

    __slots__ = ("_inflater", "_keep", "kept", "length", "missing", "transfer_syntax")

    def __init__(self, transfer_syntax: str | None, keep: int) -> None:
        self.transfer_syntax = transfer_syntax
        self._keep = keep
        self.kept = bytearray()
        self.length = 0
        self.missing = 0
        self._inflater = (
            zlib.decompressobj(-zlib.MAX_WBITS)
            if transfer_syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN
            else None
        )

    def add(self, data: memoryview) -> None:
        self.length += len(data)
        room = self._keep - len(self.kept)
        if room <= 0:
            return
        if self._inflater is not None:
            try:
                self.kept += self._inflater.decompress(data, room)
            except zlib.error:
                self._inflater = None
                self._keep = 0
            return
        self.kept += data[:room]

    def lost(self, size: int) -> None:
        """Bytes of this data set were missing from the capture."""
        self.missing += size
        self.length += size
        self._keep = 0  # what follows a hole cannot be decoded

    def finish(self, complete: bool) -> DataSetInfo:
        kept = bytes(self.kept)
        ts = self.transfer_syntax
        sniffed = False
        if ts is None:
            ts = sniff_transfer_syntax(kept)
            sniffed = ts is not None
        encoded_as = None
        if not sniffed and ts is not None and ts != DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
            looks = sniff_transfer_syntax(kept)
            if looks is not None and _vr_family(looks) != _vr_family(ts):
                encoded_as = looks
        if ts != DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
            kept = _cut_after_pixel_data(kept, ts)
        return DataSetInfo(
            length=self.length,
            transfer_syntax=ts,
            kept=kept,
            complete=complete and self.missing == 0,
            missing_bytes=self.missing,
            sniffed=sniffed,
            encoded_as=encoded_as,
        )


def _vr_family(ts: str) -> str:
    """How a transfer syntax encodes elements: implicit LE, explicit BE, or explicit LE (all
    the others, compressed ones included; deflate is told apart by the caller)."""
    if ts == IMPLICIT_VR_LITTLE_ENDIAN:
        return "implicit"
    if ts == EXPLICIT_VR_BIG_ENDIAN:
        return "big"
    if ts == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
        return "deflate"
    return "explicit"


def _cut_after_pixel_data(kept: bytes, ts: str | None) -> bytes:
    """Drop what follows the Pixel Data element header (the bulk)."""
    pattern = _PIXEL_DATA_BE if ts == EXPLICIT_VR_BIG_ENDIAN else _PIXEL_DATA_LE
    at = kept.find(pattern)
    while at != -1 and at % 2:
        at = kept.find(pattern, at + 1)
    if at == -1:
        return kept
    return kept[: at + 12]
