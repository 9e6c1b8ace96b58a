"""Events out of the dissectors: what happened on one connection, in capture order.

Every event names its ``connection`` (a number given by whoever feeds the observer: the
flow table for captures, the proxy for relayed connections). Times are integer nanoseconds
since the Unix epoch; ``frame`` is the 1-based capture frame number, or None when the bytes
did not come from a capture.

Consumers dispatch with ``match`` over :data:`DissectorEvent` and ``assert_never``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .dimse.assembly import AssembledMessage
from .dimse.exchanges import Exchange
from .pdu.items import Defect
from .pdu.pdus import ControlPdu
from .tcphealth import TcpSummary
from .ul_fsm import Action, Party, State


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An IP address (text form) and TCP port."""

    ip: str
    port: int

    def __str__(self) -> str:
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


class Outcome(StrEnum):
    """How an association (or a connection that never became one) ended."""

    RELEASED = "released"
    RELEASE_COLLISION = "release-collision"
    REJECTED = "rejected"
    ABORTED = "aborted"
    TRANSPORT_DROPPED = "transport-dropped"
    NEVER_ASSOCIATED = "never-associated"
    OPEN_AT_END = "open-at-end"


class Detection(StrEnum):
    """How DICOM was recognised on a connection."""

    ASSOCIATE_RQ = "associate-rq"
    """The client's first bytes are an A-ASSOCIATE-RQ."""
    ASSOCIATE_AC = "associate-ac"
    """The capture began after the A-ASSOCIATE-RQ: the acceptor's first bytes are its AC."""
    RESYNC = "resync"
    """The start was not captured; a P-DATA-TF with a command set (or a release/abort) was found."""


class CloseKind(StrEnum):
    """How one side ended its half of the TCP connection."""

    FIN = "fin"
    RST = "rst"


@dataclass(frozen=True, slots=True, kw_only=True)
class AssociationStarted:
    """DICOM was found on a connection; this is the first event of the association.

    ``ts``/``frame`` are those of the connection's first captured packet; ``handshake`` says
    whether the TCP handshake was seen; ``partial`` that the capture began mid-association.
    """

    connection: int
    client: Endpoint
    server: Endpoint
    ts: int
    frame: int | None
    handshake: bool
    partial: bool
    detection: Detection


@dataclass(frozen=True, slots=True, kw_only=True)
class PduObserved:
    """One PDU, reported when its last byte is seen (or at the end, if it never completed).

    ``pdu`` is the decoded PDU for every type but P-DATA-TF; for P-DATA-TF, ``pdvs`` lists
    each PDV as ``(context_id, control, item_length)``. ``complete`` is False when the
    connection or the capture ended inside the PDU, or a capture gap cut it (a control PDU
    so cut still has ``pdu``: what was captured of it, see
    :func:`~dissectors.pdu.pdus.decode_cut_control_pdu`). ``size`` is the bytes of the PDU,
    header included, that the stream held: ``length + 6`` when complete, what was there when
    it was cut (a header declaring 4 GB followed by 1 MB counts 1 MB, not 4 GB). ``injected``: a
    middlebox (the proxy) wrote it in ``from_requestor``'s direction; that side did not send it.
    """

    connection: int
    from_requestor: bool
    pdu_type: int
    length: int
    size: int
    offset: int
    ts: int
    frame: int | None
    end_ts: int
    end_frame: int | None
    pdu: ControlPdu | None = None
    pdvs: tuple[tuple[int, int, int], ...] = ()
    defects: tuple[Defect, ...] = ()
    complete: bool = True
    injected: bool = False

    @property
    def sender(self) -> Party:
        """Who wrote the PDU: the requestor, the acceptor or a third party."""
        return Party.sender(self.from_requestor, self.injected)


@dataclass(frozen=True, slots=True, kw_only=True)
class DimseMessageObserved:
    """One DIMSE message (command set and optional data set)."""

    connection: int
    from_requestor: bool
    message: AssembledMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class ExchangeObserved:
    """A request paired with its responses, or an unanswered request at the end."""

    connection: int
    exchange: Exchange


