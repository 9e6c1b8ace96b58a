"""The model builder: dissector events in, model records into the store.

It keeps one mutable working record per open association and publishes a frozen
:class:`~analyzer.model.Association` whenever something a reader cares about changed. When
an association ends, the findings rules (if any were given) run over it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, assert_never

from dissectors import (
    AnalysisError,
    AssociationEnded,
    AssociationStarted,
    ConnectionClosed,
    ConnectionWithoutDicom,
    DimseMessageObserved,
    DissectorEvent,
    ExchangeObserved,
    Outcome,
    Party,
    PduObserved,
    StreamGap,
    StreamResynced,
    TcpAnomaly,
    TcpSummary,
    Violation,
)
from dissectors.dimse import AssembledMessage
from dissectors.dimse import Exchange as WireExchange
from dissectors.pdu import (
    Abort,
    AssociateAc,
    AssociateRj,
    AssociateRq,
    UserIdentityRq,
    UserInformation,
)
from dissectors.tcp import WELL_KNOWN_DICOM_PORTS

from .model import (
    AbortInfo,
    Association,
    DimseMessage,
    Evidence,
    Exchange,
    Finding,
    Gap,
    Note,
    PduRecord,
    PduStats,
    PresentationContext,
    RejectInfo,
    Severity,
    UserInfo,
    ViolationRecord,
)
from .names import status_meaning
from .spill import Ref
from .store import Store


class Rules(Protocol):
    """The findings rules, as the builder calls them (see :class:`analyzer.findings.Diagnosis`)."""

    def association_ended(self, store: Store, association: Association) -> Iterable[Finding]:
        """Findings about one association, when it has ended."""

    def exchange_ended(self, store: Store, exchange: Exchange) -> Iterable[Finding]:
        """Findings when an exchange is complete, just before it is stored (the linker ties
        a C-GET to its sub-operations there, so that its record, written as it is stored,
        names them)."""

    def source_ended(self, store: Store) -> Iterable[Finding]:
        """Findings across associations, when the source has ended."""

    def counted(self, store: Store, association: Association) -> Iterable[Finding]:
        """Findings about a connection without DICOM that is counted, not listed (it has no
        id, no links and no records of its own)."""


_SILENT_BLOCK = 4096  # connections without DICOM per block a spilling store keeps
_PUBLISH_EVERY_NS = 500_000_000  # republish a busy association at most twice a second


def user_info(ui: UserInformation | None) -> UserInfo | None:
    """The model's view of a User Information item (the passcode is dropped here)."""
    if ui is None:
        return None
    identity: UserIdentityRq | None = ui.user_identity
    window = ui.async_window
    username = None
    if identity is not None and identity.identity_type in (1, 2):
        username = identity.primary_field.decode("utf-8", "replace")
    return UserInfo(
        max_pdu_length=ui.maximum_length,
        implementation_class_uid=ui.implementation_class_uid,
        implementation_version_name=ui.implementation_version_name,
        async_window=(
            (window.max_operations_invoked, window.max_operations_performed) if window else None
        ),
        role_selections=ui.role_selections,
        extended_negotiation=ui.extended_negotiations,
        common_extended_negotiation=ui.common_extended_negotiations,
        user_identity_type=identity.identity_type if identity else None,
        user_identity_username=username,
        user_identity_has_passcode=bool(identity and identity.secondary_field),
        user_identity_response_requested=bool(identity and identity.positive_response_requested),
        user_identity_response=ui.user_identity_response is not None,
        unknown_items=ui.unknown,
    )


def join_contexts(
    rq: AssociateRq | None, ac: AssociateAc | None
) -> tuple[PresentationContext, ...]:
    """Join the RQ's proposals with the AC's answers by context ID (PS3.8 §9.3.3.2)."""
    answers = {c.context_id: c for c in ac.presentation_contexts} if ac else {}
    rq_roles = (
        {r.sop_class_uid: r for r in rq.user_information.role_selections}
        if rq and rq.user_information
        else {}
    )
    ac_roles = (
        {r.sop_class_uid: r for r in ac.user_information.role_selections}
        if ac and ac.user_information
        else {}
    )
    contexts: list[PresentationContext] = []
    proposed_ids: set[int] = set()
    for ctx in rq.presentation_contexts if rq else ():
        proposed_ids.add(ctx.context_id)
        answer = answers.get(ctx.context_id)
        role = rq_roles.get(ctx.abstract_syntax or "")
        accepted_role = ac_roles.get(ctx.abstract_syntax or "")
        contexts.append(
            PresentationContext(
                id=ctx.context_id,
                abstract_syntax=ctx.abstract_syntax,
                proposed_transfer_syntaxes=ctx.transfer_syntaxes,
                result=answer.result if answer else None,
                accepted_transfer_syntax=answer.transfer_syntax
                if answer and answer.result == 0
                else None,
                scu_role=role.scu_role if role else None,
                scp_role=role.scp_role if role else None,
                accepted_scu_role=accepted_role.scu_role if accepted_role else None,
                accepted_scp_role=accepted_role.scp_role if accepted_role else None,
            )
        )
    for ctx_id, answer in answers.items():
        if ctx_id not in proposed_ids:
            contexts.append(
                PresentationContext(
                    id=ctx_id,
                    abstract_syntax=None,
                    proposed_transfer_syntaxes=(),
                    result=answer.result,
                    accepted_transfer_syntax=answer.transfer_syntax if answer.result == 0 else None,
                    proposed=False,
                )
            )
    return tuple(contexts)


