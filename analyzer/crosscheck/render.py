"""The cross-check as text for a person, or as JSON Lines.

Text: per capture a verdict line, then per association what both agree on (counted), every
disagreement (the first ``limit`` per association), and where tshark cannot follow, grouped
by reason and side. Wire text (AE titles, UIDs) is escaped with
:func:`analyzer.textsafe.printable`.

JSON Lines (one object per line, each with a ``type``): ``header``, then per capture a
``capture`` record followed by its ``association_check`` records, and a ``summary`` last.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import IO, Any

from analyzer.reports.common import plural, side
from analyzer.textsafe import printable

from .records import AssociationCheck, CaptureCheck, Difference, Tally, Unfollowed

__all__ = ["exit_status", "json_records", "write_text"]


def exit_status(checks: Sequence[CaptureCheck]) -> int:
    """0: every capture agrees (where tshark can follow); 1: a disagreement."""
    return 0 if all(c.agrees for c in checks) else 1


def _arrow(from_requestor: bool | None) -> str:
    if from_requestor is None:
        return ""
    return "requestor → acceptor" if from_requestor else "acceptor → requestor"


def _tally(t: Tally) -> str:
    return (
        f"{plural(t.pdus, 'PDU')}, {plural(t.association_fields, 'association field')}, "
        f"{plural(t.dimse_fields, 'DIMSE field')}"
    )


def _frames(first: int | None, last: int | None) -> str:
    if first is None:
        return "no frame"
    return f"frame {first}" if first == last or last is None else f"frames {first}-{last}"


def _difference(d: Difference) -> str:
    where = f"frame {d.frame}" if d.frame is not None else "no frame"
    arrow = _arrow(d.from_requestor)
    if arrow:
        where += f", {arrow}"
    return printable(f"{where}: {d.what}: dicomtap {d.dicomtap}; tshark {d.tshark}")


def _unfollowed(u: Unfollowed) -> list[str]:
    arrow = _arrow(u.from_requestor)
    causes = "; ".join(u.causes)
    if u.cause_count > len(u.causes):
        causes += f" and {u.cause_count - len(u.causes)} more"
    head = (
        f"tshark cannot follow ({u.reason}){', ' + arrow if arrow else ''}, "
        f"{_frames(u.first_frame, u.last_frame)}: {plural(u.count, 'difference')}"
    )
    return [
        printable(head + (f" ({causes})" if causes else "")),
        f"  {u.explanation}",
        "  e.g. " + _difference(u.example),
    ]


def _association_title(a: AssociationCheck) -> str:
    if a.association is None:
        return f"connection {a.client} → {a.server}: DICOM that only tshark shows"
    assoc = a.association
    title = f"association {assoc.id}  {assoc.client} → {assoc.server}"
    if assoc.calling_ae_title is not None or assoc.called_ae_title is not None:
        title += f"  {assoc.calling_ae_title or '?'} → {assoc.called_ae_title or '?'}"
    return printable(title)


def _capture_title(c: CaptureCheck) -> str:
    if c.agrees:
        verdict = "agree"
        if c.unfollowed_count:
            verdict += f" (tshark cannot follow {plural(c.unfollowed_count, 'difference')})"
    else:
        verdict = f"DISAGREE ({plural(c.disagreement_count, 'disagreement')})"
    ports = (
        f"DICOM on port {', '.join(map(str, c.ports))}"
        if c.ports
        else "no port decoded as DICOM (tshark's heuristic only)"
    )
    return printable(
        f"{c.path}: {verdict}  [tshark {c.tshark_version}; {ports}; "
        f"out-of-order reassembly {'on' if c.reorder else 'off'}]"
    )


def write_text(checks: Sequence[CaptureCheck], out: IO[str], *, limit: int = 20) -> None:
    """Every capture's cross-check, then a verdict line."""
    for c in checks:
        out.write(_capture_title(c) + "\n")
        for note in c.notes:
            out.write(printable(f"  note: {note}") + "\n")
        if not c.associations:
            out.write("  no DICOM found by either tool: nothing to compare\n")
        for a in c.associations:
            out.write(f"  {_association_title(a)}\n")
            out.write(f"    agree on {_tally(a.agreed)}\n")
            for d in a.disagreements[:limit]:
                out.write(f"    DISAGREE {_difference(d)}\n")
            hidden = a.disagreement_count - min(limit, len(a.disagreements))
            if hidden:
                out.write(f"    ... and {plural(hidden, 'disagreement')} more (--format json)\n")
            for u in a.unfollowed:
                for line in _unfollowed(u):
                    out.write(f"    {line}\n")
    total = Tally()
    for c in checks:
        total.add(c.agreed())
    disagreements = sum(c.disagreement_count for c in checks)
    unfollowed = sum(c.unfollowed_count for c in checks)
    verdict = "agree" if not disagreements else "DISAGREE"
    out.write(
        f"verdict: {verdict}: {plural(len(checks), 'capture')}; agree on {_tally(total)}; "
        f"{plural(disagreements, 'disagreement')}; tshark cannot follow "
        f"{plural(unfollowed, 'difference')}\n"
    )


