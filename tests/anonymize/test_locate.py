"""The locator replaces every PHI value of a message in place, whatever the PDV and TCP
segment boundaries, keeps everything else byte for byte, and maps UIDs consistently."""

from __future__ import annotations

from io import BytesIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset

from analyzer.anonymize.locate import Locator
from analyzer.redact.uids import UidMap
from dissectors.dimse.commands import decode_command_set

from .streams import Pdv, encode, p_data_stream, store_message, tap_calls
from .test_walk import sample

EXPLICIT = "1.2.840.10008.1.2.1"
IMPLICIT = "1.2.840.10008.1.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
PHI = [
    b"DOE^JANE",
    b"PID-0001",
    b"19700101",
    b"GENERAL HOSPITAL",
    b"PRIVATE SECRET",
    b"1.2.3.4.5.6",
    b"1.2.3.4.5.7",
]


def run(
    ts: str | None,
    cuts: list[int],
    *,
    keep_pixels: bool = False,
    lose: int | None = None,
    max_pdv: int = 100,
    ds: Dataset | None = None,
    sop_instance: str = "1.2.3.4.5.6",
    key: bytes = b"test",
) -> tuple[bytes, bytes, list[Pdv], Locator]:
    """One C-STORE of ``ds`` (by default the sample) in transfer syntax ``ts``, in PDVs of at
    most ``max_pdv`` bytes, cut at ``cuts``: the stream, the stream with the locator's edits
    applied, the PDVs, the locator."""
    implicit = ts == IMPLICIT
    encoded = encode(sample(undefined=True) if ds is None else ds, implicit)
    stream, pdvs = p_data_stream(store_message(encoded, sop_instance), max_pdv)
    loc = Locator(UidMap(key), lambda conn, ctx: ts, keep_pixels=keep_pixels)
    lost_at: tuple[int, int] | None = None
    for call in tap_calls(pdvs, cuts):
        if call.kind == "start":
            loc.pdv_start(1, True, *call.args)  # type: ignore[arg-type]
        elif call.kind == "data":
            data, offset = call.args
            assert isinstance(data, memoryview) and isinstance(offset, int)
            if lose is not None and lost_at is None and offset >= lose:
                loc.pdv_lost(1, True, len(data))
                lost_at = (offset, len(data))
                continue
            loc.pdv_data(1, True, data, offset)
        else:
            loc.pdv_end(1, True, 0, None)
    out = bytearray(stream)
    for e in loc.sorted_edits().get((1, True), []):
        out[e.offset : e.offset + e.length] = e.data if e.data is not None else bytes(e.length)
    assert len(out) == len(stream)
    if lost_at is not None:  # never in the capture: it cannot leak, mark it as absent
        out[lost_at[0] : lost_at[0] + lost_at[1]] = b"?" * lost_at[1]
    return stream, bytes(out), pdvs, loc


def parts(stream: bytes, pdvs: list[Pdv]) -> tuple[bytes, bytes]:
    cmd = b"".join(
        stream[p.data_offset : p.data_offset + len(p.payload)] for p in pdvs if p.control & 1
    )
    ds = b"".join(
        stream[p.data_offset : p.data_offset + len(p.payload)] for p in pdvs if not p.control & 1
    )
    return cmd, ds


def decode(data: bytes, implicit: bool) -> Dataset:
    return read_dataset(BytesIO(data), implicit, True)


@pytest.mark.parametrize("ts", [EXPLICIT, IMPLICIT, None])
def test_values_replaced_in_place(ts: str | None) -> None:
    before, after, pdvs, loc = run(ts, [])
    cmd, ds_bytes = parts(after, pdvs)
    ds = decode(ds_bytes, ts == IMPLICIT)
    original = decode(parts(before, pdvs)[1], ts == IMPLICIT)
    command, _ = decode_command_set(cmd)
    assert command is not None
    new_uid = ds.SOPInstanceUID
    assert new_uid != "1.2.3.4.5.6" and len(new_uid) == len("1.2.3.4.5.6")
    assert command.affected_sop_instance_uid == new_uid  # the same UID, the same replacement
    assert ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID == loc.uids.replace("1.2.3.4.5.7")
    assert str(ds.PatientName) == "ANONYMI"[: len(str(ds.PatientName))] or "ANON" in str(
        ds.PatientName
    )
    assert ds.PatientBirthDate == "19000101"
    # What the profile keeps is untouched: modality, SOP class, the code value, rows.
    assert ds.Modality == original.Modality and ds.SOPClassUID == original.SOPClassUID
    assert ds.AnatomicRegionSequence[0].CodeValue == "T-04000"
    assert ds.Rows == original.Rows
    assert ds.PixelData == bytes(len(original.PixelData))  # zeroed by default
    for phi in PHI:
        assert phi not in after
    assert loc.originals >= {b"DOE^JANE", b"PID-0001", b"1.2.3.4.5.6"}
    # Only value bytes changed: PDU and PDV headers are where they were, with the same bytes.
    for p in pdvs:
        assert after[p.offset - 6 : p.data_offset] == before[p.offset - 6 : p.data_offset]


