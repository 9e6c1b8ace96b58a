"""PDU codec: our decode and encode against pynetdicom's encoders, and strictness."""

from __future__ import annotations

from typing import Any

import pytest
from pynetdicom import build_context
from pynetdicom.pdu import (
    A_ABORT_RQ,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    A_ASSOCIATE_RQ,
    A_RELEASE_RP,
    A_RELEASE_RQ,
    P_DATA_TF,
)
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    A_RELEASE,
    P_DATA,
    AsynchronousOperationsWindowNegotiation,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityNegotiation,
)

from dissectors.pdu import (
    Abort,
    AssociateAc,
    AssociateRj,
    AssociateRq,
    AsynchronousOperationsWindow,
    PDataTf,
    ReleaseRp,
    ReleaseRq,
    RoleSelection,
    SopClassCommonExtendedNegotiation,
    SopClassExtendedNegotiation,
    UnknownItem,
    UserIdentityAc,
    UserIdentityRq,
    decode_pdu,
    pdus,
)
from dissectors.pdu.items import Defect

CT = "1.2.840.10008.5.1.4.1.1.2"
GET = "1.2.840.10008.5.1.4.1.2.2.3"


def _user_information(ac: bool) -> list[Any]:
    ml = MaximumLengthNotification()
    ml.maximum_length_received = 32768
    ic = ImplementationClassUIDNotification()
    ic.implementation_class_uid = "1.2.826.0.1.3680043.9.3811.3.0.4"
    iv = ImplementationVersionNameNotification()
    iv.implementation_version_name = "PYNETDICOM_304"
    aw = AsynchronousOperationsWindowNegotiation()
    aw.maximum_number_operations_invoked = 5
    aw.maximum_number_operations_performed = 3
    rs = SCP_SCU_RoleSelectionNegotiation()
    rs.sop_class_uid = CT
    rs.scu_role = False
    rs.scp_role = True
    ext = SOPClassExtendedNegotiation()
    ext.sop_class_uid = GET
    ext.service_class_application_information = b"\x01\x00"
    items: list[Any] = [ml, ic, iv, aw, rs, ext]
    uid = UserIdentityNegotiation()
    if ac:
        uid.server_response = b"token-xyz"
    else:
        uid.user_identity_type = 2
        uid.positive_response_requested = True
        uid.primary_field = b"alice"
        uid.secondary_field = b"s3cret"
        cext = SOPClassCommonExtendedNegotiation()
        cext.sop_class_uid = CT
        cext.service_class_uid = "1.2.840.10008.4.2"
        cext.related_general_sop_class_identification = ["1.2.840.10008.5.1.4.1.1.2.1"]
        items.append(cext)
    items.append(uid)
    return items


def _pynetdicom_rq() -> bytes:
    p = A_ASSOCIATE()
    p.application_context_name = "1.2.840.10008.3.1.1.1"
    p.calling_ae_title = "MODALITY"
    p.called_ae_title = "PACS"
    contexts = [build_context(CT), build_context("1.2.840.10008.1.1", ["1.2.840.10008.1.2"])]
    for i, c in enumerate(contexts):
        c.context_id = 2 * i + 1
    p.presentation_context_definition_list = contexts
    p.user_information = _user_information(ac=False)
    pdu = A_ASSOCIATE_RQ()
    pdu.from_primitive(p)
    return bytes(pdu.encode())


def _pynetdicom_ac() -> bytes:
    p = A_ASSOCIATE()
    p.application_context_name = "1.2.840.10008.3.1.1.1"
    p.calling_ae_title = "MODALITY"
    p.called_ae_title = "PACS"
    p.result = 0
    ctx1 = build_context(CT, ["1.2.840.10008.1.2.1"])
    ctx1.context_id = 1
    ctx1.result = 0
    ctx3 = build_context("1.2.840.10008.1.1", ["1.2.840.10008.1.2"])
    ctx3.context_id = 3
    ctx3.result = 3
    p.presentation_context_definition_results_list = [ctx1, ctx3]
    p.user_information = _user_information(ac=True)
    pdu = A_ASSOCIATE_AC()
    pdu.from_primitive(p)
    return bytes(pdu.encode())


