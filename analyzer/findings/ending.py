"""How associations ended: aborts, dropped connections, silences, collisions, and
requests left without an answer."""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.model import CloseKind, Exchange, Finding, Outcome, Party, Severity, State
from analyzer.reports.common import plural
from dissectors.pdu import AbortSource, abort_reason_text, abort_source_text

from .facts import Facts, cap, exchange_label, seconds

#: A silence at least this long before an abort or a drop is worth a finding (DICOM peers
#: answer in milliseconds; timeouts are configured in seconds).
IDLE_THRESHOLD_NS = 2_000_000_000
_COMMON_TIMEOUTS_S = (10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 900, 1800, 3600)
#: States of the side left behind in which a release collision was under way (PS3.8 Sta9-12).
_COLLISION_STATES = frozenset({State.STA9, State.STA10, State.STA11, State.STA12})


def _silence(f: Facts) -> int | None:
    """The silence before the end (ns), when it is long enough to be worth saying."""
    idle = f.a.idle_before_end_ns
    return idle if idle is not None and idle >= IDLE_THRESHOLD_NS else None


def _before(f: Facts, ts: int) -> str:
    """What was going on just before ``ts``, in words."""
    started = [e for e in f.exchanges if e.start_ts <= ts]
    if not started:
        return "No DIMSE message had been exchanged."
    last = max(started, key=lambda e: e.start_ts)
    open_ = [e for e in started if e.final is None or (e.end_ts or 0) > ts]
    if open_:
        e = max(open_, key=lambda e: e.start_ts)
        req = e.request
        if req is not None and (not req.complete or req.end_ts > ts):
            return f"{cap(f.party(e.from_requestor))} was still sending {exchange_label(e)}."
        waited = seconds(ts - (req.end_ts if req else e.start_ts))
        return f"{exchange_label(e)} had been waiting {waited} for its response."
    return (
        f"The last exchange before it, {exchange_label(last)}, had completed with "
        f"{last.status_meaning}."
    )


def association_aborted(f: Facts) -> Iterator[Finding]:
    a = f.a
    ab = a.abort
    by = a.ended_by
    if a.outcome != Outcome.ABORTED or ab is None or by is None:
        return
    who = f.who(by)
    context = _before(f, ab.ts)
    if by == Party.THIRD_PARTY:
        why = (
            f"Neither DICOM peer sent this A-ABORT: {who} wrote it to the "
            f"{'acceptor' if ab.from_requestor else 'requestor'} in the other's name."
        )
        hint = (
            "Look at the log of the proxy or middlebox at that time: a write timeout, a stalled "
            "peer, a limit or its own shutdown makes it abort the association."
        )
    elif ab.source == AbortSource.SERVICE_PROVIDER:
        other = f.party(by != Party.REQUESTOR)
        reason = abort_reason_text(ab.source, ab.reason)
        why = (
            f"The DICOM stack of {who} aborted the association because of a protocol "
            f"error ({reason})."
        )
        found = [
            v for v in f.violations if v.from_requestor != (by == Party.REQUESTOR) and v.ts <= ab.ts
        ]
        if found:
            v = found[-1]
            why += f" The capture shows what it objected to: {v.text}."
            hint = (
                f"Fix the software of {other}: it sent what PS3.8 does not allow (see the "
                "protocol-violation findings)."
            )
        else:
            hint = (
                f"Look at the last PDU {other} sent before the abort and compare it with PS3.8; "
                f"{who} may also be stricter than the standard (a known quirk of some devices)."
            )
    else:
        other = f.party(by != Party.REQUESTOR)
        why = (
            f"{cap(who)} aborted the association on purpose (A-ABORT from the DICOM service-user)."
        )
        if by == Party.REQUESTOR:
            hint = (
                f"The requestor gave up. Its log at that time says why: often a DIMSE or "
                f"network timeout while waiting for {other}, or an error of its own."
            )
        else:
            hint = (
                "The acceptor refused to go on. Its log at that time says why: a storage error "
                "(disk full), an object it rejects, an association limit, or a timeout."
            )
    idle = _silence(f)
    if idle is not None:
        why += f" Nothing had been sent for {seconds(idle)} before the abort."
    yield f.finding(
        "association-aborted",
        Severity.ERROR,
        "Association aborted by " + ("a third party" if by == Party.THIRD_PARTY else f"the {by}"),
        f"{why} {context} A-ABORT source {ab.source} ({abort_source_text(ab.source)}), "
        f"reason {ab.reason} ({abort_reason_text(ab.source, ab.reason)}).",
        hint,
        frames=(ab.frame,),
        ts=ab.ts,
        requestor_sent=ab.from_requestor,
        detail=f"source={ab.source} reason={ab.reason}",
    )