def test_pixels_kept_on_request() -> None:
    before, after, pdvs, _ = run(EXPLICIT, [], keep_pixels=True)
    assert (
        decode(parts(after, pdvs)[1], False).PixelData
        == decode(parts(before, pdvs)[1], False).PixelData
    )


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 1200), max_size=20), st.sampled_from([7, 64, 100, 1000]))
def test_boundaries_do_not_matter(cuts: list[int], max_pdv: int) -> None:
    _, whole, _, _ = run(EXPLICIT, [], max_pdv=max_pdv)
    _, cut, _, _ = run(EXPLICIT, cuts, max_pdv=max_pdv)
    assert cut == whole


def test_deflated_data_set_is_zeroed_command_rewritten() -> None:
    before, after, pdvs, loc = run(DEFLATED, [])
    cmd, ds = parts(after, pdvs)
    assert ds == bytes(len(ds))
    assert b"1.2.3.4.5.6" not in cmd and len(cmd) == len(parts(before, pdvs)[0])
    assert loc.tally.deflated_datasets == 1


def test_bytes_after_a_loss_are_zeroed() -> None:
    _, after, pdvs, loc = run(EXPLICIT, [], lose=400)
    _, ds = parts(after, pdvs)
    for phi in PHI:
        assert phi not in after
    assert loc.tally.unparsed_bytes > 0
    hole = ds.index(b"?")
    assert ds[hole:].strip(b"?") == bytes(len(ds[hole:].strip(b"?")))  # all zero after it


@pytest.mark.parametrize("cuts", [[], list(range(0, 600, 5))])
def test_a_pseudonym_never_spells_a_hidden_value(cuts: list[int]) -> None:
    # The digits drawn for the UID spell the patient ID: the UID is drawn again, the same
    # new one in the command set and in the data set.
    uid = "1.2.826.0.1.3680043.8.498.10433164596357862902001804267789563899"
    first = UidMap(b"key").replace(uid)
    patient_id = first[20:28]
    ds = Dataset()
    ds.SOPInstanceUID = uid
    ds.PatientID = patient_id
    _, after, pdvs, loc = run(EXPLICIT, cuts, max_pdv=64, ds=ds, sop_instance=uid, key=b"key")
    cmd, ds_bytes = parts(after, pdvs)
    for data in (after, cmd, ds_bytes):
        assert patient_id.encode() not in data and uid.encode() not in data
    new = loc.uids.replace(uid)
    assert new != first and len(new) == len(uid) and new.startswith("2.25.")
    command, _ = decode_command_set(cmd)
    assert command is not None and command.affected_sop_instance_uid == new
    assert decode(ds_bytes, False).SOPInstanceUID == new
    assert loc.uids.pairs() == {uid: new}


def test_a_fixed_word_never_holds_a_hidden_value() -> None:
    # A date and time becomes 19000101000000, which holds the study time 100000: blanked.
    ds = Dataset()
    ds.StudyTime = "100000"
    ds.AcquisitionDateTime = "20200101123456"
    ds.PatientName = "DOE^JANE"
    _, after, pdvs, _ = run(EXPLICIT, [], ds=ds)
    _, ds_bytes = parts(after, pdvs)
    for data in (after, ds_bytes):
        assert b"100000" not in data and b"20200101123456" not in data
    got = decode(ds_bytes, False)
    assert got.AcquisitionDateTime == ""  # blanked: an empty value
    assert got.StudyTime == "000000" and got.PatientName == "ANONYMIZ"  # replaced as always


USER = b"jsmith.radiology@hospital.example"
PASSCODE = b"correct horse battery staple"


@pytest.mark.parametrize(
    "where",
    ["in the user name", "in the passcode", "after the user identity", "in the AE titles"],
)
def test_a_cut_association_request_is_rewritten_as_far_as_it_was_captured(where: str) -> None:
    """A capture gap (a snap length) cuts the A-ASSOCIATE-RQ: the AE titles and the user
    identity bytes that were captured are replaced all the same, the start of a field the
    gap cuts included."""
    from analyzer.anonymize.hosts import AeMap
    from dissectors.pdu.items import UserIdentityRq
    from tests import factories as f

    identity = UserIdentityRq(2, True, USER, PASSCODE)
    pdu = f.associate_rq(called="ARCHIVE_MAIN", calling="CT_SCANNER_7", extra=(identity,))
    body = pdu[6:]
    cut = {
        "in the user name": body.index(USER) + 10,
        "in the passcode": body.index(PASSCODE) + 7,
        "after the user identity": body.index(PASSCODE) + len(PASSCODE) + 3,
        "in the AE titles": 40,
    }[where]
    loc = Locator(UidMap(b"test"), ae_titles=AeMap())
    loc.pdu_start(1, True, 0)
    loc.control_pdu(1, True, 1, body[:cut], len(body) - cut)
    out = bytearray(pdu[: 6 + cut])
    for e in loc.sorted_edits().get((1, True), []):
        assert e.offset + e.length <= len(out)
        out[e.offset : e.offset + e.length] = e.data if e.data is not None else bytes(e.length)
    captured = bytes(pdu[: 6 + cut])
    for secret in (b"ARCHIVE_MAIN", b"CT_SCANNER_7", USER, PASSCODE):
        start = captured.find(secret[:4])
        if start < 0:
            continue  # not captured at all
        seen = captured[start : start + len(secret)]
        assert seen and bytes(out[start : start + len(seen)]) != seen
        assert not any(
            a == b and a not in b" \x00" for a, b in zip(out[start:], seen, strict=False)
        ), (where, secret, bytes(out[start : start + len(seen)]))
    assert len(out) == 6 + cut
