"""The data set walker finds every PHI value where pydicom wrote it, however the bytes are
split, in every uncompressed transfer syntax, through nested and undefined-length sequences."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence

from analyzer.redact.walk import DataSetWalker, Element

SYNTAXES = {"implicit": (True, True), "explicit": (False, True), "big": (False, False)}


def sample(undefined: bool = False, encapsulated: bool = False) -> Dataset:
    ds = Dataset()
    ds.PatientName = "DOE^JANE"
    ds.PatientID = "PID-0001"
    ds.PatientBirthDate = "19700101"
    ds.Modality = "CT"
    ds.SOPInstanceUID = "1.2.3.4.5.6"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ref.ReferencedSOPInstanceUID = "1.2.3.4.5.7"
    ds.ReferencedImageSequence = Sequence([ref])
    code = Dataset()
    code.CodeValue = "T-04000"
    inner = Dataset()
    inner.InstitutionName = "GENERAL HOSPITAL"
    code.RequestAttributesSequence = Sequence([inner])
    ds.AnatomicRegionSequence = Sequence([code])
    ds.add_new(0x00091010, "LO", "PRIVATE SECRET")
    ds.Rows = 2
    ds.Columns = 2
    if encapsulated:
        ds.PixelData = encapsulate([b"\x01\x02\x03\x04", b"\x05\x06"])
        ds["PixelData"].is_undefined_length = True
        ds["PixelData"].VR = "OB"
    else:
        ds.PixelData = b"\x00\x01\x02\x03\x04\x05\x06\x07"
        ds["PixelData"].VR = "OW"
    if undefined:
        for kw in ("ReferencedImageSequence", "AnatomicRegionSequence"):
            ds[kw].is_undefined_length = True
            for item in ds[kw].value:
                item.is_undefined_length_sequence_item = True
        code["RequestAttributesSequence"].is_undefined_length = True
    return ds


def encode(ds: Dataset, implicit: bool, little: bool) -> bytes:
    buf = DicomBytesIO()
    buf.is_implicit_VR = implicit
    buf.is_little_endian = little
    write_dataset(buf, ds)
    return buf.getvalue()


def walk(data: bytes, implicit: bool, little: bool, cuts: list[int]) -> list[Element]:
    w = DataSetWalker(implicit=implicit, little=little)
    out: list[Element] = []
    prev = 0
    for cut in [*sorted(cuts), len(data)]:
        out += w.feed(data[prev:cut])
        prev = cut
    assert w.broken is None, w.broken
    assert w.offset == len(data)
    return out


@pytest.mark.parametrize("syntax", SYNTAXES)
@pytest.mark.parametrize("undefined", [False, True])
def test_every_phi_value_found_at_its_offset(syntax: str, undefined: bool) -> None:
    implicit, little = SYNTAXES[syntax]
    encapsulated = not implicit and little
    data = encode(sample(undefined, encapsulated), implicit, little)
    found = walk(data, implicit, little, [])
    hidden = {e.tag: e for e in found if e.hidden}
    for tag, text in [
        (0x00100010, b"DOE^JANE"),
        (0x00100020, b"PID-0001"),
        (0x00100030, b"19700101"),
        (0x00080080, b"GENERAL HOSPITAL"),
        (0x00091010, b"PRIVATE SECRET"),
    ]:
        e = hidden[tag]
        assert data[e.offset : e.offset + e.length].rstrip(b" \0") == text
        assert e.value is not None and e.value.rstrip(b" \0") == text
    assert hidden[0x00080018].value == b"1.2.3.4.5.6\0"
    # Inside the Referenced Image Sequence (X/Z/U*): both UIDs are hidden.
    assert hidden[0x00081155].value == b"1.2.3.4.5.7\0"
    assert 0x00081150 in hidden
    # Attributes the profile keeps are not reported.
    assert 0x00080060 not in hidden and 0x00080016 not in hidden and 0x00080100 not in hidden
    pixels = [e for e in found if e.tag == 0x7FE00010]
    if encapsulated:
        frags = [data[e.offset : e.offset + e.length] for e in pixels if e.fragment]
        assert frags[-2:] == [b"\x01\x02\x03\x04", b"\x05\x06"]
    else:
        assert data[pixels[0].offset : pixels[0].offset + 8] == b"\x00\x01\x02\x03\x04\x05\x06\x07"


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(list(SYNTAXES)), st.booleans(), st.lists(st.integers(0, 400), max_size=12))
def test_splitting_never_changes_what_is_found(
    syntax: str, undefined: bool, cuts: list[int]
) -> None:
    implicit, little = SYNTAXES[syntax]
    data = encode(sample(undefined), implicit, little)
    cuts = [c for c in cuts if c <= len(data)]
    assert walk(data, implicit, little, cuts) == walk(data, implicit, little, [])


def test_one_byte_at_a_time() -> None:
    data = encode(sample(True), False, True)
    assert walk(data, False, True, list(range(len(data)))) == walk(data, False, True, [])


@given(st.binary(max_size=300), st.booleans())
def test_arbitrary_bytes_never_raise(data: bytes, implicit: bool) -> None:
    w = DataSetWalker(implicit=implicit)
    w.feed(data)
    w.finish()
    assert len(data) - 12 < w.offset <= len(data)  # a header being read is not counted yet


def test_overrun_breaks_the_walk() -> None:
    data = encode(sample(), False, True)
    i = data.index(b"SQ\x00\x00") + 4  # the first sequence's 32-bit length
    bad = data[:i] + b"\xff\xff\xff\x7f" + data[i + 4 :]
    w = DataSetWalker(implicit=False)
    w.feed(bad)
    assert w.broken is not None


def test_a_cut_value_is_reported_by_finish() -> None:
    data = encode(sample(), False, True)
    i = data.index(b"DOE^")
    w = DataSetWalker(implicit=False)
    assert not [e for e in w.feed(data[: i + 3]) if e.tag == 0x00100010]
    (cut,) = w.finish()
    assert cut.tag == 0x00100010 and cut.length == 3 and cut.value == b"DOE"
