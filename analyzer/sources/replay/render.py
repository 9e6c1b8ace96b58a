"""The replay's report as text, and what ``--dry-run`` prints. Wire text is escaped by the
caller (:func:`~analyzer.reports.common.human_text`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from analyzer.model import Association
from analyzer.names import context_result_text, uid_name
from analyzer.reports.common import duration_text, plural, size_text
from analyzer.reports.text import table
from dissectors.framing import PduBody, PduStart
from dissectors.pdu import (
    PDU_HEADER,
    Abort,
    AssociateAc,
    AssociateRj,
    AssociateRq,
    ControlPdu,
    abort_reason_text,
    abort_source_text,
    ae_title_text,
    decode_control_pdu,
    pdu_name,
    reject_reason_text,
)

from .compare import Verdict
from .options import ReplayOptions
from .player import rewritten_rq
from .run import ReplayResult
from .script import Await, AwaitKind, Close, Message, Send, Step

__all__ = ["dry_run_lines", "heading", "result_lines"]

_MARK = {Verdict.SAME: "=", Verdict.DIFFERENT: "≠", Verdict.INFO: "~"}


def _titles(a: Association) -> str:
    return f"{a.calling_ae_title or '?'} → {a.called_ae_title or '?'}"


def heading(opts: ReplayOptions, a: Association) -> str:
    """The first line: what is replayed, to or for whom."""
    what = f"association {a.id} of {opts.capture} ({_titles(a)})"
    if opts.requestor:
        if opts.target is None:
            return f"Replaying {what} as the requestor"
        return f"Replaying {what} as the requestor, to {opts.target[0]}:{opts.target[1]}"
    assert opts.listen is not None
    return f"Replaying {what} as the acceptor, on {opts.listen[0]}:{opts.listen[1]}"


def result_lines(result: ReplayResult, *, show_all: bool = False) -> list[str]:
    """The report of a finished replay."""
    lines = [heading(result.options, result.captured.association)]
    if result.unreachable is not None:
        lines.append(f"  Not replayed: {result.unreachable}")
        return lines
    lines.append(
        f"  Peer {result.peer}: sent {size_text(result.sent)}, received "
        f"{size_text(result.received)} in {duration_text(result.elapsed_ns)}"
    )
    counts = result.counts
    done = [
        f"{plural(counts[k], word)} {how}"
        for k, word, how in (
            ("renumbered", "response", "renumbered"),
            ("skipped", "request", "left out"),
            ("split", "PDU", "split to fit the peer's maximum length"),
        )
        if counts.get(k)
    ]
    if counts.get("zero_filled"):
        done.append(f"{size_text(counts['zero_filled'])} the capture lost sent as zeros")
    if done:
        lines.append(f"  Changed: {'; '.join(done)}")
    if result.notes:
        lines.append("  Notes:")
        lines.extend(f"    {n}" for n in result.notes)
    if result.stopped:
        lines.append(f"  Stopped before the end of the capture: {result.stopped}")
    rows = result.rows
    shown = [r for r in rows if show_all or r.verdict != Verdict.SAME or not r.detail]
    table_rows = [["", "", "Captured", "Replay"]]
    table_rows += [[_MARK[r.verdict], r.topic, r.captured, r.replay] for r in shown]
    lines.append("  Comparison (= same, ≠ different, ~ differs but not counted):")
    lines.extend(table(table_rows))
    if len(shown) < len(rows):
        lines.append(
            f"    ({plural(len(rows) - len(shown), 'other fact')} the same: --all shows them)"
        )
    differ = len(result.differences) + (1 if result.stopped else 0)
    peer, does = ("acceptor", "answer") if result.options.requestor else ("requestor", "behave")
    if differ:
        lines.append(
            f"Result: {plural(differ, 'difference')}: the {peer} does not {does} as captured."
        )
    else:
        lines.append(f"Result: no difference: the {peer} {does}s as captured.")
    return lines


# --- dry run ----------------------------------------------------------------------------


def _rq_text(pdu: AssociateRq) -> str:
    ui = pdu.user_information
    max_pdu = ui.maximum_length if ui is not None else None
    roles = len(ui.role_selections) if ui is not None else 0
    text = (
        f"A-ASSOCIATE-RQ  {ae_title_text(pdu.calling_ae)} → {ae_title_text(pdu.called_ae)}, "
        f"{plural(len(pdu.presentation_contexts), 'presentation context')}"
    )
    if roles:
        text += f", {plural(roles, 'role selection')}"
    if max_pdu is not None:
        text += f", max PDU {max_pdu or 'unlimited'}"
    if ui is not None and ui.implementation_version_name:
        text += f", {ui.implementation_version_name}"
    return text


def _control_text(pdu: ControlPdu) -> str:
    match pdu:
        case AssociateRq():
            return _rq_text(pdu)
        case AssociateAc():
            ok = sum(1 for c in pdu.presentation_contexts if c.result == 0)
            return (
                f"A-ASSOCIATE-AC  {ok} of {len(pdu.presentation_contexts)} presentation "
                "context(s) accepted"
            )
        case AssociateRj():
            return f"A-ASSOCIATE-RJ  {reject_reason_text(pdu.source, pdu.reason)}"
        case Abort():
            return (
                f"A-ABORT  {abort_source_text(pdu.source)}, "
                f"{abort_reason_text(pdu.source, pdu.reason)}"
            )
        case _:
            return pdu_name(int(pdu.pdu_type))


def _await_text(step: Await) -> str:
    match step.kind:
        case AwaitKind.ASSOCIATE_ANSWER:
            kind = int(step.pdu.pdu_type) if step.pdu is not None else 2
            return f"wait for the answer (captured: {pdu_name(kind)})"
        case AwaitKind.REQUEST:
            label = step.command.label if step.command else "request"
            return f"wait for request {step.index} of the peer ({label})"
        case AwaitKind.FINAL:
            label = step.command.label if step.command else "response"
            status = step.command.status if step.command else None
            captured = f", captured status 0x{status:04X}" if status is not None else ""
            return f"wait for the final {label} to request {step.index}{captured}"
        case AwaitKind.CLOSE:
            how = step.close.value.upper() if step.close else ""
            return f"wait for the peer to close ({how})"
        case _:
            return f"wait for the peer's {step.kind.value}"


def _message_text(step: Message) -> str:
    m = step.message
    cmd = m.command
    text = f"{cmd.label}  message ID "
    text += (
        str(cmd.message_id_being_responded_to) + " (responded to)"
        if cmd.is_response
        else str(cmd.message_id)
    )
    text += f", context {m.context_id}"
    if cmd.sop_class_uid:
        text += f", {uid_name(cmd.sop_class_uid)}"
    if cmd.status is not None:
        text += f", status 0x{cmd.status:04X}"
    if m.dataset is not None:
        text += f", data set {size_text(m.dataset.length)}"
    return text


def dry_run_lines(opts: ReplayOptions, a: Association, steps: Iterable[Step]) -> Iterator[str]:
    """What the replay would send and wait for, one line each (the captured order)."""
    yield heading(opts, a) + " (dry run: nothing is sent)"
    p_data = p_bytes = 0
    for step in steps:
        match step:
            case Send(records):
                for r in records:
                    if type(r) is PduStart and r.pdu_type == 4:
                        p_data += 1
                        p_bytes += r.length + 6
                    elif type(r) is PduBody:
                        body = r.body
                        if r.pdu_type == 1 and opts.requestor:
                            whole, notes = rewritten_rq(
                                opts, PDU_HEADER.pack(1, 0, len(body)) + body
                            )
                            body = whole[6:]
                            yield from (f"  ({n})" for n in notes)
                        pdu, _ = decode_control_pdu(r.pdu_type, body)
                        yield f"  send  {_control_text(pdu)}"
            case Message():
                yield f"  send  {_message_text(step)}"
            case Await():
                yield f"  {_await_text(step)}"
            case Close(kind):
                yield f"  close the connection ({kind.value.upper()})"
    yield f"  P-DATA-TF: {plural(p_data, 'PDU')}, {size_text(p_bytes)}"
    for ctx in a.contexts:
        if ctx.result is not None and ctx.result != 0:
            yield (
                f"  (captured: context {ctx.id} {uid_name(ctx.abstract_syntax)} "
                f"{context_result_text(ctx.result)})"
            )
