"""The live association against the captured one: what the peer answered differently.

Both sides are model records of the same kind (:class:`~analyzer.model.Association`,
:class:`~analyzer.model.Exchange`, :class:`~analyzer.model.Finding`), the captured ones from
the capture, the live ones from the replay's own observer, so they are compared field by
field. A :class:`Row` is a difference (exit status 1), the same, or information (shown, not
counted: implementation names, data set sizes, times, unless ``--max-slowdown`` is given).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import zip_longest

from analyzer.model import Association, Exchange, Finding, PresentationContext, UserInfo
from analyzer.names import context_result_text, uid_short
from analyzer.reports.common import duration_text, outcome_text, size_text, status_text

__all__ = ["CAPTURE_ONLY_CODES", "Row", "Verdict", "compare"]

#: Findings about the capture rather than the peers: a replay cannot reproduce them.
CAPTURE_ONLY_CODES = frozenset({"capture-gap", "partial-association", "capture-drops"})
#: Latencies below this are never called slower (scheduling noise).
_SLOWDOWN_FLOOR_NS = 5_000_000


class Verdict(StrEnum):
    SAME = "same"
    DIFFERENT = "different"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Row:
    """One compared fact: its captured and live values (wire text not yet escaped)."""

    topic: str
    captured: str
    replay: str
    verdict: Verdict
    detail: bool = False
    """Shown only when it differs (or when every fact is asked for)."""


def _row(
    topic: str, captured: str, replay: str, *, counts: bool = True, detail: bool = False
) -> Row:
    if captured == replay:
        return Row(topic, captured, replay, Verdict.SAME, detail)
    return Row(topic, captured, replay, Verdict.DIFFERENT if counts else Verdict.INFO, detail)


def _context(c: PresentationContext | None) -> str:
    if c is None:
        return "(not proposed)"
    if c.result is None:
        return "(no answer)"
    text = context_result_text(c.result).split(" (")[0]
    if c.accepted and c.accepted_transfer_syntax:
        text += f", {uid_short(c.accepted_transfer_syntax)}"
    if c.accepted_scu_role is not None or c.accepted_scp_role is not None:
        text += f", roles SCU={c.accepted_scu_role} SCP={c.accepted_scp_role}"
    return text


def _proposed(c: PresentationContext | None) -> str:
    if c is None or not c.proposed:
        return "(not proposed)"
    syntaxes = ", ".join(uid_short(ts) for ts in c.proposed_transfer_syntaxes)
    return f"{uid_short(c.abstract_syntax)}: {syntaxes}"


#: With more contexts than this, those answered the same are details (shown with --all).
_FEW_CONTEXTS = 8


def _contexts(cap: Association, live: Association, proposals: bool) -> list[Row]:
    rows: list[Row] = []
    ids = sorted({c.id for c in cap.contexts} | {c.id for c in live.contexts})
    many = len(ids) > _FEW_CONTEXTS
    for i in ids:
        c, lv = cap.context(i), live.context(i)
        either = c if c is not None else lv
        name = uid_short(either.abstract_syntax if either is not None else None)
        if proposals:
            rows.append(_row(f"context {i} proposed", _proposed(c), _proposed(lv), detail=True))
        rows.append(_row(f"context {i} {name}", _context(c), _context(lv), detail=many))
    return rows


def _info(topic: str, cap: UserInfo | None, live: UserInfo | None) -> list[Row]:
    def max_pdu(u: UserInfo | None) -> str:
        if u is None or u.max_pdu_length is None:
            return "-"
        return "unlimited" if u.max_pdu_length == 0 else str(u.max_pdu_length)

    def implementation(u: UserInfo | None) -> str:
        if u is None:
            return "-"
        return f"{u.implementation_class_uid or '-'} {u.implementation_version_name or ''}".strip()

    def window(u: UserInfo | None) -> str:
        if u is None or u.async_window is None:
            return "-"
        return f"{u.async_window[0]}/{u.async_window[1]}"

    rows = [
        _row(f"{topic} max PDU length", max_pdu(cap), max_pdu(live), counts=False, detail=True),
        _row(
            f"{topic} implementation",
            implementation(cap),
            implementation(live),
            counts=False,
            detail=True,
        ),
    ]
    if window(cap) != "-" or window(live) != "-":
        rows.append(_row(f"{topic} async window", window(cap), window(live), detail=True))
    if cap is not None and live is not None:
        rows.append(
            _row(
                f"{topic} user identity response",
                "yes" if cap.user_identity_response else "no",
                "yes" if live.user_identity_response else "no",
                detail=True,
            )
        )
    return rows


def _exchange(e: Exchange | None) -> str:
    if e is None:
        return "-"
    text = f"{e.service} {status_text(e)}"
    if e.pending:
        text += f", {e.pending} pending"
    if e.cancelled:
        text += ", cancelled"
    if e.suboperations and e.suboperations[1] is not None:
        _, completed, failed, warning = e.suboperations
        text += f" [sub-ops {completed} completed, {failed or 0} failed, {warning or 0} warning]"
    return text


def _data(e: Exchange | None) -> str:
    if e is None:
        return "-"
    return f"rq {size_text(e.request_dataset_bytes)}, rsp {size_text(e.response_dataset_bytes)}"


def _exchanges(
    cap: Sequence[Exchange], live: Sequence[Exchange], slowdown: float | None
) -> list[Row]:
    rows: list[Row] = []
    for n, (c, lv) in enumerate(zip_longest(cap, live), 1):
        who = c if c is not None else lv
        assert who is not None
        by = "SCU" if who.from_requestor else "SCP"
        topic = f"exchange {n} ({by} {who.service})"
        rows.append(_row(topic, _exchange(c), _exchange(lv)))
        rows.append(_row(f"exchange {n} data sets", _data(c), _data(lv), counts=False, detail=True))
        if c is not None and lv is not None:
            rows.append(_latency(f"exchange {n} latency", c.latency_ns, lv.latency_ns, slowdown))
    return rows


def _latency(topic: str, cap: int | None, live: int | None, slowdown: float | None) -> Row:
    text_cap, text_live = duration_text(cap), duration_text(live)
    slower = (
        slowdown is not None
        and cap is not None
        and live is not None
        and live > max(cap * slowdown, _SLOWDOWN_FLOOR_NS)
    )
    if slower:
        return Row(topic, text_cap, f"{text_live} (over {slowdown:g}x)", Verdict.DIFFERENT)
    return Row(topic, text_cap, text_live, Verdict.SAME if text_cap == text_live else Verdict.INFO)


def _findings(cap: Sequence[Finding], live: Sequence[Finding]) -> list[Row]:
    def codes(found: Sequence[Finding]) -> Counter[str]:
        return Counter(
            f"{f.code} ({f.severity.label})" for f in found if f.code not in CAPTURE_ONLY_CODES
        )

    c, lv = codes(cap), codes(live)
    if not c and not lv:
        return [Row("findings", "none", "none", Verdict.SAME)]

    def text(counts: Counter[str]) -> str:
        return ", ".join(k if n == 1 else f"{k} x{n}" for k, n in sorted(counts.items())) or "none"

    return [_row("findings", text(c), text(lv))]


def _setup(a: Association) -> int | None:
    if a.rq_ts is None or a.ac_ts is None:
        return None
    return a.ac_ts - a.rq_ts


def compare(
    captured: Association,
    captured_exchanges: Sequence[Exchange],
    captured_findings: Sequence[Finding],
    live: Association,
    live_exchanges: Sequence[Exchange],
    live_findings: Sequence[Finding],
    *,
    requestor: bool,
    max_slowdown: float | None = None,
) -> list[Row]:
    """The rows comparing the association; ``requestor``: the replay played the requestor
    (so the peer under test is the acceptor)."""
    rows = [_row("association", outcome_text(captured), outcome_text(live))]
    if not requestor:
        rows.append(
            _row("calling AE title", captured.calling_ae_title or "-", live.calling_ae_title or "-")
        )
        rows.append(
            _row("called AE title", captured.called_ae_title or "-", live.called_ae_title or "-")
        )
    rows += _contexts(captured, live, proposals=not requestor)
    if requestor:
        rows += _info("acceptor", captured.acceptor_info, live.acceptor_info)
    else:
        rows += _info("requestor", captured.requestor_info, live.requestor_info)
    rows.append(_latency("association set-up", _setup(captured), _setup(live), max_slowdown))
    rows += _exchanges(captured_exchanges, live_exchanges, max_slowdown)
    rows += _findings(captured_findings, live_findings)
    rows.append(
        Row(
            "duration",
            duration_text(captured.duration_ns),
            duration_text(live.duration_ns),
            Verdict.INFO,
        )
    )
    return rows