def test_associate_rq_from_pynetdicom() -> None:
    raw = _pynetdicom_rq()
    pdu, defects = decode_pdu(raw)
    assert defects == []
    assert isinstance(pdu, AssociateRq)
    assert pdu.calling_ae == b"MODALITY        "
    assert pdu.called_ae == b"PACS            "
    assert [c.context_id for c in pdu.presentation_contexts] == [1, 3]
    assert pdu.presentation_contexts[0].abstract_syntax == CT
    assert len(pdu.presentation_contexts[0].transfer_syntaxes) == 4
    ui = pdu.user_information
    assert ui is not None
    assert ui.maximum_length == 32768
    assert ui.implementation_class_uid == "1.2.826.0.1.3680043.9.3811.3.0.4"
    assert ui.implementation_version_name == "PYNETDICOM_304"
    assert ui.async_window == AsynchronousOperationsWindow(5, 3)
    assert ui.role_selections == (RoleSelection(CT, 0, 1),)
    assert ui.extended_negotiations == (SopClassExtendedNegotiation(GET, b"\x01\x00"),)
    assert ui.common_extended_negotiations == (
        SopClassCommonExtendedNegotiation(
            CT, "1.2.840.10008.4.2", ("1.2.840.10008.5.1.4.1.1.2.1",)
        ),
    )
    assert ui.user_identity == UserIdentityRq(2, True, b"alice", b"s3cret")
    assert pdu.encode() == raw


def test_associate_ac_from_pynetdicom() -> None:
    raw = _pynetdicom_ac()
    pdu, defects = decode_pdu(raw)
    assert defects == []
    assert isinstance(pdu, AssociateAc)
    assert [(c.context_id, c.result) for c in pdu.presentation_contexts] == [(1, 0), (3, 3)]
    assert pdu.presentation_contexts[0].transfer_syntax == "1.2.840.10008.1.2.1"
    assert pdu.user_information is not None
    assert pdu.user_information.user_identity_response == UserIdentityAc(b"token-xyz")
    assert pdu.encode() == raw


def _theirs(kind: str) -> bytes:
    """The same PDU encoded by pynetdicom."""
    if kind == "rj":
        assoc = A_ASSOCIATE()
        assoc.result, assoc.result_source, assoc.diagnostic = 1, 1, 7
        rj = A_ASSOCIATE_RJ()
        rj.from_primitive(assoc)
        return bytes(rj.encode())
    if kind == "abort":
        ab = A_ABORT_RQ()
        ab.source, ab.reason_diagnostic = 2, 6
        return bytes(ab.encode())
    release = A_RELEASE()
    if kind == "rlrp":
        release.result = "affirmative"
        rp = A_RELEASE_RP()
        rp.from_primitive(release)
        return bytes(rp.encode())
    rq = A_RELEASE_RQ()
    rq.from_primitive(release)
    return bytes(rq.encode())


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (AssociateRj(1, 1, 7), "rj"),
        (ReleaseRq(), "rlrq"),
        (ReleaseRp(), "rlrp"),
        (Abort(2, 6), "abort"),
    ],
)
def test_short_pdus_match_pynetdicom(
    ours: AssociateRj | ReleaseRq | ReleaseRp | Abort, theirs: str
) -> None:
    raw = _theirs(theirs)
    decoded, defects = decode_pdu(raw)
    assert defects == []
    assert decoded == ours
    assert ours.encode() == raw


def test_p_data_from_pynetdicom() -> None:
    p = P_DATA()
    pdvs: Any = [[1, b"\x03" + b"\x00" * 10], [1, b"\x02" + b"ab"]]
    p.presentation_data_value_list = pdvs
    pdu = P_DATA_TF()
    pdu.from_primitive(p)
    raw = bytes(pdu.encode())
    decoded, defects = decode_pdu(raw)
    assert defects == []
    assert isinstance(decoded, PDataTf)
    assert [(v.context_id, v.control, v.data) for v in decoded.pdvs] == [
        (1, 3, b"\x00" * 10),
        (1, 2, b"ab"),
    ]
    assert decoded.encode() == raw


