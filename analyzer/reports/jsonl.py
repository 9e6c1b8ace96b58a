"""JSON Lines output: one object per line, each with a ``type``.

The schema is versioned (:data:`SCHEMA_VERSION`) and documented in ``SCHEMA.md`` next to
this module. Fields are only ever added within a version.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import IO, Any

from analyzer import redact
from analyzer.model import (
    Association,
    Exchange,
    Finding,
    Gap,
    Link,
    LinkKind,
    PresentationContext,
    TcpSide,
    TcpSummary,
    UserInfo,
    ViolationRecord,
)
from analyzer.names import uid_name
from analyzer.store import Change, ChangeKind, Store
from analyzer.unlisted import UnlistedGroup
from analyzer.workflows import (
    commitment_data,
    is_report,
    is_request,
)
from dissectors.pdu import (
    abort_reason_text,
    abort_source_text,
    context_result_text,
    reject_reason_text,
    reject_result_text,
    reject_source_text,
    user_identity_type_text,
)

from .common import iso_time, ms, side
from .workflows import orphan, orphan_reason

SCHEMA_VERSION = 6


def _context(c: PresentationContext) -> dict[str, Any]:
    return {
        "id": c.id,
        "abstract_syntax": c.abstract_syntax,
        "abstract_syntax_name": uid_name(c.abstract_syntax) if c.abstract_syntax else None,
        "transfer_syntaxes": list(c.proposed_transfer_syntaxes),
        "result": c.result,
        "result_meaning": context_result_text(c.result) if c.result is not None else None,
        "accepted_transfer_syntax": c.accepted_transfer_syntax,
        "roles": {
            "proposed": _roles(c.scu_role, c.scp_role),
            "accepted": _roles(c.accepted_scu_role, c.accepted_scp_role),
        },
    }


def _roles(scu: int | None, scp: int | None) -> dict[str, bool] | None:
    if scu is None and scp is None:
        return None
    return {"scu": bool(scu), "scp": bool(scp)}


def _user_info(u: UserInfo | None) -> dict[str, Any] | None:
    if u is None:
        return None
    return {
        "max_pdu": u.max_pdu_length,
        "implementation_class_uid": u.implementation_class_uid,
        "implementation_version_name": u.implementation_version_name,
        "async_window": (
            {"invoked": u.async_window[0], "performed": u.async_window[1]}
            if u.async_window
            else None
        ),
        "role_selection": [
            {"sop_class": r.sop_class_uid, "scu": bool(r.scu_role), "scp": bool(r.scp_role)}
            for r in u.role_selections
        ],
        "extended_negotiation": [
            {"sop_class": e.sop_class_uid, "info": e.application_information.hex()}
            for e in u.extended_negotiation
        ],
        "common_extended_negotiation": [
            {
                "sop_class": e.sop_class_uid,
                "service_class": e.service_class_uid,
                "related_general_sop_classes": list(e.related_general_sop_classes),
            }
            for e in u.common_extended_negotiation
        ],
        "user_identity": (
            {
                "type": u.user_identity_type,
                "type_meaning": user_identity_type_text(u.user_identity_type),
                "username": u.user_identity_username,
                "passcode_sent": u.user_identity_has_passcode,
                "response_requested": u.user_identity_response_requested,
            }
            if u.user_identity_type is not None
            else None
        ),
        "user_identity_response": u.user_identity_response,
        "unknown_items": [{"type": i.item_type, "data": i.data.hex()} for i in u.unknown_items],
    }


def association_record(
    a: Association, links: Sequence[Link] = (), store: Store | None = None
) -> dict[str, Any]:
    """The ``association`` record of the schema; ``links`` are the association's links
    (:meth:`Store.links`), ``store`` is asked which side sent a linked report."""
    req, acc = a.requestor_info, a.acceptor_info
    return {
        "type": "association",
        "id": a.id,
        "client": {"ip": a.client.ip, "port": a.client.port},
        "server": {"ip": a.server.ip, "port": a.server.port},
        "calling_ae": a.calling_ae_title,
        "called_ae": a.called_ae_title,
        "calling_ae_raw": a.calling_ae.decode("latin-1") if a.calling_ae is not None else None,
        "called_ae_raw": a.called_ae.decode("latin-1") if a.called_ae is not None else None,
        "start": iso_time(a.start_ts),
        "end": iso_time(a.end_ts),
        "duration_ms": ms(a.duration_ns),
        "frames": {"first": a.start_frame, "last": a.end_frame},
        "outcome": str(a.outcome) if a.outcome else None,
        "outcome_state": a.outcome_state.label if a.outcome_state else None,
        "ended_by": a.ended_by,
        "closed_by": a.closed_by,
        "reject": (
            {
                "result": a.reject.result,
                "source": a.reject.source,
                "reason": a.reject.reason,
                "result_meaning": reject_result_text(a.reject.result),
                "source_meaning": reject_source_text(a.reject.source),
                "reason_meaning": reject_reason_text(a.reject.source, a.reject.reason),
                "frame": a.reject.frame,
            }
            if a.reject
            else None
        ),
        "abort": (
            {
                "source": a.abort.source,
                "reason": a.abort.reason,
                "by": a.abort.by,
                "source_meaning": abort_source_text(a.abort.source),
                "reason_meaning": abort_reason_text(a.abort.source, a.abort.reason),
                "frame": a.abort.frame,
            }
            if a.abort
            else None
        ),
        "application_context": a.application_context,
        "contexts": [_context(c) for c in a.contexts],
        "max_pdu": {
            "requestor": req.max_pdu_length if req else None,
            "acceptor": acc.max_pdu_length if acc else None,
        },
        "implementation": {
            "requestor": (
                {
                    "class_uid": req.implementation_class_uid,
                    "version_name": req.implementation_version_name,
                }
                if req
                else None
            ),
            "acceptor": (
                {
                    "class_uid": acc.implementation_class_uid,
                    "version_name": acc.implementation_version_name,
                }
                if acc
                else None
            ),
        },
        "user_information": {"requestor": _user_info(req), "acceptor": _user_info(acc)},
        "negotiation_cut": {
            "requestor": a.rq_missing or None,
            "acceptor": a.ac_missing or None,
        },
        "pdus": {
            "requestor": {
                "count": a.requestor_pdus.total,
                "bytes": a.requestor_pdus.bytes,
                "largest_p_data": a.requestor_pdus.largest_p_data,
            },
            "acceptor": {
                "count": a.acceptor_pdus.total,
                "bytes": a.acceptor_pdus.bytes,
                "largest_p_data": a.acceptor_pdus.largest_p_data,
            },
        },
        "exchanges": a.exchanges,
        "orphan_responses": a.orphan_responses,
        "violations": a.violations,
        "violations_unreported": a.violations_unreported,
        "gaps": {"count": a.gaps, "bytes": a.gap_bytes},
        "partial": a.partial,
        "handshake_seen": a.handshake,
        "tls_client_hello": a.tls_client_hello,
        "initiated_by": _initiated_by(a, links, store),
        "tcp": tcp_record(a.tcp),
    }


def _tcp_side(t: TcpSide) -> dict[str, Any]:
    return {
        "segments": t.segments,
        "data_segments": t.data_segments,
        "retransmissions": t.retransmissions,
        "retransmitted_bytes": t.retransmitted_bytes,
        "retransmission_bursts": t.retransmission_bursts,
        "first_retransmission_frame": t.first_retransmission_frame,
        "zero_windows": t.zero_windows,
        "zero_window_episodes": t.zero_window_episodes,
        "zero_window_ms": ms(t.zero_window_ns),
        "longest_zero_window_ms": ms(t.longest_zero_window_ns),
        "longest_zero_window_frame": t.longest_zero_window_frame,
        "keepalives": t.keepalives,
        "resets": t.resets,
        "rtt": {
            "samples": t.rtt_samples,
            "min_ms": ms(t.rtt_min_ns),
            "mean_ms": ms(t.rtt_mean_ns),
            "max_ms": ms(t.rtt_max_ns),
        },
    }


def tcp_record(t: TcpSummary | None) -> dict[str, Any] | None:
    """The ``tcp`` object of an ``association`` record (None: not from a capture)."""
    if t is None:
        return None
    reset = t.reset
    stall = t.unanswered
    return {
        "requestor": _tcp_side(t.requestor),
        "acceptor": _tcp_side(t.acceptor),
        "handshake_rtt_ms": ms(t.handshake_rtt_ns),
        "silences": t.silences,
        "longest_silence_ms": ms(t.longest_silence_ns) if t.silences else None,
        "longest_silence_frame": t.longest_silence_frame,
        "reset": (
            {
                "by": reset.by,
                "frame": reset.frame,
                "after_silence_ms": ms(reset.after_silence_ns),
            }
            if reset
            else None
        ),
        "unanswered_retransmissions": (
            {
                "by": side(stall.by_requestor),
                "count": stall.retransmissions,
                "first_frame": stall.since_frame,
                "last_frame": stall.last_frame,
                "duration_ms": ms(stall.last_ts - stall.since_ts),
            }
            if stall
            else None
        ),
        "third_party_resets": t.third_party_resets,
    }


def _initiated_by(a: Association, links: Sequence[Link], store: Store | None) -> Any:
    """The request whose work this association was opened for: a C-MOVE (sub-association,
    or an attempt at one), or a storage commitment request (a reverse association)."""
    for link in links:
        if link.target_association != a.id or link.association == a.id:
            continue
        if link.target_exchange is not None:  # a report: reverse only if the SCP opened it
            sent = _exchange(store, a.id, link.target_exchange) if store is not None else None
            if sent is None or not sent.from_requestor:
                continue
        return {
            "association": link.association,
            "exchange": link.exchange,
            "kind": str(link.kind),
            "how": str(link.how),
        }
    return None


def _exchange(store: Store, association: int, index: int) -> Exchange | None:
    return next((e for e in store.iter_exchanges(association) if e.index == index), None)


def exchange_record(
    e: Exchange, links: Sequence[Link] = (), store: Store | None = None
) -> dict[str, Any]:
    """The ``exchange`` record of the schema; ``links`` are its association's links
    (:meth:`Store.links`), ``store`` gives the linked reports' details."""
    sub = e.suboperations
    req = e.request
    move_destination = req.command.move_destination if req else None
    record = {
        "type": "exchange",
        "association": e.association,
        "index": e.index,
        "command": e.service,
        "from": side(e.from_requestor),
        "message_id": e.message_id,
        "sop_class": e.sop_class,
        "sop_class_name": uid_name(e.sop_class) if e.sop_class else None,
        "sop_instance": redact.uid(e.sop_instance),
        "status": e.status,
        "status_hex": f"0x{e.status:04X}" if e.status is not None else None,
        "status_category": e.status_category,
        "status_meaning": e.status_meaning,
        "error_comment": e.error_comment,
        "latency_ms": ms(e.latency_ns),
        "duration_ms": ms(e.duration_ns),
        "responses": e.responses,
        "pending": e.pending,
        "cancelled": e.cancelled,
        "suboperations": (
            {"remaining": sub[0], "completed": sub[1], "failed": sub[2], "warning": sub[3]}
            if sub
            else None
        ),
        "move_destination": move_destination,
        "request_dataset_bytes": e.request_dataset_bytes,
        "response_dataset_bytes": e.response_dataset_bytes,
        "outstanding_before": e.outstanding_before,
        "start": iso_time(e.start_ts),
        "end": iso_time(e.end_ts),
        "frames": {
            "request": req.frame if req else None,
            "response": e.final.frame if e.final else None,
        },
    }
    record.update(_workflow_fields(e, links, store))
    if orphan(e):
        # a response without its request is not an exchange (PS3.7 pairs them by Message ID)
        record["type"] = "orphan_response"
        record["orphan_reason"] = orphan_reason(store, e) if store is not None else None
    return record


