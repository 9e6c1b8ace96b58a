"""TCP health of an association in words, for the text report and the TUI."""

from __future__ import annotations

from analyzer.model import TcpSide, TcpSummary
from dissectors.tcphealth import ZERO_WINDOW_NOTE_NS

from .common import duration_text, plural, size_text


def _side_phrases(who: str, t: TcpSide) -> list[str]:
    out: list[str] = []
    if t.retransmissions:
        bursts = f", {plural(t.retransmission_bursts, 'burst')}" if t.retransmission_bursts else ""
        share = f" of {t.data_segments}" if t.data_segments else ""
        out.append(
            f"{who} retransmitted {t.retransmissions}{share} data segments "
            f"({size_text(t.retransmitted_bytes)}{bursts})"
        )
    if t.longest_zero_window_ns >= ZERO_WINDOW_NOTE_NS:
        out.append(
            f"{who} advertised a zero window {plural(t.zero_window_episodes, 'time')} "
            f"({duration_text(t.zero_window_ns)} in all, longest "
            f"{duration_text(t.longest_zero_window_ns)})"
        )
    return out


def tcp_phrases(t: TcpSummary | None) -> list[str]:
    """What is worth saying about the TCP health of a connection (nothing when it was fine)."""
    if t is None:
        return []
    out = _side_phrases("requestor", t.requestor) + _side_phrases("acceptor", t.acceptor)
    if t.silences:
        where = f" ending at frame {t.longest_silence_frame}" if t.longest_silence_frame else ""
        out.append(
            f"{plural(t.silences, 'silence')} of 2 s or more (longest "
            f"{duration_text(t.longest_silence_ns)}{where})"
        )
    if t.unanswered is not None:
        u = t.unanswered
        who = "requestor" if u.by_requestor else "acceptor"
        out.append(
            f"{who}'s last {u.retransmissions} retransmissions were never acknowledged "
            f"(frames {u.since_frame}-{u.last_frame})"
        )
    if t.reset is not None:
        r = t.reset
        who = "requestor" if r.by_requestor else "acceptor"
        if r.injected:  # the relay's own, in that side's name
            who = f"relay between them (in the {who}'s name)"
        after = (
            f", answering the first data after {duration_text(r.after_silence_ns)} of silence"
            if r.after_silence_ns is not None
            else ""
        )
        out.append(f"reset (RST) by the {who} at frame {r.frame}{after}")
    return out


def rtt_text(t: TcpSummary | None) -> str | None:
    """The round trip in words: at the handshake, else the smallest acknowledgement time."""
    if t is None:
        return None
    if t.handshake_rtt_ns is not None:
        return f"round trip {duration_text(t.handshake_rtt_ns)} at the handshake"
    mins = [s.rtt_min_ns for s in (t.requestor, t.acceptor) if s.rtt_min_ns is not None]
    return f"round trip at least {duration_text(min(mins))}" if mins else None


def tcp_line(t: TcpSummary | None) -> str | None:
    """``TCP: ...`` when something about the connection's TCP health is worth a line."""
    phrases = tcp_phrases(t)
    if not phrases:
        return None
    rtt = rtt_text(t)
    return "TCP: " + "; ".join(phrases + ([rtt] if rtt else []))
