"""Wire codes of the DICOM Upper Layer protocol (PS3.8 §9.3) and their meanings.

Every code that travels on the wire is an :class:`enum.IntEnum`. Decoders keep unknown
codes as plain ``int`` so that a new or vendor value never breaks decoding; use
:func:`enum_or_int` for that.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TypeVar

E = TypeVar("E", bound=IntEnum)


def enum_or_int(enum: type[E], value: int) -> E | int:
    """Return ``enum(value)`` when the value is defined, else the bare ``int``."""
    try:
        return enum(value)
    except ValueError:
        return value


class PduType(IntEnum):
    """PDU types, PS3.8 §9.3.1."""

    A_ASSOCIATE_RQ = 0x01
    A_ASSOCIATE_AC = 0x02
    A_ASSOCIATE_RJ = 0x03
    P_DATA_TF = 0x04
    A_RELEASE_RQ = 0x05
    A_RELEASE_RP = 0x06
    A_ABORT = 0x07

    @property
    def label(self) -> str:
        """The name as PS3.8 writes it, e.g. ``A-ASSOCIATE-RQ``."""
        return self.name.replace("_", "-")


def pdu_name(pdu_type: int) -> str:
    """``A-ASSOCIATE-RQ`` for 1, ..., and ``PDU type 0x09`` for a type PS3.8 does not define."""
    try:
        return PduType(pdu_type).label
    except ValueError:
        return f"PDU type 0x{pdu_type:02X}"


class ItemType(IntEnum):
    """Item and sub-item types of the association PDUs, PS3.8 §9.3.2-9.3.4 and PS3.7 Annex D."""

    APPLICATION_CONTEXT = 0x10
    PRESENTATION_CONTEXT_RQ = 0x20
    PRESENTATION_CONTEXT_AC = 0x21
    ABSTRACT_SYNTAX = 0x30
    TRANSFER_SYNTAX = 0x40
    USER_INFORMATION = 0x50
    MAXIMUM_LENGTH = 0x51
    IMPLEMENTATION_CLASS_UID = 0x52
    ASYNCHRONOUS_OPERATIONS_WINDOW = 0x53
    SCP_SCU_ROLE_SELECTION = 0x54
    IMPLEMENTATION_VERSION_NAME = 0x55
    SOP_CLASS_EXTENDED_NEGOTIATION = 0x56
    SOP_CLASS_COMMON_EXTENDED_NEGOTIATION = 0x57
    USER_IDENTITY_RQ = 0x58
    USER_IDENTITY_AC = 0x59


class RejectResult(IntEnum):
    """A-ASSOCIATE-RJ Result field, PS3.8 Table 9-21."""

    REJECTED_PERMANENT = 1
    REJECTED_TRANSIENT = 2


class RejectSource(IntEnum):
    """A-ASSOCIATE-RJ Source field, PS3.8 Table 9-21."""

    SERVICE_USER = 1
    SERVICE_PROVIDER_ACSE = 2
    SERVICE_PROVIDER_PRESENTATION = 3


# PS3.8 Table 9-21: the reason's meaning depends on the source.
_REJECT_REASONS: dict[int, dict[int, str]] = {
    1: {
        1: "no-reason-given",
        2: "application-context-name-not-supported",
        3: "calling-AE-title-not-recognized",
        7: "called-AE-title-not-recognized",
    },
    2: {1: "no-reason-given", 2: "protocol-version-not-supported"},
    3: {1: "temporary-congestion", 2: "local-limit-exceeded"},
}

_REJECT_RESULTS = {1: "rejected-permanent", 2: "rejected-transient"}
_REJECT_SOURCES = {
    1: "DICOM UL service-user",
    2: "DICOM UL service-provider (ACSE related function)",
    3: "DICOM UL service-provider (Presentation related function)",
}


def reject_result_text(result: int) -> str:
    """Meaning of an A-ASSOCIATE-RJ result code."""
    return _REJECT_RESULTS.get(result, f"reserved ({result})")


def reject_source_text(source: int) -> str:
    """Meaning of an A-ASSOCIATE-RJ source code."""
    return _REJECT_SOURCES.get(source, f"reserved ({source})")


def reject_reason_text(source: int, reason: int) -> str:
    """Meaning of an A-ASSOCIATE-RJ reason code, which depends on the source."""
    return _REJECT_REASONS.get(source, {}).get(reason, f"reserved ({reason})")


class AbortSource(IntEnum):
    """A-ABORT Source field, PS3.8 Table 9-26."""

    SERVICE_USER = 0
    RESERVED = 1
    SERVICE_PROVIDER = 2


class AbortReason(IntEnum):
    """A-ABORT Reason/Diag. field when the source is the service provider, PS3.8 Table 9-26."""

    REASON_NOT_SPECIFIED = 0
    UNRECOGNIZED_PDU = 1
    UNEXPECTED_PDU = 2
    UNRECOGNIZED_PDU_PARAMETER = 4
    UNEXPECTED_PDU_PARAMETER = 5
    INVALID_PDU_PARAMETER_VALUE = 6


_ABORT_SOURCES = {
    0: "DICOM UL service-user",
    1: "reserved",
    2: "DICOM UL service-provider",
}
_ABORT_REASONS = {
    0: "reason-not-specified",
    1: "unrecognized-PDU",
    2: "unexpected-PDU",
    4: "unrecognized-PDU-parameter",
    5: "unexpected-PDU-parameter",
    6: "invalid-PDU-parameter-value",
}


def abort_source_text(source: int) -> str:
    """Meaning of an A-ABORT source code."""
    return _ABORT_SOURCES.get(source, f"undefined ({source})")


def abort_reason_text(source: int, reason: int) -> str:
    """Meaning of an A-ABORT reason; only defined when the service provider aborted."""
    if source != AbortSource.SERVICE_PROVIDER:
        return "not significant (service-user abort)"
    return _ABORT_REASONS.get(reason, f"reserved ({reason})")


class ContextResult(IntEnum):
    """Result/Reason of a presentation context item in an A-ASSOCIATE-AC, PS3.8 Table 9-18."""

    ACCEPTANCE = 0
    USER_REJECTION = 1
    NO_REASON = 2
    ABSTRACT_SYNTAX_NOT_SUPPORTED = 3
    TRANSFER_SYNTAXES_NOT_SUPPORTED = 4


_CONTEXT_RESULTS = {
    0: "acceptance",
    1: "user-rejection",
    2: "no-reason (provider rejection)",
    3: "abstract-syntax-not-supported (provider rejection)",
    4: "transfer-syntaxes-not-supported (provider rejection)",
}


def context_result_text(result: int) -> str:
    """Meaning of a presentation context result code."""
    return _CONTEXT_RESULTS.get(result, f"reserved ({result})")


class UserIdentityType(IntEnum):
    """User-Identity-Type of sub-item 0x58, PS3.7 Table D.3-14."""

    USERNAME = 1
    USERNAME_AND_PASSCODE = 2
    KERBEROS = 3
    SAML = 4
    JWT = 5


_USER_IDENTITY_TYPES = {
    1: "username",
    2: "username and passcode",
    3: "Kerberos service ticket",
    4: "SAML assertion",
    5: "JSON Web Token",
}


def user_identity_type_text(kind: int) -> str:
    """Meaning of a user identity type code."""
    return _USER_IDENTITY_TYPES.get(kind, f"reserved ({kind})")


#: The only application context name DICOM defines (PS3.7 Annex A.2.1).
DICOM_APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