def _from(e: Exchange, links: Sequence[Link], kind: LinkKind) -> list[Link]:
    return [
        x
        for x in links
        if x.kind == kind and x.association == e.association and x.exchange == e.index
    ]


def _workflow_fields(e: Exchange, links: Sequence[Link], store: Store | None) -> dict[str, Any]:
    """The link fields of an exchange record (null where they do not apply)."""
    out: dict[str, Any] = {
        "sub_associations": None,
        "sub_operation_exchanges": None,
        "transaction_uid": None,
        "commitment_reports": None,
        "commitment": None,
        "commitment_request": None,
        "failed_references": None,
    }
    if e.service == "C-MOVE":
        out["sub_associations"] = [x.target_association for x in _from(e, links, LinkKind.MOVE)]
    elif e.service == "C-GET":
        out["sub_operation_exchanges"] = [x.target_exchange for x in _from(e, links, LinkKind.GET)]
    elif is_request(e):
        data = commitment_data(e)
        out["transaction_uid"] = redact.uid(data.transaction_uid) if data else None
        found = _from(e, links, LinkKind.COMMITMENT)
        reports = [x for x in found if x.target_exchange is not None]
        out["commitment_reports"] = [
            {"association": x.target_association, "exchange": x.target_exchange} for x in reports
        ]
        out["commitment"] = {
            "delivery": _delivery(e, reports, store),
            "time_to_report_ms": ms(min(x.ts for x in reports) - e.start_ts) if reports else None,
            "references": data.references if data else None,
            "reverse_attempts": [x.target_association for x in found if x.target_exchange is None],
        }
    elif is_report(e):
        data = commitment_data(e)
        out["transaction_uid"] = redact.uid(data.transaction_uid) if data else None
        back = next(
            (
                x
                for x in links
                if x.kind == LinkKind.COMMITMENT
                and x.target_association == e.association
                and x.target_exchange == e.index
            ),
            None,
        )
        out["commitment_request"] = (
            {"association": back.association, "exchange": back.exchange} if back else None
        )
        out["failed_references"] = (
            [
                {
                    "sop_class": r.sop_class,
                    "sop_instance": redact.uid(r.sop_instance),
                    "reason": r.reason,
                    "reason_meaning": r.reason_text if r.reason is not None else None,
                }
                for r in data.failed
            ]
            if data
            else None
        )
    return out