@dataclass(frozen=True, slots=True)
class _Requested:
    """The A-ASSOCIATE-RQ, when and where it was seen."""

    pdu: AssociateRq
    ts: int
    frame: int | None
    info: UserInfo | None


@dataclass(frozen=True, slots=True)
class _Accepted:
    """The A-ASSOCIATE-AC, when and where it was seen."""

    pdu: AssociateAc
    ts: int
    frame: int | None
    info: UserInfo | None


class _Working:
    """The mutable record of an open association: what the started record does not say yet
    is kept as typed parts, and joined into a record when a snapshot is taken."""

    def __init__(self, record: Association) -> None:
        self.record = record
        self.rq: _Requested | None = None
        self.ac: _Accepted | None = None
        self.contexts: tuple[PresentationContext, ...] = ()
        self.reject: RejectInfo | None = None
        self.abort: AbortInfo | None = None
        self.tcp: TcpSummary | None = None
        self.counts = [[0] * 8, [0] * 8]  # [requestor, acceptor] by PDU type
        self.bytes = [0, 0]
        self.largest = [0, 0]
        self.largest_frame: list[int | None] = [None, None]
        self.exchanges = 0
        self.orphans = 0
        self.violations = 0
        self.gaps = 0
        self.gap_bytes = 0
        self.last_published = record.start_ts

    def requested(self, pdu: AssociateRq, ts: int, frame: int | None) -> None:
        """The A-ASSOCIATE-RQ was seen."""
        self.rq = _Requested(pdu, ts, frame, user_info(pdu.user_information))
        self.contexts = join_contexts(pdu, self.ac.pdu if self.ac else None)

    def accepted(self, pdu: AssociateAc, ts: int, frame: int | None) -> None:
        """The A-ASSOCIATE-AC was seen (its AE titles stand in for a missed RQ's)."""
        self.ac = _Accepted(pdu, ts, frame, user_info(pdu.user_information))
        self.contexts = join_contexts(self.rq.pdu if self.rq else None, pdu)

    def snapshot(self) -> Association:
        rq, ac = self.rq, self.ac
        named = rq.pdu if rq else ac.pdu if ac else None
        return dataclasses.replace(
            self.record,
            calling_ae=named.calling_ae if named else None,
            called_ae=named.called_ae if named else None,
            rq_ts=rq.ts if rq else None,
            rq_frame=rq.frame if rq else None,
            application_context=rq.pdu.application_context if rq else None,
            protocol_version=rq.pdu.protocol_version if rq else None,
            requestor_info=rq.info if rq else None,
            rq_missing=rq.pdu.missing if rq else 0,
            ac_ts=ac.ts if ac else None,
            ac_frame=ac.frame if ac else None,
            acceptor_info=ac.info if ac else None,
            ac_missing=ac.pdu.missing if ac else 0,
            contexts=self.contexts,
            reject=self.reject,
            abort=self.abort,
            tcp=self.tcp,
            requestor_pdus=PduStats(
                tuple(self.counts[0]), self.bytes[0], self.largest[0], self.largest_frame[0]
            ),
            acceptor_pdus=PduStats(
                tuple(self.counts[1]), self.bytes[1], self.largest[1], self.largest_frame[1]
            ),
            exchanges=self.exchanges - self.orphans,
            orphan_responses=self.orphans,
            violations=self.violations,
            gaps=self.gaps,
            gap_bytes=self.gap_bytes,
        )


