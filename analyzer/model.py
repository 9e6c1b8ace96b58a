"""The model consumers read: associations, presentation contexts, exchanges, findings.

Records are frozen; an association that changes (a live capture, a proxy) is published again
as a new version with the same ``id``. Wire codes stay ints (IntEnums where the standard
names them), UIDs dotted strings, times integer nanoseconds since the Unix epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from dissectors import (
    Action,
    CloseKind,
    Detection,
    Endpoint,
    Outcome,
    Party,
    ResetInfo,
    State,
    TcpSide,
    TcpSummary,
    UnansweredBurst,
    ViolationKind,
)
from dissectors.dimse import CommandSet, DataSetInfo
from dissectors.pdu import (
    RoleSelection,
    SopClassCommonExtendedNegotiation,
    SopClassExtendedNegotiation,
    UnknownItem,
    ae_title_text,
)

__all__ = [
    "CAPTURE_WIDE",
    "AbortInfo",
    "Association",
    "CloseKind",
    "Detection",
    "DimseMessage",
    "Endpoint",
    "Evidence",
    "Exchange",
    "Finding",
    "Gap",
    "Link",
    "LinkHow",
    "LinkKind",
    "Note",
    "Outcome",
    "Party",
    "PduRecord",
    "PduStats",
    "PresentationContext",
    "RejectInfo",
    "ResetInfo",
    "Severity",
    "State",
    "TcpSide",
    "TcpSummary",
    "UnansweredBurst",
    "UserInfo",
    "ViolationKind",
    "ViolationRecord",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class PresentationContext:
    """One presentation context: what the requestor proposed joined with the acceptor's answer.

    ``result`` is None when no A-ASSOCIATE-AC was seen. ``scu_role``/``scp_role`` come from
    the requestor's role selection for this abstract syntax and ``accepted_scu_role``/
    ``accepted_scp_role`` from the acceptor's answer (None: not negotiated, default roles).
    """

    id: int
    abstract_syntax: str | None
    proposed_transfer_syntaxes: tuple[str, ...]
    result: int | None = None
    accepted_transfer_syntax: str | None = None
    scu_role: int | None = None
    scp_role: int | None = None
    accepted_scu_role: int | None = None
    accepted_scp_role: int | None = None
    proposed: bool = True
    """False when the context appears only in the AC (the RQ was not captured)."""

    @property
    def accepted(self) -> bool:
        return self.result == 0


@dataclass(frozen=True, slots=True, kw_only=True)
class UserInfo:
    """What one side said in its User Information item. Never holds a passcode."""

    max_pdu_length: int | None = None
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    async_window: tuple[int, int] | None = None
    role_selections: tuple[RoleSelection, ...] = ()
    extended_negotiation: tuple[SopClassExtendedNegotiation, ...] = ()
    common_extended_negotiation: tuple[SopClassCommonExtendedNegotiation, ...] = ()
    user_identity_type: int | None = None
    user_identity_username: str | None = None
    """Primary field for types 1 and 2 (a user name); never shown for other types."""
    user_identity_has_passcode: bool = False
    user_identity_response_requested: bool = False
    user_identity_response: bool = False
    """The A-ASSOCIATE-AC carried a User Identity (0x59) sub-item."""
    unknown_items: tuple[UnknownItem, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RejectInfo:
    """Decoded A-ASSOCIATE-RJ."""

    result: int
    source: int
    reason: int
    ts: int
    frame: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AbortInfo:
    """Decoded A-ABORT, who wrote it (``by``: a third party when a middlebox injected it) and
    the direction it travelled (``from_requestor``)."""

    source: int
    reason: int
    by: Party
    from_requestor: bool
    ts: int
    frame: int | None


@dataclass(frozen=True, slots=True)
class PduStats:
    """PDUs and bytes one side sent: counts by PDU type (index 1-7), the largest P-DATA-TF."""

    counts: tuple[int, ...] = (0,) * 8
    bytes: int = 0
    largest_p_data: int = 0
    largest_p_data_frame: int | None = None

    @property
    def total(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Association:
    """One TCP connection that carried (or, on a DICOM port, should have carried) DICOM."""

    id: int
    connection: int
    client: Endpoint
    server: Endpoint
    start_ts: int
    start_frame: int | None
    end_ts: int | None = None
    end_frame: int | None = None
    outcome: Outcome | None = None
    """None while the association is still being observed."""
    outcome_state: State | None = None
    ended_by: Party | None = None
    """Who rejected, aborted, asked for the release (None for a release collision) or
    closed the connection first (transport dropped); see :class:`dissectors.Ending`."""
    closed_by: Party | None = None
    """Who closed the TCP connection first (None: nobody did)."""
    handshake: bool = True
    partial: bool = False
    detection: Detection | None = None
    calling_ae: bytes | None = None
    """The raw 16-byte field (AE titles are compared byte for byte)."""
    called_ae: bytes | None = None
    rq_ts: int | None = None
    rq_frame: int | None = None
    ac_ts: int | None = None
    ac_frame: int | None = None
    application_context: str | None = None
    protocol_version: int | None = None
    contexts: tuple[PresentationContext, ...] = ()
    requestor_info: UserInfo | None = None
    acceptor_info: UserInfo | None = None
    rq_missing: int = 0
    """Bytes of the A-ASSOCIATE-RQ the capture lost (a snap length, a gap): its items after
    the cut (contexts, user information sub-items) are not known, absent or not."""
    ac_missing: int = 0
    """The same for the A-ASSOCIATE-AC."""
    reject: RejectInfo | None = None
    abort: AbortInfo | None = None
    requestor_pdus: PduStats = field(default_factory=PduStats)
    acceptor_pdus: PduStats = field(default_factory=PduStats)
    exchanges: int = 0
    """DIMSE exchanges, orphan responses not included."""
    orphan_responses: int = 0
    """Responses whose request is not in the capture."""
    violations: int = 0
    violations_unreported: int = 0
    """Violations beyond what one association records (a hostile stream), counted only."""
    gaps: int = 0
    gap_bytes: int = 0
    close_kind: CloseKind | None = None
    """How the side that closed first did it (FIN or RST)."""
    idle_before_end_ns: int | None = None
    """Silence before the A-ABORT or the close that ended the association."""
    client_head: bytes = b""
    """First bytes the client sent (a TLS record there means it spoke TLS)."""
    server_head: bytes = b""
    """First bytes the server sent."""
    syn_answered: bool = True
    """For a connection without DICOM: whether the server answered the SYN."""
    tcp: TcpSummary | None = None
    """TCP health of the connection (None: not from a capture, or not ended yet)."""

    @property
    def calling_ae_title(self) -> str | None:
        return _ae(self.calling_ae)

    @property
    def called_ae_title(self) -> str | None:
        return _ae(self.called_ae)

    @property
    def negotiation_cut(self) -> bool:
        """The capture lost part of the A-ASSOCIATE-RQ or -AC: what the negotiation did not
        show may have been proposed or answered all the same."""
        return bool(self.rq_missing or self.ac_missing)

    @property
    def duration_ns(self) -> int | None:
        return None if self.end_ts is None else self.end_ts - self.start_ts

    @property
    def tls_client_hello(self) -> bool:
        """The client opened with a TLS record instead of DICOM."""
        return is_tls_record(self.client_head)

    @property
    def tls_server_answer(self) -> bool:
        """The server answered with a TLS record (an alert to a plain A-ASSOCIATE-RQ)."""
        return is_tls_record(self.server_head)

    def context(self, context_id: int) -> PresentationContext | None:
        for ctx in self.contexts:
            if ctx.id == context_id:
                return ctx
        return None


def is_tls_record(head: bytes) -> bool:
    """A TLS record header: content type 20-23 (handshake 22, alert 21), version 3.x."""
    return len(head) >= 3 and 20 <= head[0] <= 23 and head[1] == 0x03 and head[2] <= 0x04


def _ae(raw: bytes | None) -> str | None:
    return None if raw is None else ae_title_text(raw)


@dataclass(frozen=True, slots=True, kw_only=True)
class DimseMessage:
    """One DIMSE message as seen on one association."""

    association: int
    from_requestor: bool
    context_id: int
    command: CommandSet
    dataset: DataSetInfo | None
    ts: int
    frame: int | None
    end_ts: int
    end_frame: int | None
    complete: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Exchange:
    """A DIMSE request paired with its responses.

    ``latency_ns`` runs from the request's last byte to the final response's first byte (the
    peer's processing time plus the network); ``duration_ns`` from the request's first byte
    (so a large C-STORE includes its transfer). ``status_category`` is Success, Warning,
    Failure, Cancel, Pending (no final response yet) or Unknown.
    """

    association: int
    index: int
    service: str
    from_requestor: bool
    message_id: int | None
    sop_class: str | None
    sop_instance: str | None
    request: DimseMessage | None
    final: DimseMessage | None
    pending: int
    status: int | None
    status_category: str
    status_meaning: str
    error_comment: str | None
    latency_ns: int | None
    duration_ns: int | None
    cancelled: bool
    suboperations: tuple[int | None, int | None, int | None, int | None] | None
    """(remaining, completed, failed, warning) from the last response that carried them."""
    outstanding_before: int
    start_ts: int
    end_ts: int | None
    orphan: bool = False
    """Responses whose request is not in the capture: not an exchange of the association
    (see :class:`dissectors.dimse.Exchange`)."""

    @property
    def responses(self) -> int:
        """Responses seen: the pending ones and the final one."""
        return self.pending + (1 if self.final else 0)

    @property
    def request_dataset_bytes(self) -> int:
        ds = self.request.dataset if self.request else None
        return ds.length if ds else 0

    @property
    def response_dataset_bytes(self) -> int:
        ds = self.final.dataset if self.final else None
        return ds.length if ds else 0


@dataclass(frozen=True, slots=True, kw_only=True)
class PduRecord:
    """One PDU, kept only when the store is asked to keep PDUs (timelines, cross-checks)."""

    association: int
    from_requestor: bool
    pdu_type: int
    length: int
    ts: int
    frame: int | None
    end_ts: int
    end_frame: int | None
    pdvs: tuple[tuple[int, int, int], ...]
    complete: bool
    size: int
    """Bytes of the PDU, header included, the stream held: ``length + 6`` when complete;
    fewer when it was cut (its header may declare 4 GB)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ViolationRecord:
    """A protocol violation on an association (see :class:`dissectors.Violation`)."""

    association: int
    from_requestor: bool
    kind: ViolationKind
    code: str
    text: str
    ts: int
    frame: int | None
    offset: int | None
    cell: str | None
    action: Action | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Gap:
    """Bytes lost in the capture on one direction of an association."""

    association: int
    from_requestor: bool
    offset: int
    size: int
    ts: int
    frame: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Note:
    """Something worth knowing that is not a violation (resync, TCP anomaly)."""

    association: int
    from_requestor: bool
    code: str
    text: str
    ts: int
    frame: int | None


class Severity(IntEnum):
    """How much a finding matters; ordered so that ``max()`` gives the worst."""

    INFO = 1
    WARNING = 2
    ERROR = 3

    @property
    def label(self) -> str:
        return self.name.lower()


class Direction(StrEnum):
    """Who sent what a piece of evidence points at."""

    REQUESTOR_TO_ACCEPTOR = "requestor->acceptor"
    ACCEPTOR_TO_REQUESTOR = "acceptor->requestor"


#: The association id of findings about the capture as a whole (dropped packets, lag).
CAPTURE_WIDE = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """Where to look in the capture (``association`` is :data:`CAPTURE_WIDE` for findings
    about the capture as a whole)."""

    association: int
    frames: tuple[int, ...] = ()
    ts: int | None = None
    direction: Direction | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """A diagnosis: stable ``code``, plain-language ``title``/``explanation``/``hint``."""

    code: str
    severity: Severity
    title: str
    explanation: str
    hint: str
    evidence: Evidence


class LinkKind(StrEnum):
    """What a :class:`Link` ties together (workflows across associations and exchanges)."""

    MOVE = "move"
    """A C-MOVE exchange → an association carrying (or trying to carry) its C-STOREs."""
    GET = "get"
    """A C-GET exchange → one of its C-STORE sub-operations, on the same association."""
    COMMITMENT = "commitment"
    """A Storage Commitment N-ACTION → its N-EVENT-REPORT, or an association that tried to
    deliver it (``target_exchange`` None: a reverse association that was refused)."""


class LinkHow(StrEnum):
    """How a link was made: read off the wire, or inferred (and then explained)."""

    ORIGINATOR_FIELDS = "originator-fields"
    """Move Originator AE Title (0000,1030) and Message ID (0000,1031) of the C-STORE-RQs."""
    INFERRED = "inferred"
    """Addresses, AE titles and timing; ``reason`` says which."""
    SAME_ASSOCIATION = "same-association"
    """A C-STORE from the acceptor during a C-GET on the same association."""
    TRANSACTION_UID = "transaction-uid"
    """The same Transaction UID (0008,1195) in the N-ACTION and the N-EVENT-REPORT."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Link:
    """A request on one association tied to what carried out its work, here or elsewhere.

    ``association``/``exchange`` name the request (the C-MOVE, C-GET or N-ACTION);
    ``target_association``/``target_exchange`` what it led to (``target_exchange`` None: the
    association as a whole). ``reason`` says in words how the link was made.
    """

    kind: LinkKind
    association: int
    exchange: int
    target_association: int
    target_exchange: int | None
    how: LinkHow
    reason: str
    ts: int
    """When the target began (the association's start, the exchange's request)."""