def transport_dropped(f: Facts) -> Iterator[Finding]:
    a = f.a
    if a.outcome != Outcome.TRANSPORT_DROPPED:
        return
    closer = f.who(a.ended_by) if a.ended_by is not None else "one side"
    sent = _direction(a.ended_by)
    how = (
        "reset the connection (TCP RST)"
        if a.close_kind == CloseKind.RST
        else "closed the connection (TCP FIN)"
    )
    state = a.outcome_state
    where = f" while the other side was in {state.label} ({state.description})" if state else ""
    if state in _COLLISION_STATES:
        return  # a release collision left unfinished: see release_collision
    if state == State.STA8 and a.ended_by != Party.THIRD_PARTY:
        # The side left behind had read the closer's A-RELEASE-RQ and not answered it yet.
        yield f.finding(
            "transport-dropped",
            Severity.WARNING,
            "Connection closed before the release answer",
            f"{cap(closer)} asked to release the association and {how} without waiting "
            "for the A-RELEASE-RP.",
            "Usually harmless (some devices close early); the other side may log an error for it.",
            frames=(a.end_frame,),
            ts=a.end_ts,
            requestor_sent=sent,
        )
        return
    context = _before(f, a.end_ts or a.start_ts)
    if a.ended_by == Party.THIRD_PARTY:
        hint = (
            "The relay between them (a proxy that marks what it writes) closed the connection "
            "itself; neither AE did. Its log says why: a refusal, a timeout, its shutdown."
        )
    elif a.close_kind == CloseKind.RST:
        hint = (
            "A reset without A-ABORT means the process on that side died or was killed, the host "
            "ran short of resources, or a firewall/IDS cut the connection."
        )
    else:
        hint = (
            "A close without A-RELEASE or A-ABORT means the application on that side ended the "
            "connection without telling its peer: a crash, an internal error, or non-conformant "
            "software."
        )
    idle = _silence(f)
    if idle is not None:
        hint += (
            f" It came after {seconds(idle)} of silence: a firewall or NAT idle timeout does "
            "exactly this."
        )
    yield f.finding(
        "transport-dropped",
        Severity.ERROR,
        "Connection dropped without release or abort",
        f"{cap(closer)} {how}{where}, without A-RELEASE or A-ABORT. {context}",
        hint,
        frames=(a.end_frame,),
        ts=a.end_ts,
        requestor_sent=sent,
        detail=f"{a.close_kind or 'close'} in {state.label if state else '?'}",
    )


def idle_before_end(f: Facts) -> Iterator[Finding]:
    a = f.a
    idle = _silence(f)
    if idle is None or a.outcome not in (Outcome.ABORTED, Outcome.TRANSPORT_DROPPED):
        return
    secs = idle / 1e9
    near = min(_COMMON_TIMEOUTS_S, key=lambda t: abs(t - secs))
    round_note = (
        f" {secs:.1f} s is close to {near} s, a common timeout setting."
        if abs(near - secs) <= max(1.0, 0.05 * near)
        else ""
    )
    if a.outcome == Outcome.ABORTED and a.abort is not None and a.ended_by is not None:
        who = f.who(a.ended_by)
        what = f"{who} aborted"
        ts, frame = a.abort.ts, a.abort.frame
        by: bool | None = a.abort.from_requestor
        hint = (
            f"A timeout on the side of {who} ended the association (a DIMSE, ACSE or network "
            "timeout). "
            "If the peer needed that long (a large C-FIND or C-MOVE, a slow archive), raise that "
            "timeout; otherwise find out why the peer stalled."
        )
    else:
        who = f.who(a.ended_by) if a.ended_by is not None else "one side"
        what = f"{who} closed the connection"
        ts, frame = a.end_ts or a.start_ts, a.end_frame
        by = _direction(a.ended_by)
        hint = (
            "A silence followed by a dropped connection is the mark of an idle timeout: on one of "
            "the applications, or on a firewall or NAT device between them. Compare the silence "
            "with their idle timeouts; DICOM itself has no keep-alive."
        )
    yield f.finding(
        "idle-before-abort",
        Severity.WARNING,
        f"{seconds(idle)} of silence before the end",
        f"Nothing was sent in either direction for {seconds(idle)}; then {what}.{round_note}",
        hint,
        frames=(frame,),
        ts=ts,
        requestor_sent=by,
        detail=f"{secs:.3f} s",
    )


