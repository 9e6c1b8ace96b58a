"""``--redact phi``: what dicomtap prints or writes, without the PHI of the data it read.

The attributes are those of the PS3.15 Basic Application Level Confidentiality Profile
(:mod:`analyzer.redact.profile`), in command sets (Affected and Requested SOP Instance UID)
and data sets (names, IDs, dates, institution, accession number, free text, private
attributes...). When redaction is on (:func:`redact_phi`, set once by the command line), the
outputs ask this module for what to show:

- :func:`uid` turns an instance UID into a pseudonym: a ``2.25`` UID derived with a key drawn
  for each run, so the same UID reads the same everywhere in one output (exchanges still
  correlate) and cannot be linked across runs;
- :func:`text` turns any other value into :data:`REDACTED`;
- :func:`dataset` gives a copy of a decoded data set for display, every hidden value replaced;
- :func:`mask` blanks the hidden values of an encoded data set or command set (a hex view).

Credentials (the user identity's passcode) are never shown, with or without this option.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import replace
from typing import TypedDict

from pydicom import config
from pydicom._uid_dict import UID_dictionary
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from analyzer.model import Finding
from dissectors.dimse.dataset import (
    EXPLICIT_VR_BIG_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    sniff_transfer_syntax,
)

from .profile import Action, action, is_phi
from .walk import DataSetWalker, Element

__all__ = [
    "REDACTED",
    "Action",
    "action",
    "dataset",
    "encoding",
    "finding",
    "is_phi",
    "mask",
    "phi_redacted",
    "redact_phi",
    "scrub",
    "text",
    "uid",
]

REDACTED = "(redacted)"
"""What a hidden value reads as."""
MASK_BYTE = 0x2A
"""What each byte of a hidden value becomes in a masked encoding (``*``)."""

_state = {"phi": False}
_KEY = secrets.token_bytes(32)


def redact_phi(on: bool = True) -> None:
    """Hide (or show again) PHI in everything rendered from now on in this process."""
    _state["phi"] = on


def phi_redacted() -> bool:
    """Whether PHI is hidden."""
    return _state["phi"]


def pseudonym_uid(value: str) -> str:
    """The ``2.25`` pseudonym of a UID for this run (same UID, same pseudonym)."""
    digest = hmac.new(_KEY, value.encode("ascii", "replace"), hashlib.sha256).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def uid(value: str | None) -> str | None:
    """An instance UID as an output may show it: itself, or its pseudonym under redaction."""
    if value is None or not _state["phi"]:
        return value
    return pseudonym_uid(value)


def text(tag: int, value: str) -> str:
    """The value of ``tag`` as an output may show it (UIDs: see :func:`uid`)."""
    if not _state["phi"] or action(tag) is None:
        return value
    return REDACTED


def dataset(ds: Dataset) -> Dataset:
    """``ds`` itself, or under redaction a copy for display with every hidden value (the
    profile's attributes, and everything inside a sequence that is one) replaced."""
    if not _state["phi"]:
        return ds
    return _redacted(ds, hide_all=False)


def _redacted(ds: Dataset, *, hide_all: bool) -> Dataset:
    out = Dataset()
    for elem in ds:
        hide = hide_all or action(elem.tag) is not None
        if elem.VR == "SQ":
            items = [_redacted(item, hide_all=hide) for item in elem.value or ()]
            out.add(DataElement(elem.tag, "SQ", Sequence(items)))
        elif hide:
            # Built as LO (no conversion of the marker), then shown with its own VR.
            shown = DataElement(elem.tag, "LO", REDACTED, validation_mode=config.IGNORE)
            shown.VR = elem.VR
            out.add(shown)
        else:
            out.add(elem)
    return out


def mask(data: bytes, *, implicit: bool, little: bool = True) -> bytes:
    """``data`` (an encoded data set or command set, or the start of one) with the bytes of
    every hidden value replaced by :data:`MASK_BYTE`; what cannot be walked (a broken or
    unknown encoding) is masked to the end. Unchanged when redaction is off."""
    if not _state["phi"]:
        return data
    walker = DataSetWalker(implicit=implicit, little=little)
    found: list[Element] = walker.feed(data)
    found += walker.finish()
    out = bytearray(data)
    for e in found:
        if e.hidden:
            stop = min(len(out), e.offset + e.length)
            out[e.offset : stop] = bytes([MASK_BYTE]) * max(0, stop - e.offset)
    if walker.broken is not None:
        start = min(walker.offset, len(out))
        out[start:] = bytes([MASK_BYTE]) * (len(out) - start)
    return bytes(out)


class Encoding(TypedDict):
    """How a data set is encoded, as :func:`mask` and :class:`DataSetWalker` take it."""

    implicit: bool
    little: bool


def encoding(data: bytes, transfer_syntax: str | None) -> Encoding:
    """The encoding of a data set in ``transfer_syntax`` (sniffed from ``data`` when None);
    a deflated one is read inflated (Explicit VR Little Endian), as the model keeps it."""
    if transfer_syntax is None:
        transfer_syntax = sniff_transfer_syntax(data) or IMPLICIT_VR_LITTLE_ENDIAN
    return Encoding(
        implicit=transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN,
        little=transfer_syntax != EXPLICIT_VR_BIG_ENDIAN,
    )


#: A UID in running text: four components or more (fewer is a version or an address).
_UID_IN_TEXT = re.compile(r"(?<![\d.])[0-2](?:\.(?:0|[1-9]\d*)){3,}(?![\d.])")


def scrub(text: str) -> str:
    """``text`` with every UID in it that the standard does not define (an instance, a
    transaction...) replaced by its pseudonym; unchanged when redaction is off."""
    if not _state["phi"] or not text:
        return text
    return _UID_IN_TEXT.sub(
        lambda m: m.group(0) if m.group(0) in UID_dictionary else pseudonym_uid(m.group(0)), text
    )


def finding(f: Finding) -> Finding:
    """A finding as an output may show it (UIDs in its text scrubbed under redaction)."""
    if not _state["phi"]:
        return f
    ev = f.evidence
    return replace(
        f,
        title=scrub(f.title),
        explanation=scrub(f.explanation),
        hint=scrub(f.hint),
        evidence=replace(ev, detail=scrub(ev.detail)) if ev.detail else ev,
    )
