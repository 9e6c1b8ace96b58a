"""What the cross-check reads from tshark and what it reports.

tshark's view of a capture comes in two parts: a :class:`FrameRow` for every frame with a
DICOM PDU (the framing: PDU types and lengths, PDVs), and a :class:`PduContent` for every
PDU other than a P-DATA-TF's data set fragments (AE titles, presentation contexts, user
information, reject and abort codes, DIMSE command sets). The comparison gives an
:class:`AssociationCheck` per association and a :class:`CaptureCheck` per file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from analyzer.model import Association, Endpoint

__all__ = [
    "REASON_TEXT",
    "AssociateFields",
    "AssociationCheck",
    "CaptureCheck",
    "Command",
    "ContextItem",
    "Difference",
    "FrameRow",
    "PduContent",
    "Reason",
    "Tally",
    "Unfollowed",
]

Address = tuple[str, int]
"""An IP address (compressed text form) and a TCP port."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameRow:
    """One frame as tshark's field output shows it.

    ``pdus`` are ``(type, length)`` of the PDUs that end in this frame, ``pdvs`` every PDV of
    them as ``(context ID, flags, length)`` (flags masked to bits 0-1, as tshark shows them).
    ``truncated``: the snap length cut the frame; ``out_of_order``: tshark flagged the
    segment as out of order; ``malformed``: tshark's error when it found the frame malformed.
    """

    frame: int
    src: Address | None
    dst: Address | None
    pdus: tuple[tuple[int, int], ...] = ()
    pdvs: tuple[tuple[int, int, int], ...] = ()
    truncated: bool = False
    out_of_order: bool = False
    malformed: str | None = None
    """tshark's first error on the frame, when it found it malformed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextItem:
    """A presentation context item of an A-ASSOCIATE-RQ (0x20) or -AC (0x21).

    ``ordered`` is False when tshark's tree merged sub-items of the same label, so that the
    order of ``transfer_syntaxes`` is not the wire order (they are compared as a multiset).
    """

    id: int | None
    result: int | None = None
    abstract_syntax: str | None = None
    transfer_syntaxes: tuple[str, ...] = ()
    ordered: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class AssociateFields:
    """What an A-ASSOCIATE-RQ or -AC carried, as tshark decoded it."""

    calling_ae: str | None = None
    called_ae: str | None = None
    contexts: tuple[ContextItem, ...] = ()
    max_pdu_length: int | None = None
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """The fields of a DIMSE command set that are compared (None: not in the command set)."""

    command_field: int | None
    message_id: int | None = None
    message_id_being_responded_to: int | None = None
    status: int | None = None
    sop_class_uid: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PduContent:
    """One PDU of tshark's tree: its fields beyond the framing."""

    pdu_type: int
    length: int
    associate: AssociateFields | None = None
    reject: tuple[int | None, int | None, int | None] | None = None
    """(result, source, reason)"""
    abort: tuple[int | None, int | None] | None = None
    """(source, reason)"""
    commands: tuple[Command, ...] = ()