def _direction(party: Party | None) -> bool | None:
    """The direction of what ``party`` sent (None for a third party: it may write either)."""
    return None if party in (None, Party.THIRD_PARTY) else party == Party.REQUESTOR


def release_collision(f: Facts) -> Iterator[Finding]:
    a = f.a
    if a.outcome == Outcome.TRANSPORT_DROPPED and a.outcome_state in _COLLISION_STATES:
        closer = f.who(a.ended_by) if a.ended_by is not None else "one side"
        yield f.finding(
            "release-collision",
            Severity.INFO,  # the work was done; only the release was cut short
            "Release collision left unfinished",
            "The requestor and the acceptor both sent A-RELEASE-RQ before seeing the other's "
            f"(a release collision, PS3.8 states Sta9-Sta12); then {closer} closed the "
            "connection without the A-RELEASE-RP the collision still called for. The work of "
            "the association was done; only the release was cut short.",
            f"The software of {closer} does not finish release collisions (DCMTK closes the "
            "connection). Usually harmless; it is avoided when only the requestor releases.",
            frames=(a.end_frame,),
            ts=a.end_ts,
            requestor_sent=_direction(a.ended_by),
            detail=f"close in {a.outcome_state.label if a.outcome_state else '?'}",
        )
        return
    if a.outcome != Outcome.RELEASE_COLLISION:
        return
    yield f.finding(
        "release-collision",
        Severity.INFO,
        "Both sides released at once",
        "The requestor and the acceptor both sent A-RELEASE-RQ before seeing the other's: a "
        "release collision, which PS3.8 handles (states Sta9-Sta12). The association ended "
        "normally.",
        "Nothing to do.",
        frames=(a.end_frame,),
        ts=a.end_ts,
    )


def unanswered_request(f: Facts) -> Iterator[Finding]:
    a = f.a
    open_ = [
        e for e in f.exchanges if e.request is not None and e.final is None and not e.cancelled
    ]
    if not open_:
        return
    first = open_[0]
    req = first.request
    assert req is not None
    end = a.end_ts or req.end_ts
    listing = "; ".join(_waited(e, end) for e in open_[:5])
    more = f"; and {len(open_) - 5} more" if len(open_) > 5 else ""
    if a.outcome == Outcome.OPEN_AT_END:
        yield f.finding(
            "unanswered-request",
            Severity.INFO,
            "Requests still waiting when the capture ended",
            f"{plural(len(open_), 'request')} had no response yet when the capture stopped: "
            f"{listing}{more}.",
            "Capture for longer to see how they end.",
            frames=(req.frame,),
            ts=req.ts,
            requestor_sent=first.from_requestor,
        )
        return
    ending = {
        Outcome.ABORTED: "the association was aborted",
        Outcome.TRANSPORT_DROPPED: "the connection dropped",
        Outcome.RELEASED: "the association was released",
        Outcome.RELEASE_COLLISION: "the association was released",
    }.get(a.outcome or Outcome.OPEN_AT_END, "the association ended")
    responder = f.party(not first.from_requestor)
    yield f.finding(
        "unanswered-request",
        Severity.ERROR,
        f"{first.service} request never answered",
        f"{plural(len(open_), 'request')} got no response before {ending}: {listing}{more}.",
        f"{cap(responder)} did not answer: it stalled, failed, or needed longer than "
        "the sender was willing to wait (its DIMSE timeout). Check that side's log for the "
        "operation, and whether the timeout suits the operation (large C-FIND/C-MOVE).",
        frames=[e.request.frame for e in open_[:10] if e.request],
        ts=req.ts,
        requestor_sent=first.from_requestor,
    )


def _waited(e: Exchange, end: int) -> str:
    req = e.request
    assert req is not None
    return f"{exchange_label(e)} sent {seconds(max(0, end - req.end_ts))} before the end"