MALFORMED = [
    # (description, bytes, expected fragment of a defect text)
    ("rq too short", b"\x01\x00\x00\x00\x00\x04\x00\x01\x00\x00", "shorter than 68"),
    ("rj long", b"\x03\x00\x00\x00\x00\x05\x00\x01\x01\x07\x00", "fixes it at 4"),
    ("abort short", b"\x07\x00\x00\x00\x00\x02\x00\x00", "fixes it at 4"),
]


@pytest.mark.parametrize(("name", "raw", "text"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_pdus_are_reported_not_raised(name: str, raw: bytes, text: str) -> None:
    _, defects = decode_pdu(raw)
    assert any(text in d.text for d in defects), defects


def test_item_length_overrun_is_reported() -> None:
    raw = bytearray(_pynetdicom_rq())
    # Make the first presentation context item claim more bytes than the PDU holds.
    at = raw.index(b"\x20\x00", 6 + 68)
    raw[at + 2 : at + 4] = (0xFFFF).to_bytes(2, "big")
    pdu, defects = decode_pdu(bytes(raw))
    assert isinstance(pdu, AssociateRq)
    assert any("declares length 65535" in d.text for d in defects)


def test_unknown_items_are_kept_raw() -> None:
    raw = bytearray(_pynetdicom_rq())
    vendor = UnknownItem(0xE1, b"vendor-specific").encode()
    raw += vendor
    raw[2:6] = (len(raw) - 6).to_bytes(4, "big")
    pdu, defects = decode_pdu(bytes(raw))
    assert isinstance(pdu, AssociateRq)
    assert pdu.unknown_items == (UnknownItem(0xE1, b"vendor-specific"),)
    assert any("0xE1" in d.text for d in defects)
    assert pdu.encode() == bytes(raw)


def test_an_association_body_seen_again_decodes_the_same() -> None:
    """A body decoded before comes from the remembered decodes: equal PDU, equal defects,
    and a defect list of its own (the observer appends to it)."""
    raw = bytearray(_pynetdicom_rq())
    raw += UnknownItem(0xE1, b"vendor-specific").encode()  # a defect to carry
    raw[2:6] = (len(raw) - 6).to_bytes(4, "big")
    body = bytes(raw[6:])
    first, first_defects = pdus.decode_control_pdu(1, body)
    first_defects.append(Defect(0, "the caller's own"))
    again, again_defects = pdus.decode_control_pdu(1, bytes(bytearray(body)))
    assert again == first and isinstance(again, AssociateRq)
    assert again_defects == first_defects[:-1] and len(again_defects) == 1
    as_ac, _ = pdus.decode_control_pdu(2, body)  # the same bytes as another type
    assert isinstance(as_ac, AssociateAc)


def test_the_remembered_decodes_are_bounded_in_bytes() -> None:
    base = bytearray(_pynetdicom_rq()[6:])
    remembered = pdus._decode_remembered
    limit = pdus._REMEMBER_BYTES // pdus._REMEMBER_BODY_LIMIT
    for n in range(2 * pdus._REMEMBER_BYTES // len(base) + 10):
        body = bytes(base[:4]) + n.to_bytes(16, "big") + bytes(base[20:])  # called AE varies
        pdus.decode_control_pdu(1, body)
        assert remembered.cache_info().currsize <= limit
    assert remembered.cache_info().currsize * pdus._REMEMBER_BODY_LIMIT <= pdus._REMEMBER_BYTES
    before = remembered.cache_info()
    big = bytes(base) + b"\x00" * pdus._REMEMBER_BODY_LIMIT
    pdus.decode_control_pdu(1, big)
    assert remembered.cache_info() == before  # too big to be remembered: not even looked up