class Reason(StrEnum):
    """Why a difference is not a disagreement: tshark cannot follow there (or, mid-stream,
    the two pick the stream up at different places)."""

    HOLE = "hole"
    """Bytes the capture lost: tshark does not reassemble a PDU with bytes missing."""
    SNAP_LENGTH = "snap-length"
    """The snap length cut a frame: the same, for bytes never captured."""
    MID_STREAM = "mid-stream"
    """The capture began after the association started: the tools pick the stream up at
    different places (either may be the one that shows less)."""
    OUT_OF_ORDER = "out-of-order"
    """Out-of-order segments, with tshark's reassembly of them turned off."""
    INCOMPLETE_PDU = "incomplete-pdu"
    """A PDU not read to its end (the capture or the connection ended inside it, or its
    framing broke): tshark shows only PDUs it can read whole."""
    MALFORMED = "tshark-malformed"
    """tshark found the frame malformed (an error of its own) and stopped decoding there."""
    UNKNOWN_PDU_TYPE = "unknown-pdu-type"
    """A PDU type PS3.8 does not define: tshark's dissector does not decode it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Difference:
    """One fact dicomtap and tshark see differently (as text for a person)."""

    frame: int | None
    from_requestor: bool | None
    what: str
    dicomtap: str
    tshark: str


#: What each reason means, for a person.
REASON_TEXT = {
    Reason.HOLE: "bytes lost in the capture: tshark does not reassemble a PDU with bytes "
    "missing, and finds the next PDU only where a segment starts with one",
    Reason.SNAP_LENGTH: "frames cut by the snap length: the bytes beyond it were never "
    "captured, and tshark does not reassemble a PDU with bytes missing",
    Reason.MID_STREAM: "the capture began after the association started: each tool finds "
    "the first PDU boundary its own way (tshark, told the port, takes a segment to start "
    "with a PDU header; dicomtap waits for a PDU header it can check), so they pick the "
    "stream up at different frames",
    Reason.OUT_OF_ORDER: "out-of-order segments: tshark puts them in order only with its "
    "tcp.reassemble_out_of_order preference, off in this run",
    Reason.INCOMPLETE_PDU: "a PDU not read to its end (the capture or the connection ends "
    "inside it, or its PDVs break its framing): tshark shows only PDUs it can read whole, and "
    "dicomtap marks this one incomplete",
    Reason.MALFORMED: "tshark reports the frame as malformed (an error of its own: for "
    "example an odd PDV length, which it rejects) and stops decoding it there",
    Reason.UNKNOWN_PDU_TYPE: "a PDU type PS3.8 does not define: tshark's DICOM dissector "
    "does not decode it, nor what follows it in the same segment",
}

#: Causes named per group (the rest are counted).
KEEP_CAUSES = 5


@dataclass(slots=True, kw_only=True)
class Unfollowed:
    """Differences tshark cannot be held to, for one reason on one side of an association.

    ``causes`` names what happened (``1448 bytes lost at frame 12``), the first few of
    :attr:`cause_count`; ``count`` is the number of differences, ``example`` the first.
    """

    reason: Reason
    from_requestor: bool | None
    causes: list[str]
    first_frame: int | None
    last_frame: int | None
    count: int
    example: Difference
    seen: set[str] = field(default_factory=set, repr=False)

    @property
    def cause_count(self) -> int:
        return len(self.seen)

    @property
    def explanation(self) -> str:
        return REASON_TEXT[self.reason]


@dataclass(slots=True)
class Tally:
    """Facts both tools agree on: PDUs (type, length, PDVs), association fields (AE titles,
    presentation contexts, user information, reject and abort codes), DIMSE fields (command
    field, message IDs, status, SOP class, pending responses)."""

    pdus: int = 0
    association_fields: int = 0
    dimse_fields: int = 0

    @property
    def total(self) -> int:
        return self.pdus + self.association_fields + self.dimse_fields

    def add(self, other: Tally) -> None:
        self.pdus += other.pdus
        self.association_fields += other.association_fields
        self.dimse_fields += other.dimse_fields


#: Differences kept per association (the rest are counted).
KEEP_DIFFERENCES = 1000


@dataclass(slots=True, kw_only=True)
class AssociationCheck:
    """The cross-check of one association.

    ``association`` is None for DICOM that tshark shows on a connection where dicomtap found
    no association (``client``/``server`` are then tshark's first sender and receiver).
    """

    association: Association | None
    client: Endpoint
    server: Endpoint
    agreed: Tally = field(default_factory=Tally)
    disagreements: list[Difference] = field(default_factory=list)
    more_disagreements: int = 0
    unfollowed: list[Unfollowed] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return not self.disagreements and not self.more_disagreements

    @property
    def disagreement_count(self) -> int:
        return len(self.disagreements) + self.more_disagreements

    @property
    def unfollowed_count(self) -> int:
        return sum(u.count for u in self.unfollowed)

    def disagree(self, difference: Difference) -> None:
        if len(self.disagreements) < KEEP_DIFFERENCES:
            self.disagreements.append(difference)
        else:
            self.more_disagreements += 1

    def cannot_follow(self, reason: Reason, cause: str, difference: Difference) -> None:
        """Record a difference that ``reason`` explains, ``cause`` saying what happened
        (grouped with the others of that reason on that side)."""
        frame = difference.frame
        for u in self.unfollowed:
            if u.reason == reason and u.from_requestor == difference.from_requestor:
                break
        else:
            u = Unfollowed(
                reason=reason,
                from_requestor=difference.from_requestor,
                causes=[],
                first_frame=frame,
                last_frame=frame,
                count=0,
                example=difference,
            )
            self.unfollowed.append(u)
        u.count += 1
        if frame is not None:
            u.first_frame = frame if u.first_frame is None else min(u.first_frame, frame)
            u.last_frame = frame if u.last_frame is None else max(u.last_frame, frame)
        if cause and cause not in u.seen:
            u.seen.add(cause)
            if len(u.causes) < KEEP_CAUSES:
                u.causes.append(cause)


@dataclass(slots=True, kw_only=True)
class CaptureCheck:
    """The cross-check of one capture file."""

    path: str
    tshark_version: str
    ports: tuple[int, ...]
    tshark_options: tuple[str, ...]
    reorder: bool
    """Whether tshark reassembled out-of-order segments."""
    associations: list[AssociationCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What a person should know about the run (a capture cut short, and similar)."""

    @property
    def agrees(self) -> bool:
        return all(a.agrees for a in self.associations)

    def agreed(self) -> Tally:
        total = Tally()
        for a in self.associations:
            total.add(a.agreed)
        return total

    @property
    def disagreement_count(self) -> int:
        return sum(a.disagreement_count for a in self.associations)

    @property
    def unfollowed_count(self) -> int:
        return sum(a.unfollowed_count for a in self.associations)