def _delivery(e: Exchange, reports: list[Link], store: Store | None) -> str:
    if not reports:
        return "none"
    first = min(reports, key=lambda x: x.ts)
    if first.target_association == e.association:
        return "same-association"
    sent = (
        _exchange(store, first.target_association, first.target_exchange or 0)
        if store is not None
        else None
    )
    if sent is not None and not sent.from_requestor:
        return "new-association"
    return "reverse-association"


def link_record(link: Link) -> dict[str, Any]:
    """A ``link`` record: a request tied to what carried out its work."""
    return {
        "type": "link",
        "kind": str(link.kind),
        "association": link.association,
        "exchange": link.exchange,
        "to": {"association": link.target_association, "exchange": link.target_exchange},
        "how": str(link.how),
        "reason": redact.scrub(link.reason),
        "time": iso_time(link.ts),
    }


def violation_record(v: ViolationRecord) -> dict[str, Any]:
    return {
        "type": "violation",
        "association": v.association,
        "kind": str(v.kind),
        "code": v.code,
        "by": side(v.from_requestor),
        "text": v.text,
        "cell": v.cell,
        "action": v.action,
        "frame": v.frame,
        "time": iso_time(v.ts),
        "offset": v.offset,
    }


def gap_record(g: Gap) -> dict[str, Any]:
    return {
        "type": "gap",
        "association": g.association,
        "direction": side(g.from_requestor),
        "offset": g.offset,
        "size": g.size,
        "frame": g.frame,
        "time": iso_time(g.ts),
    }


