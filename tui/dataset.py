"""Data set trees: labels for pydicom elements, decoded lazily (headless: no Textual).

The model keeps the start of each data set (up to Pixel Data) and decodes it on demand
with the negotiated transfer syntax (:meth:`DataSetInfo.decode`, reached through the
:class:`~analyzer.model.DimseMessage` the model hands us). Nothing here reads wire bytes.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from analyzer import redact
from analyzer.model import DimseMessage
from analyzer.names import uid_name
from analyzer.reports.common import size_text

VALUE_WIDTH = 72
"""Characters of a value shown in a tree label."""


def decode(msg: DimseMessage) -> tuple[Dataset | None, str]:
    """The message's data set, decoded, and a one-line description (or why not)."""
    info = msg.dataset
    if info is None:
        return None, "no data set"
    what = describe(msg)
    if not info.kept:
        return None, f"{what}: nothing kept"
    try:
        ds = redact.dataset(info.decode())
    except Exception as exc:  # a damaged or cut data set is shown, not fatal
        return None, f"{what}: cannot decode the kept bytes ({type(exc).__name__}: {exc})"
    return ds, what


def describe(msg: DimseMessage) -> str:
    """``9180 B, Explicit VR Little Endian, first 988 B kept``: what the model holds of the
    message's data set (without decoding it)."""
    info = msg.dataset
    if info is None:
        return "no data set"
    what = f"{size_text(info.length)}, {uid_name(info.transfer_syntax)}"
    if info.sniffed:
        what += " (guessed)"
    if info.truncated:
        what += f", first {size_text(len(info.kept))} kept"
    if not info.complete:
        what += f", incomplete ({size_text(info.missing_bytes)} missing)"
    return what


def label(elem: DataElement) -> str:
    """``(0010,0010) PN PatientName: DOE^JOHN``."""
    tag = f"({elem.tag.group:04X},{elem.tag.element:04X})"
    name = elem.keyword or elem.name or "Unknown"
    if elem.VR == "SQ":
        n = len(elem.value) if elem.value is not None else 0
        return f"{tag} SQ {name}: {n} item{'s' if n != 1 else ''}"
    return f"{tag} {elem.VR} {name}: {value_text(elem)}"


def value_text(elem: DataElement) -> str:
    """The value of a non-sequence element, shortened for one line."""
    value = elem.value
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if elem.VR == "UI":
        name = uid_name(str(value))
        text = str(value) if name == str(value) else f"{value} ({name})"
    else:
        text = str(value)
    text = text.replace("\n", " ").replace("\r", " ")
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 1] + "…"


def items(elem: DataElement) -> Iterator[tuple[str, Dataset]]:
    """``(label, item)`` for each item of a sequence element."""
    for i, item in enumerate(elem.value or (), 1):
        yield f"Item {i} ({len(item)} element{'s' if len(item) != 1 else ''})", item
