"""Storage Commitment Push Model (PS3.4 Annex J): what its N-ACTION and N-EVENT-REPORT carry.

The Transaction UID (0008,1195) that ties a report to its request is in the data set, not in
the command set, so it is read from the kept start of the data set (decoded with pydicom on
demand; commitment messages are rare and small). Failure reasons are named with the Storage
Commitment status table of pynetdicom (PS3.3 C.14.1.1 uses the same codes).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset
from pynetdicom.sop_class import StorageCommitmentPushModel  # type: ignore[attr-defined]

from analyzer.model import Exchange
from analyzer.names import status_meaning

STORAGE_COMMITMENT_PUSH: str = str(StorageCommitmentPushModel)
"""1.2.840.10008.1.20.1"""

REQUEST_STORAGE_COMMITMENT = 1
"""Action Type ID of the N-ACTION that asks for a commitment (PS3.4 J.3.2)."""
SUCCESSFUL = 1
"""Event Type ID: storage commitment request successful (every reference committed)."""
COMPLETE_WITH_FAILURES = 2
"""Event Type ID: storage commitment request complete, failures exist."""


@dataclass(frozen=True, slots=True)
class FailedReference:
    """One item of the Failed SOP Sequence (0008,1198)."""

    sop_class: str | None
    sop_instance: str | None
    reason: int | None

    @property
    def reason_text(self) -> str:
        if self.reason is None:
            return "no Failure Reason given"
        meaning = status_meaning(self.reason, "N-EVENT-REPORT", STORAGE_COMMITMENT_PUSH)[1]
        return f"0x{self.reason:04X} {meaning}"


@dataclass(frozen=True, slots=True)
class CommitmentData:
    """What a storage commitment request or report says (from its data set)."""

    transaction_uid: str | None
    references: int
    """Items of the Referenced SOP Sequence (0008,1199): asked for, or committed."""
    failed: tuple[FailedReference, ...]
    """Items of the Failed SOP Sequence (0008,1198), in a report."""
    whole: bool
    """The data set was kept and decoded whole (else the counts are lower bounds)."""


def is_request(e: Exchange) -> bool:
    """A Storage Commitment N-ACTION-RQ asking for a commitment (action type 1)."""
    if e.service != "N-ACTION" or e.sop_class != STORAGE_COMMITMENT_PUSH:
        return False
    head = e.request or e.final
    action = head.command.action_type_id if head is not None else None
    return action in (None, REQUEST_STORAGE_COMMITMENT)


def is_report(e: Exchange) -> bool:
    """A Storage Commitment N-EVENT-REPORT-RQ (event type 1 or 2)."""
    if e.service != "N-EVENT-REPORT" or e.sop_class != STORAGE_COMMITMENT_PUSH:
        return False
    head = e.request or e.final
    event = head.command.event_type_id if head is not None else None
    return event in (None, SUCCESSFUL, COMPLETE_WITH_FAILURES)


def event_type(e: Exchange) -> int | None:
    head = e.request or e.final
    return head.command.event_type_id if head is not None else None


def commitment_data(e: Exchange) -> CommitmentData | None:
    """The request's data set of a commitment N-ACTION or N-EVENT-REPORT, if it was seen."""
    msg = e.request
    info = msg.dataset if msg is not None else None
    if info is None:
        return None
    ds = info.decode()
    failed = tuple(
        FailedReference(
            _text(item, "ReferencedSOPClassUID"),
            _text(item, "ReferencedSOPInstanceUID"),
            _int(item, "FailureReason"),
        )
        for item in _items(ds, "FailedSOPSequence")
    )
    return CommitmentData(
        transaction_uid=_text(ds, "TransactionUID"),
        references=len(_items(ds, "ReferencedSOPSequence")),
        failed=failed,
        whole=info.complete and not info.truncated,
    )


def transaction_uid(e: Exchange) -> str | None:
    """The Transaction UID of a commitment N-ACTION or N-EVENT-REPORT (None if not seen)."""
    if not (is_request(e) or is_report(e)):
        return None
    data = commitment_data(e)
    return data.transaction_uid if data is not None else None


def _items(ds: Dataset, keyword: str) -> list[Dataset]:
    try:
        value = ds.get(keyword)
        return list(value) if value is not None else []
    except Exception:  # a cut or malformed sequence: what could not be read is absent
        return []


def _text(ds: Dataset, keyword: str) -> str | None:
    try:
        value = ds.get(keyword)
    except Exception:
        return None
    if value is None or value == "":
        return None
    return str(value).strip("\x00 ") or None


def _int(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return int(value) if value is not None and value != "" else None
    except Exception:
        return None