def finding_record(f: Finding) -> dict[str, Any]:
    ev = f.evidence
    return {
        "type": "finding",
        "association": ev.association,
        "code": f.code,
        "severity": f.severity.label,
        "title": f.title,
        "explanation": f.explanation,
        "hint": f.hint,
        "evidence": {
            "frames": list(ev.frames),
            "time": iso_time(ev.ts),
            "direction": str(ev.direction) if ev.direction else None,
            "detail": ev.detail,
        },
    }


def header_record(store: Store, generator: str) -> dict[str, Any]:
    return {
        "type": "header",
        "schema_version": SCHEMA_VERSION,
        "generator": generator,
        "sources": store.source.files,
    }


def summary_record(store: Store) -> dict[str, Any]:
    src = store.source
    gone = store.forgotten  # a long-running source's store forgets old associations
    tally = store.tally()
    return {
        "type": "summary",
        "associations": tally.associations + gone.associations,
        "exchanges": tally.exchanges + gone.exchanges,
        "packets": src.packets,
        "tcp_segments": src.tcp_segments,
        "first_packet": iso_time(src.first_ts),
        "last_packet": iso_time(src.last_ts),
        "truncated": list(src.truncated),
        "warnings": list(src.warnings),
        "unlisted_connections": [unlisted_record(g) for g in store.unlisted],
    }


