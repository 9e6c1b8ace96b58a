"""What a client's first bytes are, decided from the first PDU header before anything is
relayed.

Only an A-ASSOCIATE-RQ that the observer would take for one (:func:`~dissectors.framing.
plausible_header`, the test its detection uses) opens an association through the proxy.
Anything else is named for the log and closed without reaching an upstream: a TLS
ClientHello on a plain listener, an HTTP request, another PDU first, bytes that are no PDU.
An A-ASSOCIATE-RQ declaring more than an A-ASSOCIATE-RQ may hold is answered with an
A-ASSOCIATE-RJ, and never read to its declared end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from analyzer.model import is_tls_record
from dissectors.framing import CONTROL_PDU_LIMIT, plausible_header
from dissectors.pdu import PduType, pdu_name
from dissectors.pdu.pdus import ASSOCIATE_FIXED_LENGTH

__all__ = ["Opening", "OpeningKind", "classify"]

_HTTP = re.compile(rb"^[A-Z]{3,10} [\x21-\x7e]{1,200} HTTP/\d")
_HTTP_METHOD = re.compile(rb"^(?:GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|CONNECT|TRACE|PRI) ")


class OpeningKind(StrEnum):
    """What a connection opened with."""

    ASSOCIATE_RQ = "associate-rq"
    RQ_TOO_LARGE = "rq-too-large"
    TLS = "tls"
    HTTP = "http"
    OTHER_PDU = "other-pdu"
    NOT_DICOM = "not-dicom"


@dataclass(frozen=True, slots=True)
class Opening:
    """The verdict on a connection's first bytes; ``text`` says what they were, for the log."""

    kind: OpeningKind
    text: str


def classify(head: bytes | bytearray, first: tuple[int, int] | None) -> Opening | None:
    """The verdict on ``head``, the first bytes a client sent, whose first PDU header the
    framer read as ``first`` (type, declared length); None while more bytes are needed."""
    if is_tls_record(bytes(head[:3])):
        return Opening(OpeningKind.TLS, "a TLS handshake (ClientHello) on a plain DICOM listener")
    if _HTTP_METHOD.match(head) or _HTTP.match(head):
        line = bytes(head[: head.find(b"\r\n") if b"\r\n" in head else 80][:80])
        return Opening(OpeningKind.HTTP, f"an HTTP request ({line.decode('latin-1')!r})")
    verdict = plausible_header(head, 0, strict=False)
    if verdict is None or first is None:
        return None
    pdu_type, length = first
    if verdict and pdu_type == PduType.A_ASSOCIATE_RQ:
        return Opening(OpeningKind.ASSOCIATE_RQ, "an A-ASSOCIATE-RQ")
    if pdu_type == PduType.A_ASSOCIATE_RQ and head[1] == 0:  # the reserved byte
        if length > CONTROL_PDU_LIMIT:
            return Opening(
                OpeningKind.RQ_TOO_LARGE,
                f"an A-ASSOCIATE-RQ declaring {length} bytes, more than the "
                f"{CONTROL_PDU_LIMIT} any A-ASSOCIATE-RQ needs",
            )
        if length < ASSOCIATE_FIXED_LENGTH:
            return Opening(
                OpeningKind.NOT_DICOM,
                f"an A-ASSOCIATE-RQ header declaring {length} bytes, too few for one",
            )
        return Opening(OpeningKind.NOT_DICOM, "a malformed A-ASSOCIATE-RQ header")
    if verdict:
        name = pdu_name(pdu_type)
        article = "an" if name[0] in "AEIOU" else "a"
        return Opening(OpeningKind.OTHER_PDU, f"{article} {name} before any A-ASSOCIATE-RQ")
    return Opening(OpeningKind.NOT_DICOM, f"no DICOM PDU (first bytes {bytes(head[:8]).hex(' ')})")
