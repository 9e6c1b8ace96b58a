"""``export --redact phi``: each data set de-identified in its spool before it is written.

Every value of the Basic Profile's attributes is replaced in place by one of the same length
and VR (:mod:`analyzer.redact.values`), UIDs consistently across the export
(:class:`~analyzer.redact.uids.UidMap`), so the data set keeps its structure and every
offset; large values of those attributes (a private blob, an encapsulated document) are
zeroed. Pixel data is kept, as the Basic Profile keeps it. The spool is walked and patched
through its file, a megabyte at a time.
"""

from __future__ import annotations

import os

from analyzer.redact.uids import UidMap
from analyzer.redact.values import replacement
from analyzer.redact.walk import DataSetWalker
from dissectors.dimse.dataset import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
)

from .spool import Spool

_CHUNK = 1 << 20


def deidentify(spool: Spool, transfer_syntax: str, uids: UidMap) -> str | None:
    """Replace the spooled data set's PHI values in place; None when done, else why it
    could not be (the data set must then not be written)."""
    if transfer_syntax == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN:
        return "a deflated data set cannot be de-identified in place"
    if not spool.complete:
        return "an incomplete data set cannot be walked to de-identify it"
    walker = DataSetWalker(
        implicit=transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN,
        little=transfer_syntax != EXPLICIT_VR_BIG_ENDIAN,
    )
    f = spool.file
    f.flush()
    f.seek(0)
    hidden: list[tuple[int, str, bytes]] = []
    edits: list[tuple[int, bytes | int]] = []
    while chunk := f.read(_CHUNK):
        for e in walker.feed(chunk):
            if not e.hidden:
                continue
            if e.value is not None:
                hidden.append((e.offset, e.vr, e.value))
            else:
                edits.append((e.offset, e.length))
        if walker.broken is not None:
            return f"its encoding cannot be read ({walker.broken})"
    # Every value this data set hides is known before its UIDs are replaced: no new
    # pseudonym may spell one of them by chance (a time inside 60 drawn digits).
    uids.avoid(value for _, _, value in hidden)
    for offset, vr, value in hidden:
        new = replacement(vr, value, uids)
        if new != value:
            edits.append((offset, new))
    for offset, what in edits:
        f.seek(offset)
        if isinstance(what, bytes):
            f.write(what)
        else:
            left = min(what, spool.length - offset)
            while left > 0:
                n = min(left, _CHUNK)
                f.write(bytes(n))
                left -= n
    f.flush()
    f.seek(0, os.SEEK_END)
    return None