def unlisted_record(g: UnlistedGroup) -> dict[str, Any]:
    """Connections without DICOM to one server, counted rather than listed (a summary item)."""
    return {
        "server": {"ip": g.server_ip, "port": g.port},
        "connections": g.connections,
        "first": iso_time(g.first_ts),
        "last": iso_time(g.last_ts),
        "frames": {"first": g.first_frame, "last": g.last_frame},
        "findings": [
            {"code": f.code, "severity": f.severity.label, "title": f.title, "count": f.count}
            for f in g.findings.values()
        ],
    }


def records(store: Store, generator: str, *, findings: bool = True) -> Iterable[dict[str, Any]]:
    """Every record, associations in start order each followed by its own records."""
    yield header_record(store, generator)
    for a in store.by_start():
        links = store.links(a.id)
        yield association_record(a, links, store)
        for e in store.iter_exchanges(a.id):
            yield exchange_record(e, links, store)
        for v in store.violations(a.id):
            yield violation_record(v)
        for g in store.gaps(a.id):
            yield gap_record(g)
        if findings:
            for f in store.findings(a.id):
                yield finding_record(f)
        for link in links:
            if link.association == a.id:
                yield link_record(link)
    yield summary_record(store)


def change_record(change: Change, store: Store | None = None) -> dict[str, Any] | None:
    """The record a store change adds to a stream written as things happen (the proxy's and
    live capture's JSON Lines): associations once they have ended, everything else as it is
    stored, links as they are made. None for changes that have no record of their own.
    With ``store``, association and exchange records carry the links known so far."""
    record = change.record
    match change.kind:
        case ChangeKind.ASSOCIATION if isinstance(record, Association):
            if record.outcome is None:
                return None
            links = store.links(record.id) if store is not None else ()
            return association_record(record, links, store)
        case ChangeKind.EXCHANGE if isinstance(record, Exchange):
            links = store.links(record.association) if store is not None else ()
            return exchange_record(record, links, store)
        case ChangeKind.LINK if isinstance(record, Link):
            return link_record(record)
        case ChangeKind.FINDING if isinstance(record, Finding):
            return finding_record(record)
        case ChangeKind.VIOLATION if isinstance(record, ViolationRecord):
            return violation_record(record)
        case ChangeKind.GAP if isinstance(record, Gap):
            return gap_record(record)
        case _:
            return None


def json_line(record: dict[str, Any]) -> str:
    """One record as a line of JSON Lines (compact, UTF-8 text kept as is).

    The encoder escapes C0 control characters itself, but not DEL, the C1 controls, bidi
    overrides or line separators; a line holding any of these (crafted wire text) is written
    with every non-ASCII character escaped instead: the same JSON value, safe in a terminal
    and for line-oriented readers."""
    line = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
    if not line.isprintable():
        line = json.dumps(record, separators=(",", ":"))
    return line + "\n"


def write(store: Store, out: IO[str], generator: str) -> None:
    """Write the store as JSON Lines."""
    for record in records(store, generator):
        out.write(json_line(record))
