"""TCP health behind DICOM trouble: a receiver that stopped reading (zero window), a lossy
path (retransmissions), a peer that went away (retransmissions never acknowledged), and a
middlebox that dropped an idle connection (a reset answering the first data after a
silence)."""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.model import Finding, Outcome, Party, Severity, TcpSide

from .facts import Facts, cap, seconds

#: Zero window for this long, in all, is a stalled receiver worth a finding.
ZERO_WINDOW_FINDING_NS = 1_000_000_000
#: Retransmissions worth a finding: at least this many, and this share of the data segments.
RETRANSMISSIONS_MIN = 5
RETRANSMISSION_SHARE = 0.02


def zero_window(f: Facts) -> Iterator[Finding]:
    t = f.a.tcp
    if t is None:
        return
    for by_requestor, s in ((True, t.requestor), (False, t.acceptor)):
        if s.zero_window_ns < ZERO_WINDOW_FINDING_NS:
            continue
        who, other = f.party(by_requestor), f.party(not by_requestor)
        ended = ""
        if f.a.outcome in (Outcome.ABORTED, Outcome.TRANSPORT_DROPPED):
            ended = (
                f" The association then ended ({f.a.outcome}): a timeout on {other} that "
                "fired while it was waiting to send is the likely cause."
            )
        yield f.finding(
            "tcp-zero-window",
            Severity.WARNING,
            f"{cap(who.split(' (')[0])} stopped reading for {seconds(s.zero_window_ns)}",
            f"{cap(who)} advertised a TCP zero window {s.zero_window_episodes} time(s), "
            f"{seconds(s.zero_window_ns)} in all (longest {seconds(s.longest_zero_window_ns)}): "
            f"its receive buffer was full because its application did not read, so {other} "
            f"had to wait with data to send. The network was not the bottleneck.{ended}",
            f"Look at {who}: a slow disk or database behind a C-STORE, a busy CPU, or a "
            "full internal queue. A receiver that reads slowly is a property of that "
            "application, not of the network.",
            frames=(s.longest_zero_window_frame,),
            requestor_sent=by_requestor,
            detail=f"{s.zero_windows} zero-window segment(s)",
        )


def _lossy(s: TcpSide) -> bool:
    return (
        s.retransmissions >= RETRANSMISSIONS_MIN
        and s.retransmissions >= RETRANSMISSION_SHARE * max(s.data_segments, 1)
    )


def retransmissions(f: Facts) -> Iterator[Finding]:
    t = f.a.tcp
    if t is None:
        return
    for by_requestor, s in ((True, t.requestor), (False, t.acceptor)):
        if not _lossy(s) or (
            t.unanswered is not None and t.unanswered.by_requestor == by_requestor
        ):
            continue
        who, other = f.party(by_requestor), f.party(not by_requestor)
        share = 100 * s.retransmissions / max(s.data_segments, 1)
        yield f.finding(
            "tcp-retransmissions",
            Severity.WARNING,
            f"Packet loss: {s.retransmissions} TCP retransmissions",
            f"{cap(who)} retransmitted {s.retransmissions} of its {s.data_segments} data "
            f"segments ({share:.0f}%, {s.retransmitted_bytes} bytes"
            + (f", {s.retransmission_bursts} burst(s) in a row" if s.retransmission_bursts else "")
            + f"): packets on the way to {other} were lost and sent again. Each loss costs "
            "at least one round trip and slows the transfer; DICOM itself saw no error.",
            "Look at the path between the two (a duplex mismatch, a congested or faulty link, "
            "a policer or shaper, an overloaded firewall). A retransmission is counted whether "
            "the packet was lost before or after the capture point.",
            frames=(s.first_retransmission_frame,),
            requestor_sent=by_requestor,
            detail=f"{s.retransmissions} retransmission(s)",
        )


def unanswered(f: Facts) -> Iterator[Finding]:
    t = f.a.tcp
    if t is None or t.unanswered is None:
        return
    u = t.unanswered
    who, other = f.party(u.by_requestor), f.party(not u.by_requestor)
    silence = ""
    if t.longest_silence_ts is not None and t.longest_silence_ts <= u.since_ts:
        silence = (
            f" It began after {seconds(t.longest_silence_ns)} of silence: a firewall, NAT "
            "or load balancer between them that forgets idle connections drops their "
            "packets exactly like this."
        )
    yield f.finding(
        "tcp-unanswered",
        Severity.ERROR,
        f"{cap(other.split(' (')[0])} stopped answering at the TCP level",
        f"{cap(who)} sent the same data {u.retransmissions} times over "
        f"{seconds(u.last_ts - u.since_ts)} and {other} never acknowledged it, up to the end "
        f"of the connection: {other} or the path to it went away.{silence}",
        "Check that the peer host is up and reachable (cable, switch, routing), and whether a "
        "firewall between them drops idle connections: then a DICOM peer that keeps "
        "associations open must use shorter idle times, or TCP keep-alives shorter than the "
        "firewall's idle timeout.",
        frames=(u.since_frame, u.last_frame),
        ts=u.since_ts,
        requestor_sent=u.by_requestor,
        detail=f"{u.retransmissions} unacknowledged retransmission(s)",
    )


def reset_after_idle(f: Facts) -> Iterator[Finding]:
    t = f.a.tcp
    if t is None or t.reset is None or t.reset.after_silence_ns is None:
        return
    if f.a.abort is not None:
        return
    r = t.reset
    idle = r.after_silence_ns
    assert idle is not None
    who, other = f.party(r.by_requestor), f.party(not r.by_requestor)
    if r.injected:
        # The relay marked the reset as its own: it is that middlebox, and no guess.
        title = f"Connection reset by the relay after {seconds(idle)} idle"
        why = (
            f"After {seconds(idle)} in which nothing was sent, {other} sent data and the "
            f"answer was a TCP reset that {f.who(Party.THIRD_PARTY)} wrote itself (it marks "
            f"what it writes) in the name of {who}, without an A-ABORT before it: neither AE "
            "reset the connection."
        )
        hint = (
            "Look at the relay's log for why it reset the connection (an idle or write "
            "timeout, its shutdown), and compare its idle timeout with the silence."
        )
    else:
        title = f"Connection reset after {seconds(idle)} idle"
        why = (
            f"After {seconds(idle)} in which nothing was sent, {other} sent data and the "
            f"answer was a TCP reset in the name of {who}, without an A-ABORT, an A-RELEASE or "
            "a FIN before it. An application that times out an idle association closes it "
            "(FIN) or aborts it; a reset in answer to the first data after a silence is the "
            "mark of an idle timeout in a firewall, NAT or load balancer between the two, not "
            "of either AE."
        )
        hint = (
            "Find the device between the two and its idle timeout (compare it with the "
            "silence), then have the DICOM peers release idle associations before it, or "
            "enable TCP keep-alives shorter than it. A host that restarted in the silence also "
            "answers with a reset: check the peer's uptime."
        )
    yield f.finding(
        "tcp-reset-after-idle",
        Severity.ERROR,
        title,
        why,
        hint,
        frames=(r.frame,),
        ts=r.ts,
        requestor_sent=None if r.injected else r.by_requestor,
        detail=f"{idle / 1e9:.3f} s idle" + (", reset by a third party" if r.injected else ""),
    )