class ViolationKind(StrEnum):
    """Families of non-conformance the observer reports."""

    STATE_MACHINE = "state-machine"
    """A PDU or close the PS3.8 §9.2 table does not allow (``cell`` names it)."""
    MALFORMED_PDU = "malformed-pdu"
    """A PDU whose fields break PS3.8 §9.3 (lengths, items, values)."""
    FRAMING = "framing"
    """The byte stream cannot be split into PDUs/PDVs at this point."""
    DIMSE = "dimse"
    """Fragments or command sets that break PS3.7/PS3.8 Annex E."""
    UNKNOWN_ITEM = "unknown-item"
    """An item or sub-item PS3.8/PS3.7 does not define (kept as raw bytes)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Violation:
    """Something on the wire that breaks the standard; ``from_requestor`` is the sender.

    ``code`` is stable and kebab-case; ``cell`` is the PS3.8 table cell for state machine
    violations (``Evt10@Sta8``), with ``action`` the action the standard prescribes there.
    ``offset`` is a stream offset of the sender's direction, when it applies.
    """

    connection: int
    from_requestor: bool
    kind: ViolationKind
    code: str
    text: str
    ts: int
    frame: int | None
    offset: int | None = None
    cell: str | None = None
    action: Action | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamGap:
    """Bytes the capture lost (``size`` at stream ``offset`` of the sender's direction)."""

    connection: int
    from_requestor: bool
    offset: int
    size: int
    ts: int
    frame: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamResynced:
    """After lost bytes or bad framing, PDU boundaries were found again."""

    connection: int
    from_requestor: bool
    offset: int
    skipped: int
    ts: int
    frame: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpAnomaly:
    """A TCP-level observation worth a note: retransmitted data that differs, and similar."""

    connection: int
    from_requestor: bool
    code: str
    text: str
    ts: int
    frame: int | None
    offset: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionClosed:
    """One side closed (FIN) or reset (RST) the connection.

    ``state`` is that side's PS3.8 state when it closed, once it had read everything sent
    to it; ``peer_state`` the other side's. ``injected``: a middlebox closed the connection
    in that side's name.
    """

    connection: int
    by_requestor: bool
    kind: CloseKind
    ts: int
    frame: int | None
    state: State
    peer_state: State
    injected: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class AssociationEnded:
    """The last event of an association.

    ``outcome``, ``state`` and ``ended_by`` are those of :func:`dissectors.outcome.ending`:
    ``state`` is the PS3.8 state in which the transport dropped (``transport-dropped``), or
    the state when the capture ended (``open-at-end``); ``ended_by`` who rejected, aborted,
    asked for the release, or closed first (dropped). ``closed_by`` says who closed the
    connection first, when anyone did, and ``close_kind`` how. ``requestor_head`` and
    ``acceptor_head`` are the first bytes each side sent (a TLS record there means one side
    spoke TLS). ``idle_before_end_ns`` is how long nothing was sent before the A-ABORT or
    the close that ended the association (None when it ended otherwise).
    ``violations_unreported``: violations found beyond the bounds of what one association
    reports (:data:`dissectors.observer.MAX_VIOLATIONS`), counted only.
    """

    connection: int
    outcome: Outcome
    ts: int
    frame: int | None
    state: State | None
    ended_by: Party | None
    closed_by: Party | None
    bytes_from_requestor: int
    bytes_from_acceptor: int
    close_kind: CloseKind | None = None
    requestor_head: bytes = b""
    acceptor_head: bytes = b""
    idle_before_end_ns: int | None = None
    violations_unreported: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionWithoutDicom:
    """A TCP connection on which no DICOM was found, reported when it ends.

    The analyzer decides whether it matters (a DICOM port: a probe, a health check, TLS on
    one side only). ``client_head``/``server_head`` are the first bytes each side sent.
    """

    connection: int
    client: Endpoint
    server: Endpoint
    ts: int
    frame: int | None
    end_ts: int
    end_frame: int | None
    handshake: bool
    accepted: bool
    """The server answered the SYN with SYN+ACK (False: refused or unanswered)."""
    client_head: bytes
    server_head: bytes
    bytes_from_client: int
    bytes_from_server: int
    closed_by_client: bool | None
    close_kind: CloseKind | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalysisError:
    """The analysis of one connection failed (a defect of dicomtap, not of the traffic).

    The connection is not analysed further; every other connection is unaffected.
    """

    connection: int
    text: str
    ts: int
    frame: int | None


DissectorEvent = (
    AssociationStarted
    | PduObserved
    | DimseMessageObserved
    | ExchangeObserved
    | Violation
    | StreamGap
    | StreamResynced
    | TcpAnomaly
    | TcpSummary
    | ConnectionClosed
    | AssociationEnded
    | ConnectionWithoutDicom
    | AnalysisError
)
