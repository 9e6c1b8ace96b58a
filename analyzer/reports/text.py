"""Human-readable text: one block per association.

The negotiation part reads like the association dumps of DCMTK and pynetdicom, so it can
be set side by side with vendor logs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import IO

from analyzer.model import Association, Exchange, UserInfo
from analyzer.names import uid_name, uid_short
from analyzer.sources.packets import linktype_text
from analyzer.store import Store
from analyzer.textsafe import printable
from dissectors.pdu import context_result_text, user_identity_type_text

from .common import (
    duration_text,
    human_text,
    iso_time,
    outcome_text,
    side,
    size_text,
    status_text,
    unlisted_lines,
)
from .tcp import tcp_line
from .workflows import orphan, workflow_lines


def table(rows: Sequence[Sequence[str]], indent: str = "    ") -> list[str]:
    """Left-aligned columns, two spaces apart; the last column is not padded.

    Cells are escaped here (:func:`~analyzer.textsafe.printable`), before the columns are
    measured, so that a row holding wire text with control characters stays aligned."""
    if not rows:
        return []
    rows = [[printable(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(len(r) for r in rows))]
    lines = []
    for r in rows:
        cells = [c.ljust(widths[i]) if i < len(r) - 1 else c for i, c in enumerate(r)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def _ae_text(raw: bytes | None) -> str:
    if raw is None:
        return "?"
    text = raw.decode("ascii", "replace")
    stripped = text.strip(" \x00")
    return stripped if stripped else repr(text)


#: More presentation contexts than this are summarised in the text view (a modality that
#: proposes every storage SOP class sends 100 or more): the counts, then only the contexts
#: the DIMSE messages used and those refused (at most :data:`REFUSED_SHOWN`).
CONTEXTS_SHOWN = 16
REFUSED_SHOWN = 10


def _context_selection(a: Association, used: set[int]) -> tuple[list[str], list[int]]:
    """The summary lines and the IDs of the contexts worth a row, for a long proposal."""
    results = Counter(
        context_result_text(c.result).split(" (")[0] if c.result is not None else "no answer"
        for c in a.contexts
        if c.result != 0
    )
    accepted = sum(1 for c in a.contexts if c.result == 0)
    refused = ", ".join(f"{n} {why}" for why, n in results.most_common())
    line = f"  Presentation contexts: {len(a.contexts)} proposed, {accepted} accepted" + (
        f", {refused}" if refused else ""
    )
    shown_used = [c.id for c in a.contexts if c.id in used]
    others = [c.id for c in a.contexts if c.result != 0 and c.id not in used]
    what = [f"the {len(shown_used)} used by DIMSE messages"]
    if others:
        what.append(
            f"{REFUSED_SHOWN} of the {len(others)} not accepted"
            if len(others) > REFUSED_SHOWN
            else "the ones not accepted"
        )
    note = f"  (shown: {' and '.join(what)}; every one: --format json)"
    return [line, note], shown_used + others[:REFUSED_SHOWN]


def _contexts(a: Association, used: set[int] | None = None) -> list[str]:
    """The presentation context table; a long proposal is summarised (see
    :data:`CONTEXTS_SHOWN`) when ``used`` (the context IDs of the DIMSE messages) is given."""
    if not a.contexts:
        return []
    head = ["  Presentation contexts:"]
    contexts = a.contexts
    if used is not None and len(contexts) > CONTEXTS_SHOWN:
        head, ids = _context_selection(a, used)
        keep = set(ids)
        contexts = tuple(c for c in contexts if c.id in keep)
        if not contexts:
            return head
    rows = [
        [
            "ID",
            "Abstract syntax",
            "Proposed transfer syntaxes",
            "Result",
            "Accepted transfer syntax",
        ]
    ]
    for c in contexts:
        proposed = [uid_short(ts) for ts in c.proposed_transfer_syntaxes] or ["(not captured)"]
        result = (
            context_result_text(c.result).split(" (")[0] if c.result is not None else "(no answer)"
        )
        roles = ""
        if c.scu_role is not None or c.scp_role is not None:
            roles = f" [roles proposed SCU={c.scu_role} SCP={c.scp_role}"
            if c.accepted_scu_role is not None or c.accepted_scp_role is not None:
                roles += f", accepted SCU={c.accepted_scu_role} SCP={c.accepted_scp_role}"
            roles += "]"
        rows.append(
            [
                str(c.id),
                uid_name(c.abstract_syntax) if c.abstract_syntax else "(not captured)",
                proposed[0],
                result + roles,
                uid_short(c.accepted_transfer_syntax) if c.accepted_transfer_syntax else "-",
            ]
        )
        for ts in proposed[1:]:
            rows.append(["", "", ts, "", ""])
    return [*head, *table(rows)]


_NOT_CAPTURED = "(not captured)"


def _user_info_rows(
    req: UserInfo | None, acc: UserInfo | None, req_cut: bool = False, acc_cut: bool = False
) -> list[str]:
    """The user information table; ``*_cut``: that side's A-ASSOCIATE PDU was cut by the
    capture, so what it does not show was not captured rather than not sent."""
    if req is None and acc is None:
        return []

    def val(u: UserInfo | None, what: str) -> str:
        cut = req_cut if u is req else acc_cut
        text = _val(u, what)
        return _NOT_CAPTURED if cut and text in ("-", "(not sent)") else text

    def _val(u: UserInfo | None, what: str) -> str:
        if u is None:
            return "-"
        match what:
            case "max":
                if u.max_pdu_length is None:
                    return "(not sent)"
                return "unlimited (0)" if u.max_pdu_length == 0 else str(u.max_pdu_length)
            case "uid":
                return u.implementation_class_uid or "-"
            case "version":
                return u.implementation_version_name or "-"
            case "async":
                if u.async_window is None:
                    return "-"
                return f"invoked {u.async_window[0]}, performed {u.async_window[1]}"
            case "identity":
                if u.user_identity_type is None:
                    return "yes (0x59 response)" if u.user_identity_response else "-"
                text = user_identity_type_text(u.user_identity_type)
                if u.user_identity_username:
                    text += f" '{u.user_identity_username}'"
                if u.user_identity_has_passcode:
                    text += " + passcode"
                return text
            case "extneg":
                n = len(u.extended_negotiation) + len(u.common_extended_negotiation)
                return f"{n} item(s)" if n else "-"
            case "roles":
                return str(len(u.role_selections)) if u.role_selections else "-"
        return "-"

    rows = [
        ["User information", "Requestor", "Acceptor"],
        ["Max PDU length", val(req, "max"), val(acc, "max")],
        ["Implementation class UID", val(req, "uid"), val(acc, "uid")],
        ["Implementation version", val(req, "version"), val(acc, "version")],
    ]
    for label, key in (
        ("Async operations window", "async"),
        ("Role selections", "roles"),
        ("Extended negotiation", "extneg"),
        ("User identity", "identity"),
    ):
        r, c = val(req, key), val(acc, key)
        if {r, c} - {"-", _NOT_CAPTURED}:
            rows.append([label, r, c])
    return [f"  {rows[0][0]}", *table([["", *rows[0][1:]], *rows[1:]])]


def _exchanges(exchanges: Sequence[Exchange]) -> list[str]:
    if not exchanges:
        return []
    rows = [["#", "Command", "By", "Msg ID", "SOP class", "Status", "Latency", "Data"]]
    for e in exchanges:
        status = status_text(e)
        if e.pending:
            status += f" (+{e.pending} pending)"
        if e.cancelled:
            status += " (cancelled)"
        if e.suboperations and e.suboperations[1] is not None:
            _, completed, failed, warning = e.suboperations
            status += (
                f" [sub-ops: {completed} completed, {failed or 0} failed, {warning or 0} warning]"
            )
        if e.error_comment:
            status += f' "{e.error_comment}"'
        data = []
        if e.request_dataset_bytes:
            data.append(f"rq {size_text(e.request_dataset_bytes)}")
        if e.response_dataset_bytes:
            data.append(f"rsp {size_text(e.response_dataset_bytes)}")
        rows.append(
            [
                str(e.index),
                f"{e.service}-RSP only" if orphan(e) else e.service,
                "SCU" if e.from_requestor else "SCP",
                "-" if e.message_id is None else str(e.message_id),
                uid_name(e.sop_class) if e.sop_class else "-",
                status,
                duration_text(e.latency_ns),
                ", ".join(data),
            ]
        )
    return [f"  DIMSE exchanges ({len(exchanges)}):", *table(rows)]


def association_block(store: Store, a: Association) -> list[str]:
    """The lines describing one association (wire text not yet escaped: :func:`write` and
    every other caller pass them through :func:`~analyzer.reports.common.human_text`)."""
    title = f"Association {a.id}: {a.client} → {a.server}"
    if a.calling_ae is not None or a.called_ae is not None:
        title += f"  {_ae_text(a.calling_ae)} → {_ae_text(a.called_ae)}"
    lines = [title, f"  Outcome: {outcome_text(a)}"]
    frames = ""
    if a.start_frame is not None:
        frames = f" (frames {a.start_frame}-{a.end_frame if a.end_frame is not None else '…'})"
    lines.append(
        f"  Started: {iso_time(a.start_ts)}, lasted {duration_text(a.duration_ns)}{frames}"
    )
    if a.partial:
        lines.append(
            "  Partial: the capture began after the association started; contexts are unknown "
            "and data set encodings were guessed"
        )
    exchanges = store.exchanges(a.id)
    used = {m.context_id for e in exchanges for m in (e.request, e.final) if m is not None}
    lines += _contexts(a, used)
    lines += _user_info_rows(
        a.requestor_info, a.acceptor_info, bool(a.rq_missing), bool(a.ac_missing)
    )
    cut = [
        f"the last {n} bytes of the {what}"
        for n, what in ((a.rq_missing, "A-ASSOCIATE-RQ"), (a.ac_missing, "A-ASSOCIATE-AC"))
        if n
    ]
    if cut:
        lines.append(
            f"  Negotiation cut: the capture lost {' and '.join(cut)} (snap length or gap); "
            "the items in them are not known"
        )
    if a.requestor_pdus.total or a.acceptor_pdus.total:
        lines.append(
            f"  PDUs: requestor sent {a.requestor_pdus.total} "
            f"({size_text(a.requestor_pdus.bytes)}), acceptor sent {a.acceptor_pdus.total} "
            f"({size_text(a.acceptor_pdus.bytes)})"
        )
    lines += _exchanges(exchanges)
    lines += workflow_lines(store, a)
    gaps = store.gaps(a.id)
    if gaps:
        lost = sum(g.size for g in gaps)
        lines.append(f"  Capture gaps: {len(gaps)} ({size_text(lost)} missing from the capture)")
    tcp = tcp_line(a.tcp)
    if tcp is not None:
        lines.append(f"  {tcp}")
    findings = store.findings(a.id)
    if findings:
        lines.append(f"  Findings ({len(findings)}), see 'dicomtap diagnose' for the details:")
        for f in findings:
            lines.append(f"    {f.severity.label.upper():<7} {f.title}  [{f.code}]")
    violations = store.violations(a.id)
    if violations:
        unreported = (
            f"; {a.violations_unreported} more not recorded" if a.violations_unreported else ""
        )
        lines.append(f"  Protocol violations ({len(violations)}{unreported}):")
        for v in violations[:20]:
            where = f"frame {v.frame}" if v.frame is not None else "?"
            cell = f" [{v.cell}]" if v.cell else ""
            lines.append(f"    {where}: by the {side(v.from_requestor)}: {v.text}{cell}")
        if len(violations) > 20:
            lines.append(f"    … and {len(violations) - 20} more")
    return lines


def write(store: Store, out: IO[str]) -> None:
    """Write every association, in start order, then a one-line summary."""
    for a in store.by_start():
        out.write(human_text([*association_block(store, a), ""]))
    out.write(human_text([*unlisted_lines(store.unlisted), summary_line(store)]))


def summary_line(store: Store) -> str:
    src = store.source
    if not len(store) and not len(store.unlisted):
        text = f"No DICOM found in {src.packets} packet(s)"
        if src.tcp_segments == 0 and src.unsupported_link_types:
            kinds = ", ".join(linktype_text(t) for t in sorted(src.unsupported_link_types))
            text += f" (unsupported link type {kinds})"
        elif src.tcp_segments == 0:
            text += " (no TCP traffic at all)"
        return text + "."
    tally = store.tally()
    counts: dict[str, int] = {}
    for outcome, n in tally.outcomes.items():
        key = str(outcome) if outcome else "in progress"
        counts[key] = counts.get(key, 0) + n
    outcomes = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    unlisted = store.unlisted.connections
    return (
        f"{tally.associations} association(s)"
        + (f" ({outcomes})" if outcomes else "")
        + f", {tally.exchanges} DIMSE exchange(s), "
        + (f"{unlisted} connection(s) without DICOM not listed, " if unlisted else "")
        + f"{src.packets} packet(s) read."
    )