# --- JSON ------------------------------------------------------------------------------


def _diff_record(d: Difference) -> dict[str, Any]:
    return {
        "frame": d.frame,
        "from": side(d.from_requestor),
        "what": d.what,
        "dicomtap": d.dicomtap,
        "tshark": d.tshark,
    }


def _tally_record(t: Tally) -> dict[str, int]:
    return {
        "pdus": t.pdus,
        "association_fields": t.association_fields,
        "dimse_fields": t.dimse_fields,
    }


def _association_record(path: str, a: AssociationCheck) -> dict[str, Any]:
    assoc = a.association
    return {
        "type": "association_check",
        "file": path,
        "association": assoc.id if assoc else None,
        "client": {"ip": a.client.ip, "port": a.client.port},
        "server": {"ip": a.server.ip, "port": a.server.port},
        "calling_ae": assoc.calling_ae_title if assoc else None,
        "called_ae": assoc.called_ae_title if assoc else None,
        "verdict": "agree" if a.agrees else "disagree",
        "agreed": _tally_record(a.agreed),
        "disagreements": [_diff_record(d) for d in a.disagreements],
        "more_disagreements": a.more_disagreements,
        "tshark_cannot_follow": [
            {
                "reason": u.reason.value,
                "from": side(u.from_requestor),
                "frames": {"first": u.first_frame, "last": u.last_frame},
                "count": u.count,
                "causes": list(u.causes),
                "cause_count": u.cause_count,
                "explanation": u.explanation,
                "example": _diff_record(u.example),
            }
            for u in a.unfollowed
        ],
    }


def json_records(checks: Sequence[CaptureCheck], generator: str) -> Iterator[dict[str, Any]]:
    """The records of the JSON Lines output, in order."""
    yield {"type": "header", "generator": generator, "sources": [c.path for c in checks]}
    total = Tally()
    for c in checks:
        total.add(c.agreed())
        yield {
            "type": "capture",
            "file": c.path,
            "tshark_version": c.tshark_version,
            "tshark_options": list(c.tshark_options),
            "ports": list(c.ports),
            "tshark_reorder": c.reorder,
            "verdict": "agree" if c.agrees else "disagree",
            "agreed": _tally_record(c.agreed()),
            "disagreements": c.disagreement_count,
            "tshark_cannot_follow": c.unfollowed_count,
            "notes": list(c.notes),
        }
        for a in c.associations:
            yield _association_record(c.path, a)
    yield {
        "type": "summary",
        "captures": len(checks),
        "verdict": "agree" if all(c.agrees for c in checks) else "disagree",
        "agreed": _tally_record(total),
        "disagreements": sum(c.disagreement_count for c in checks),
        "tshark_cannot_follow": sum(c.unfollowed_count for c in checks),
        "exit_status": exit_status(checks),
    }