class ModelBuilder:
    """Turns dissector events into model records in ``store``.

    ``dicom_ports`` are ports on which a connection without DICOM is still reported (as
    ``never-associated``); any server endpoint that carried DICOM in the same source
    counts too. ``rules`` run on each association when it ends.
    """

    def __init__(
        self, store: Store, *, dicom_ports: Iterable[int] = (), rules: Rules | None = None
    ) -> None:
        self.store = store
        self._dicom_ports = frozenset(dicom_ports) | WELL_KNOWN_DICOM_PORTS
        self._rules = rules
        self._open: dict[int, _Working] = {}
        self._next_id = 1
        self._dicom_servers: set[tuple[str, int]] = set()
        self._dicom_pairs: set[tuple[str, str]] = set()  # (requestor IP, acceptor IP)
        # Connections without DICOM, with their TCP health, until the end says which
        # matter; a spilling store keeps full blocks of them out of memory (a port scan
        # or a SYN flood is that many connections).
        self._silent: list[tuple[ConnectionWithoutDicom, TcpSummary | None]] = []
        self._silent_blocks: list[Ref] = []
        self._tcp: dict[int, TcpSummary] = {}  # connections without DICOM (yet), by number

    def handle(self, event: DissectorEvent) -> None:
        """Apply one event."""
        match event:
            case AssociationStarted():
                self._started(event)
            case PduObserved():
                self._pdu(event)
            case DimseMessageObserved():
                pass  # messages reach the model through their exchange
            case ExchangeObserved():
                self._exchange(event.connection, event.exchange)
            case Violation():
                self._violation(event)
            case StreamGap():
                self._gap(event)
            case StreamResynced():
                self._note(
                    event.connection,
                    event.from_requestor,
                    "resynced",
                    f"PDU boundaries found again at stream offset {event.offset} after skipping "
                    f"{event.skipped} byte(s)",
                    event.ts,
                    event.frame,
                )
            case TcpAnomaly():
                self._note(
                    event.connection,
                    event.from_requestor,
                    event.code,
                    event.text,
                    event.ts,
                    event.frame,
                )
            case TcpSummary():
                self._tcp_summary(event)
            case ConnectionClosed():
                pass  # the outcome comes with AssociationEnded
            case AssociationEnded():
                self._ended(event)
            case ConnectionWithoutDicom():
                tcp = self._tcp.pop(event.connection, None)
                if event.handshake:
                    self._keep_silent(event, tcp)
            case AnalysisError():
                self._analysis_error(event)
            case _:
                assert_never(event)

    def finish(self) -> None:
        """The source ended: report the connections without DICOM that matter
        (:meth:`report_unassociated`), then run the rules about the source as a whole."""
        self.report_unassociated()
        if self._rules is not None:
            for finding in self._rules.source_ended(self.store):
                self.store.add_finding(finding)

    def report_unassociated(self) -> None:
        """Report the connections without DICOM seen so far that matter: listed as
        associations up to the store's :class:`~analyzer.unlisted.Unlisted` bounds, counted
        past them.

        Those to a DICOM port (named, well known, or seen carrying DICOM in this source),
        those a DICOM acceptor opened itself (a C-MOVE SCP or a storage commitment SCP
        trying to reach its destination, wherever that is), and those between two hosts that
        spoke DICOM to each other on another port (a modality trying a second port of its
        PACS).
        """
        dicom_hosts = {ip for ip, _ in self._dicom_servers}
        for event, tcp in self._silent_seen():
            server = event.server
            if (
                server.port not in self._dicom_ports
                and (server.ip, server.port) not in self._dicom_servers
                and event.client.ip not in dicom_hosts
                and (event.client.ip, server.ip) not in self._dicom_pairs
            ):
                continue
            unlisted = self.store.unlisted
            listed = unlisted.lists(server)
            record = Association(
                id=self._take_id() if listed else 0,
                connection=event.connection,
                client=event.client,
                server=event.server,
                start_ts=event.ts,
                start_frame=event.frame,
                end_ts=event.end_ts,
                end_frame=event.end_frame,
                outcome=Outcome.NEVER_ASSOCIATED,
                closed_by=None
                if event.closed_by_client is None
                else Party.of(event.closed_by_client),
                close_kind=event.close_kind,
                handshake=True,
                requestor_pdus=PduStats(bytes=event.bytes_from_client),
                acceptor_pdus=PduStats(bytes=event.bytes_from_server),
                client_head=event.client_head,
                server_head=event.server_head,
                syn_answered=event.accepted,
                tcp=tcp,
            )
            if listed:
                self.store.put_association(record)
                self._run_rules(record)
            else:
                found = () if self._rules is None else self._rules.counted(self.store, record)
                unlisted.count(record, found)
        self._silent = []
        self._silent_blocks = []

    def _keep_silent(self, event: ConnectionWithoutDicom, tcp: TcpSummary | None) -> None:
        self._silent.append((event, tcp))
        if len(self._silent) >= _SILENT_BLOCK:
            ref = self.store.stash(self._silent)
            if ref is not None:
                self._silent_blocks.append(ref)
                self._silent = []

    def _silent_seen(self) -> Iterator[tuple[ConnectionWithoutDicom, TcpSummary | None]]:
        """The connections without DICOM kept so far, in the order they ended."""
        for ref in self._silent_blocks:
            yield from self.store.unstash(ref)
        yield from self._silent

    # --- events ----------------------------------------------------------------------

    def _take_id(self) -> int:
        assoc_id = self._next_id
        self._next_id += 1
        return assoc_id

    def _started(self, event: AssociationStarted) -> None:
        record = Association(
            id=self._take_id(),
            connection=event.connection,
            client=event.client,
            server=event.server,
            start_ts=event.ts,
            start_frame=event.frame,
            handshake=event.handshake,
            partial=event.partial,
            detection=event.detection,
        )
        self._dicom_servers.add((event.server.ip, event.server.port))
        self._dicom_pairs.add((event.client.ip, event.server.ip))
        self._open[event.connection] = _Working(record)
        self.store.put_association(record)

    def _pdu(self, event: PduObserved) -> None:
        work = self._open.get(event.connection)
        if work is None:
            return
        side = 0 if event.from_requestor else 1
        if 0 < event.pdu_type < 8:
            work.counts[side][event.pdu_type] += 1
        work.bytes[side] += event.size  # what was seen, not what the header declared
        if event.pdu_type == 4 and event.length > work.largest[side]:
            work.largest[side] = event.length
            work.largest_frame[side] = event.end_frame
        if self.store.keep_pdus:
            self.store.add_pdu(
                PduRecord(
                    association=work.record.id,
                    from_requestor=event.from_requestor,
                    pdu_type=event.pdu_type,
                    length=event.length,
                    ts=event.ts,
                    frame=event.frame,
                    end_ts=event.end_ts,
                    end_frame=event.end_frame,
                    pdvs=event.pdvs,
                    complete=event.complete,
                    size=event.size,
                )
            )
        if event.pdu_type == 4:  # P-DATA-TF: counted above; republished at most twice a second
            if event.ts - work.last_published >= _PUBLISH_EVERY_NS:
                self._publish(work, event.end_ts)
            return
        pdu = event.pdu
        match pdu:
            case AssociateRq() if work.rq is None:
                work.requested(pdu, event.ts, event.frame)
            case AssociateAc() if work.ac is None:
                work.accepted(pdu, event.ts, event.frame)
            case AssociateRj() if work.reject is None:
                work.reject = RejectInfo(
                    result=pdu.result,
                    source=pdu.source,
                    reason=pdu.reason,
                    ts=event.ts,
                    frame=event.frame,
                )
            case Abort() if work.abort is None:
                work.abort = AbortInfo(
                    source=pdu.source,
                    reason=pdu.reason,
                    by=event.sender,
                    from_requestor=event.from_requestor,
                    ts=event.ts,
                    frame=event.frame,
                )
        self._publish(work, event.end_ts)

    def _publish(self, work: _Working, ts: int) -> None:
        """Publish the association's new state, if anyone is listening: a finished source is
        read when it ends, and the final version is always published (see _ended)."""
        if not self.store.has_listeners:
            return
        work.last_published = ts
        self.store.put_association(work.snapshot())

    def _exchange(self, connection: int, wire: WireExchange) -> None:
        work = self._open.get(connection)
        if work is None:
            return
        work.exchanges += 1  # every exchange record gets an index, orphans too
        if wire.orphan:
            work.orphans += 1
        assoc_id = work.record.id
        request = _message(assoc_id, wire.request, wire.from_requestor)
        final = _message(assoc_id, wire.final, not wire.from_requestor)
        head = wire.request or wire.final or wire.last_pending
        assert head is not None
        command = head.command
        service = command.service
        sop_class = None
        for m in (wire.request, wire.final, wire.last_pending):
            if m is not None and m.command.sop_class_uid:
                sop_class = m.command.sop_class_uid
                break
        status = wire.final.command.status if wire.final else None
        if wire.final is None:
            category, meaning = ("Pending", "no final response seen")
        else:
            category, meaning = status_meaning(status, service, sop_class)
        counters = None
        for m in (wire.final, wire.last_pending):
            if m is not None:
                c = m.command
                if any(v is not None for v in (c.remaining, c.completed, c.failed, c.warning)):
                    counters = (c.remaining, c.completed, c.failed, c.warning)
                    break
        start = wire.request.ts if wire.request else (wire.first_response_ts or head.ts)
        latency = duration = None
        if wire.request is not None and wire.final is not None:
            latency = wire.final.ts - wire.request.end_ts
            duration = wire.final.ts - wire.request.ts
        exchange = Exchange(
            association=assoc_id,
            index=work.exchanges,
            service=service,
            from_requestor=wire.from_requestor,
            message_id=wire.message_id,
            sop_class=sop_class,
            sop_instance=(wire.request or head).command.sop_instance_uid,
            request=request,
            final=final,
            pending=wire.pending,
            status=status,
            status_category=category,
            status_meaning=meaning,
            error_comment=wire.final.command.error_comment if wire.final else None,
            latency_ns=latency,
            duration_ns=duration,
            cancelled=wire.cancel is not None,
            suboperations=counters,
            outstanding_before=wire.outstanding_before,
            start_ts=start,
            end_ts=wire.final.end_ts if wire.final else None,
            orphan=wire.orphan,
        )
        if self._rules is not None:
            for finding in self._rules.exchange_ended(self.store, exchange):
                self.store.add_finding(finding)
        self.store.add_exchange(exchange)
        self._publish(work, exchange.end_ts or exchange.start_ts)

    def _violation(self, event: Violation) -> None:
        work = self._open.get(event.connection)
        if work is None:
            return
        work.violations += 1
        self.store.add_violation(
            ViolationRecord(
                association=work.record.id,
                from_requestor=event.from_requestor,
                kind=event.kind,
                code=event.code,
                text=event.text,
                ts=event.ts,
                frame=event.frame,
                offset=event.offset,
                cell=event.cell,
                action=event.action,
            )
        )

    def _gap(self, event: StreamGap) -> None:
        work = self._open.get(event.connection)
        if work is None:
            return
        work.gaps += 1
        work.gap_bytes += event.size
        self.store.add_gap(
            Gap(
                association=work.record.id,
                from_requestor=event.from_requestor,
                offset=event.offset,
                size=event.size,
                ts=event.ts,
                frame=event.frame,
            )
        )

    def _note(
        self,
        connection: int,
        from_requestor: bool,
        code: str,
        text: str,
        ts: int,
        frame: int | None,
    ) -> None:
        work = self._open.get(connection)
        if work is None:
            return
        self.store.add_note(
            Note(
                association=work.record.id,
                from_requestor=from_requestor,
                code=code,
                text=text,
                ts=ts,
                frame=frame,
            )
        )

    def _tcp_summary(self, event: TcpSummary) -> None:
        """The TCP health of a connection comes just before its last event."""
        work = self._open.get(event.connection)
        if work is not None:
            work.tcp = event
        else:
            self._tcp[event.connection] = event

    def _ended(self, event: AssociationEnded) -> None:
        work = self._open.pop(event.connection, None)
        if work is None:
            return
        record = dataclasses.replace(
            work.snapshot(),
            end_ts=event.ts,
            end_frame=event.frame,
            outcome=event.outcome,
            outcome_state=event.state,
            ended_by=event.ended_by,
            closed_by=event.closed_by,
            close_kind=event.close_kind,
            idle_before_end_ns=event.idle_before_end_ns,
            violations_unreported=event.violations_unreported,
            client_head=event.requestor_head,
            server_head=event.acceptor_head,
        )
        self.store.put_association(record)
        self._run_rules(record)

    def _analysis_error(self, event: AnalysisError) -> None:
        work = self._open.pop(event.connection, None)
        if work is None:
            return
        record = work.snapshot()
        self.store.put_association(record)
        self.store.add_finding(
            Finding(
                code="analysis-error",
                severity=Severity.WARNING,
                title="Analysis stopped on this association",
                explanation=(
                    f"dicomtap could not analyse this association further: {event.text}. What "
                    "is shown up to that point stands; other associations are not affected."
                ),
                hint="This is a defect of dicomtap: please report it with the capture.",
                evidence=Evidence(
                    association=record.id, frames=(event.frame,) if event.frame else (), ts=event.ts
                ),
            )
        )

    def _run_rules(self, record: Association) -> None:
        if self._rules is None:
            return
        for finding in self._rules.association_ended(self.store, record):
            self.store.add_finding(finding)


def _message(
    assoc_id: int, msg: AssembledMessage | None, from_requestor: bool
) -> DimseMessage | None:
    if msg is None:
        return None
    return DimseMessage(
        association=assoc_id,
        from_requestor=from_requestor,
        context_id=msg.context_id,
        command=msg.command,
        dataset=msg.dataset,
        ts=msg.ts,
        frame=msg.frame,
        end_ts=msg.end_ts,
        end_frame=msg.end_frame,
        complete=msg.complete,
    )
