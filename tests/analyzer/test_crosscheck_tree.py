"""Reading tshark's output for the cross-check: field lines and DICOM trees, including
crafted ones (tshark's output carries wire text, so any shape may come)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.crosscheck.records import AssociateFields, Command, ContextItem, PduContent
from analyzer.crosscheck.tree import FIELDS, frame_row, pdu_contents, uid


def _line(**values: str) -> str:
    """A line as tshark writes it with ``-E separator=\\x1e -E aggregator=\\x1f`` (several
    values of a field are given here separated by commas)."""
    cells = (values.get(name.replace(".", "_"), "").replace(",", "\x1f") for name in FIELDS)
    return "\x1e".join(cells) + "\n"


def test_a_field_line() -> None:
    row = frame_row(
        _line(
            frame_number="14",
            ip_src="127.0.0.1",
            tcp_srcport="4242",
            ip_dst="127.0.0.1",
            tcp_dstport="34386",
            dicom_pdu_type="0x04,0x04",
            dicom_pdu_len="94,210",
            dicom_pdv_ctx="1,1",
            dicom_pdv_flags="0x03,0x06",
            dicom_pdv_len="90,206",
            frame_len="500",
            frame_cap_len="500",
        )
    )
    assert row is not None
    assert row.frame == 14
    assert (row.src, row.dst) == (("127.0.0.1", 4242), ("127.0.0.1", 34386))
    assert row.pdus == ((4, 94), (4, 210))
    assert row.pdvs == ((1, 3, 90), (1, 2, 206))  # flags masked to bits 0-1, as tshark shows
    assert not row.truncated and not row.out_of_order


def test_ipv6_tunnels_truncation_and_out_of_order() -> None:
    row = frame_row(
        _line(
            frame_number="7",
            ip_src="10.0.0.1,192.168.0.1",  # an IP-in-IP tunnel: the inner header counts
            ipv6_src="",
            tcp_srcport="104",
            ipv6_dst="0:0:0:0:0:0:0:1",
            tcp_dstport="5000",
            frame_len="1514",
            frame_cap_len="200",
            tcp_analysis_out_of_order="1",
        )
    )
    assert row is not None
    assert row.src == ("192.168.0.1", 104) and row.dst == ("::1", 5000)
    assert row.truncated and row.out_of_order and row.pdus == ()


def test_lines_that_are_not_field_lines() -> None:
    assert frame_row("") is None
    assert frame_row("Running as user root\n") is None
    assert frame_row(_line(frame_number="x")) is None
    row = frame_row(_line(frame_number="3", dicom_pdu_type="0x01,junk", dicom_pdu_len="9"))
    assert row is not None and row.pdus == ((1, 9),)


def test_uid_from_a_shown_syntax() -> None:
    assert uid("CT Image Storage (1.2.840.10008.5.1.4.1.1.2)") == "1.2.840.10008.5.1.4.1.1.2"
    assert uid("1.2.3.4") == "1.2.3.4"
    assert uid("1.2.3\x00") == "1.2.3"
    assert uid("1.2.840.10008.5.1.4.1.2.2.1 (Study Root (FIND))") == "1.2.840.10008.5.1.4.1.2.2.1"
    assert uid(None) is None


# Shaped as tshark 4.0 writes them (-T json, -o dicom.tag_tree:TRUE, --no-duplicate-keys).
ASSOCIATE_RQ: dict[str, Any] = {
    "dicom.pdu.type": "0x01",
    "dicom.pdu.len": "261",
    "A-ASSOCIATE request FINDSCU --> ORTHANC": {
        "dicom.assoc.ae.called": "ORTHANC         ",
        "dicom.assoc.ae.calling": "FINDSCU         ",
        # Two contexts of the same label, merged into a list.
        "Presentation Context: CT Image Storage (1.2.840.10008.5.1.4.1.1.2)": [
            {
                "dicom.assoc.item.type": "0x20",
                "dicom.pctx.id": "0x01",
                "Abstract Syntax: CT Image Storage (1.2.840.10008.5.1.4.1.1.2)": {
                    "dicom.assoc.item.type": "0x30",
                    "dicom.pctx.abss.syntax": "CT Image Storage (1.2.840.10008.5.1.4.1.1.2)",
                },
                "Transfer Syntax: Explicit VR Little Endian (1.2.840.10008.1.2.1)": {
                    "dicom.assoc.item.type": "0x40",
                    "dicom.pctx.xfer.syntax": "Explicit VR Little Endian (1.2.840.10008.1.2.1)",
                },
                "Transfer Syntax: Implicit VR Little Endian (1.2.840.10008.1.2)": {
                    "dicom.assoc.item.type": "0x40",
                    "dicom.pctx.xfer.syntax": "Implicit VR Little Endian (1.2.840.10008.1.2)",
                },
            },
            {
                "dicom.assoc.item.type": "0x20",
                "dicom.pctx.id": "0x03",
                "Abstract Syntax: CT Image Storage (1.2.840.10008.5.1.4.1.1.2)": {
                    "dicom.pctx.abss.syntax": "1.2.840.10008.5.1.4.1.1.2",
                },
                # The same transfer syntax twice: one key, a list; the order is not the wire's.
                "Transfer Syntax: JPEG Baseline (1.2.840.10008.1.2.4.50)": [
                    {"dicom.pctx.xfer.syntax": "1.2.840.10008.1.2.4.50"},
                    {"dicom.pctx.xfer.syntax": "1.2.840.10008.1.2.4.50"},
                ],
            },
        ],
        "dicom.userinfo": {
            "dicom.assoc.item.type": "0x50",
            "Max PDU Length: 16384": {"dicom.max_pdu_len": "16384"},
            "Implementation UID: 1.2.3": {"dicom.userinfo.uid": "1.2.3"},
            "Implementation Version: X_1": {"dicom.userinfo.version": "X_1"},
        },
    },
}

C_FIND_RSP: dict[str, Any] = {
    "dicom.pdu.type": "0x04",
    "dicom.pdu.len": "94",
    "PDV, C-FIND-RSP ID=1": {
        "dicom.pdv.len": "90",
        "dicom.pdv.ctx": "1",
        "dicom.pdv.flags": "0x03",
        "(0000,0002)  28 Affected SOP Class UID  1.2.840.10008.5.1.4.1.2.2.1 (Study Root)": {
            "dicom.tag": "0x00000002",
            "dicom.tag.value.str": "1.2.840.10008.5.1.4.1.2.2.1 (Study Root)",
        },
        "(0000,0100)  2 Command Field  C-FIND-RSP": {
            "dicom.tag": "0x00000100",
            "dicom.tag.value.16u": "32800",
        },
        "(0000,0120)  2 Message ID Being Responded To  1": {
            "dicom.tag": "0x00000120",
            "dicom.tag.value.16u": "1",
        },
        "(0000,0900)  2 Status  Pending (0xff00)": {
            "dicom.tag": "0x00000900",
            "dicom.tag.value.16u": "65280",
        },
    },
}

# A data set fragment holding group 0000 elements is not a command set.
DATA_WITH_COMMAND_TAGS: dict[str, Any] = {
    "dicom.pdu.type": "0x04",
    "dicom.pdu.len": "30",
    "PDV, C-FIND-RSP-DATA": {
        "dicom.pdv.ctx": "1",
        "dicom.pdv.flags": "0x02",
        "(0000,0100)": {"dicom.tag": "0x00000100", "dicom.tag.value.16u": "1"},
    },
}


def test_pdus_of_a_frame() -> None:
    rq, rsp, data = pdu_contents([ASSOCIATE_RQ, C_FIND_RSP, DATA_WITH_COMMAND_TAGS])
    assert rq == PduContent(
        pdu_type=1,
        length=261,
        associate=AssociateFields(
            calling_ae="FINDSCU",
            called_ae="ORTHANC",
            contexts=(
                ContextItem(
                    id=1,
                    abstract_syntax="1.2.840.10008.5.1.4.1.1.2",
                    transfer_syntaxes=("1.2.840.10008.1.2.1", "1.2.840.10008.1.2"),
                ),
                ContextItem(
                    id=3,
                    abstract_syntax="1.2.840.10008.5.1.4.1.1.2",
                    transfer_syntaxes=("1.2.840.10008.1.2.4.50",) * 2,
                    ordered=False,
                ),
            ),
            max_pdu_length=16384,
            implementation_class_uid="1.2.3",
            implementation_version_name="X_1",
        ),
    )
    assert rsp.commands == (
        Command(
            command_field=0x8020,
            message_id_being_responded_to=1,
            status=0xFF00,
            sop_class_uid="1.2.840.10008.5.1.4.1.2.2.1",
        ),
    )
    assert data.pdu_type == 4 and data.commands == ()


def test_reject_and_abort() -> None:
    rj, ab = pdu_contents(
        [
            {
                "dicom.pdu.type": "0x03",
                "dicom.pdu.len": "4",
                "A-ASSOCIATE reject": {
                    "dicom.assoc.reject.result": "0x01",
                    "dicom.assoc.reject.source": "0x01",
                    "dicom.assoc.reject.reason": "0x07",
                },
            },
            {
                "dicom.pdu.type": "0x07",
                "dicom.pdu.len": "4",
                "ABORT": {"dicom.assoc.abort.source": "0x02"},
            },
        ]
    )
    assert rj.reject == (1, 1, 7)
    assert ab.abort == (2, None)  # a field tshark did not show reads as None


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "dicom.pdu.type",
                    "dicom.pdu.len",
                    "dicom.pctx.id",
                    "dicom.assoc.item.type",
                    "dicom.pctx.xfer.syntax",
                    "dicom.pdv.ctx",
                    "dicom.pdv.flags",
                    "dicom.tag",
                    "dicom.tag.value.16u",
                    "label",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_json, max_size=4))
def test_any_tree_is_read_without_error(layers: list[object]) -> None:
    for pdu in pdu_contents(layers):
        assert isinstance(pdu, PduContent)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_line_is_read_without_error(line: str) -> None:
    frame_row(line)
    frame_row("\x1e".join([line] * len(FIELDS)))
