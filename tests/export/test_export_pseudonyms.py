"""``export --redact phi`` writes each data set as it goes: the UIDs it replaces are drawn
before later data sets are seen, but never spell a value hidden in their own data set (a
time inside a 60-digit pseudonym happens about once in 200 runs on a small capture)."""

from __future__ import annotations

import tempfile

from pydicom import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from analyzer.export.deidentify import deidentify
from analyzer.export.spool import Spool
from analyzer.redact.uids import UidMap
from dissectors.dimse.dataset import EXPLICIT_VR_LITTLE_ENDIAN

KEY = b"a fixed key for the test"
UID = "1.2.826.0.1.3680043.8.498.12345678901234567890123456"


def _encoded(ds: Dataset) -> bytes:
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, False
    write_dataset(out, ds)
    return out.getvalue()


def _spool(data: bytes) -> Spool:
    spool = Spool(tempfile.TemporaryFile(), 1)  # noqa: SIM115 - closed by the caller
    spool.write(data)
    return spool


def test_a_pseudonym_never_spells_a_time_of_its_data_set() -> None:
    drawn = UidMap(KEY).replace(UID)
    # What the pseudonym would spell, made a time of this data set.
    time = next(
        t
        for t in (drawn[i : i + 6] for i in range(5, len(drawn) - 6))
        if int(t[:2]) < 24 and int(t[2:4]) < 60 and int(t[4:]) < 60
    )
    ds = Dataset()
    ds.StudyTime = time
    ds.SOPInstanceUID = UID
    data = _encoded(ds)
    spool = _spool(data)
    uids = UidMap(KEY)
    with spool.file:
        assert deidentify(spool, EXPLICIT_VR_LITTLE_ENDIAN, uids) is None
        spool.file.seek(0)
        out = spool.file.read()
    assert len(out) == len(data)
    assert time.encode() not in out
    assert UID.encode() not in out
    replaced = uids.pairs()[UID]
    assert replaced != drawn and len(replaced) == len(UID) and replaced.startswith("2.25.")


def test_avoiding_is_bounded_and_ignores_short_values() -> None:
    uids = UidMap(KEY)
    uids.avoid([b"12", b"  ", b"\x00\x00"])
    assert uids.replace(UID) == UidMap(KEY).replace(UID)  # nothing to avoid: same draw
    many = UidMap(KEY)
    many.avoid(str(n).encode() * 2 for n in range(1000, 100_000))
    assert len(many.replace(UID)) == len(UID)  # and it still answers
