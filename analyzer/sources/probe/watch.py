"""``--watch``: what changed from one probe to the next.

A probe is reduced to a state: the monitoring state, each problem by its key, each proposed
context's answer, each service's status category, each scan pair's answer, and what the
SCP said about itself. Figures (latencies) are left out, so only changes of substance are
printed; a latency that crosses ``--warn`` or ``--crit`` is a problem, and so a change.
"""

from __future__ import annotations

from analyzer.names import context_result_text, uid_name, uid_short

from .result import ProbeResult

__all__ = ["changes", "state"]

State = dict[str, str]


def state(r: ProbeResult) -> State:
    """What matters in a result, keyed by what it is about."""
    s: State = {"status": r.health.name}
    for p in r.problems:
        s[f"problem {p.key}"] = f"{p.health.name}: {p.text}"
    a = r.association
    if a is not None:
        for c in a.contexts:
            what = uid_name(c.abstract_syntax) if c.abstract_syntax else "?"
            answer = "no answer" if c.result is None else context_result_text(c.result)
            if c.accepted and c.accepted_transfer_syntax:
                answer += f" ({uid_short(c.accepted_transfer_syntax)})"
            s[f"context {c.id} {what}"] = answer
        acc = a.acceptor_info
        if acc is not None:
            s["peer implementation"] = (
                f"{acc.implementation_class_uid or '-'} {acc.implementation_version_name or '-'}"
            )
            s["peer max PDU length"] = str(acc.max_pdu_length)
    for svc in r.services:
        status = f"0x{svc.status:04X} {svc.meaning}" if svc.status is not None else "no response"
        s[f"service {svc.name}"] = status if svc.error is None else f"{status}: {svc.error}"
    if r.scan is not None:
        for (sop, ts), result in r.scan.results.items():
            answer = "no answer" if result is None else ("accepted" if result == 0 else "rejected")
            s[f"scan {uid_name(sop)} / {uid_short(ts)}"] = answer
    return s


def _problem_key(key: str) -> bool:
    return key.startswith("problem ")


def changes(before: State, after: State) -> list[str]:
    """Lines saying what changed: ``+`` new, ``-`` gone, ``~`` different."""
    out: list[str] = []
    for key, value in after.items():
        old = before.get(key)
        if old is None:
            out.append(f"+ {value}" if _problem_key(key) else f"+ {key}: {value}")
        elif old != value and not (_problem_key(key) and old.split(":")[0] == value.split(":")[0]):
            out.append(f"~ {key}: {old} -> {value}")
    for key, value in before.items():
        if key not in after:
            out.append(f"- {value} (resolved)" if _problem_key(key) else f"- {key}: {value}")
    return out
