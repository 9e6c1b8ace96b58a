"""Formatting shared by the reports."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from analyzer.model import Association, Exchange
from analyzer.store import Store
from analyzer.textsafe import printable
from analyzer.unlisted import UnlistedGroup
from dissectors import Outcome, Party
from dissectors.pdu import (
    abort_reason_text,
    reject_reason_text,
    reject_result_text,
    reject_source_text,
)

_CYCLE_NS = 146_097 * 86_400 * 1_000_000_000
"""400 Gregorian years, to the nanosecond: the calendar repeats itself exactly after them."""


def calendar_seconds(ts: int) -> tuple[int, int, int]:
    """``(seconds, years, ns)``: a time in ns since the Unix epoch as whole seconds moved by
    whole 400-year cycles into 1970-2369 (where every time library works), the years it was
    moved by, and the nanoseconds past the second.

    A capture's timestamps are whatever its file says: a pcapng ``if_tsoffset`` or
    ``if_tsresol`` can put them far past the year 9999 or before the year 1, where
    :mod:`datetime` and :func:`time.localtime` give up. Date and time of day are the same
    in the moved second; only the year needs ``years`` added back.
    """
    cycles, rest = divmod(ts, _CYCLE_NS)
    seconds, ns = divmod(rest, 1_000_000_000)
    return seconds, cycles * 400, ns


def iso_time(ts: int | None) -> str | None:
    """UTC ISO 8601 with microseconds, e.g. ``2026-11-24T19:13:52.123456Z``.

    Years outside 0000-9999 use ISO 8601's expanded form, sign and six digits or more
    (``+586438-03-02T11:02:03.000000Z``), as JavaScript's ``toISOString`` does."""
    if ts is None:
        return None
    seconds, years, ns = calendar_seconds(ts)
    stamp = datetime.fromtimestamp(seconds, UTC)
    year = stamp.year + years
    shown = f"{year:04d}" if 0 <= year <= 9999 else f"{year:+07d}"
    return f"{shown}-{stamp:%m-%dT%H:%M:%S}.{ns // 1000:06d}Z"


def utc_clock(ts: int) -> str:
    """``HH:MM:SS.mmm``, UTC, for a time in ns since the epoch (any year)."""
    seconds, _, ns = calendar_seconds(ts)
    return datetime.fromtimestamp(seconds, UTC).strftime("%H:%M:%S") + f".{ns // 1_000_000:03d}"


def human_text(lines: Iterable[str]) -> str:
    """Lines for a person (a terminal, a text file, a log), each ended by a newline.

    Wire text inside them (AE titles, UIDs, implementation names, error comments, data set
    values, in findings' words too) is escaped by :func:`analyzer.textsafe.printable`, so a
    crafted value can neither forge a line nor send the terminal an escape sequence.
    """
    return "".join(f"{printable(line)}\n" for line in lines)


def ms(ns: int | None) -> float | None:
    """Nanoseconds as milliseconds with microsecond resolution."""
    return None if ns is None else round(ns / 1e6, 3)


def duration_text(ns: int | None) -> str:
    if ns is None:
        return "-"
    if ns < 1_000_000:
        return f"{ns / 1000:.0f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.1f} ms"
    if ns < 100_000_000_000:
        return f"{ns / 1e9:.1f} s"
    return f"{ns / 1e9:.0f} s"


def size_text(n: int) -> str:
    if n < 10_000:
        return f"{n} B"
    if n < 10_000_000:
        return f"{n / 1024:.1f} KiB"
    if n < 10_000_000_000:
        return f"{n / 1048576:.1f} MiB"
    return f"{n / 1073741824:.2f} GiB"


def party_text(party: Party | None) -> str:
    """``the requestor``, ``the acceptor``, ``a third party`` (a proxy), ``one side``."""
    if party is None:
        return "one side"
    return "a third party" if party == Party.THIRD_PARTY else f"the {party}"


def side(from_requestor: bool | None) -> str | None:
    if from_requestor is None:
        return None
    return "requestor" if from_requestor else "acceptor"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 file``, ``3 files``; ``many`` for an irregular plural."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def in_start_order(store: Store) -> list[Association]:
    """Every association, in the order they started (then by id)."""
    return list(store.by_start())


def status_text(e: Exchange) -> str:
    """``0x0000 Success``, or ``no response`` when no final response was seen."""
    return "no response" if e.final is None else f"0x{e.status or 0:04X} {e.status_meaning}"


def outcome_text(a: Association) -> str:
    """The outcome in words, with the codes and their PS3.8 meanings."""
    match a.outcome:
        case Outcome.RELEASED:
            return "released normally"
        case Outcome.RELEASE_COLLISION:
            return "released (both sides asked to release at once: release collision)"
        case Outcome.REJECTED:
            r = a.reject
            if r is None:
                return "rejected"
            return (
                f"rejected: {reject_reason_text(r.source, r.reason)} "
                f"({reject_result_text(r.result)}, by the {reject_source_text(r.source)}; "
                f"result {r.result}, source {r.source}, reason {r.reason})"
            )
        case Outcome.ABORTED:
            ab = a.abort
            if ab is None:
                return "aborted"
            who = party_text(a.ended_by)
            if a.ended_by == Party.THIRD_PARTY:
                return (
                    f"aborted by {who} (an A-ABORT neither peer sent; source {ab.source}, "
                    f"reason {ab.reason})"
                )
            if ab.source == 2:
                return (
                    f"aborted by {who}'s DICOM stack "
                    f"({abort_reason_text(ab.source, ab.reason)}; source 2, reason {ab.reason})"
                )
            return f"aborted by {who} (A-ABORT from the application; source {ab.source})"
        case Outcome.TRANSPORT_DROPPED:
            who = party_text(a.ended_by)
            state = (
                f" in {a.outcome_state.label} ({a.outcome_state.description})"
                if a.outcome_state
                else ""
            )
            return f"TCP connection closed by {who} without release or abort{state}"
        case Outcome.NEVER_ASSOCIATED:
            if not a.syn_answered:
                return "connection attempt refused or unanswered"
            if a.tls_client_hello:
                return (
                    "TCP connection opened but no association: the client started a TLS handshake"
                )
            return "TCP connection opened but no A-ASSOCIATE-RQ was sent"
        case Outcome.OPEN_AT_END:
            state = f" ({a.outcome_state.description})" if a.outcome_state else ""
            return f"still open when the capture ended{state}"
        case None:
            return "in progress"
    return str(a.outcome)


def lower_first(title: str) -> str:
    """``Called AE title ...`` → ``called AE title ...``; leaves ``CT Image ...`` alone."""
    if len(title) > 1 and title[0].isupper() and title[1].islower():
        return title[0].lower() + title[1:]
    return title


def unlisted_lines(groups: Iterable[UnlistedGroup]) -> list[str]:
    """One line per server with connections without DICOM counted rather than listed (a
    store's :attr:`~analyzer.store.Store.unlisted`): how many, when, where in the capture,
    and what the rules said."""
    lines = []
    for g in groups:
        said = "; ".join(
            f"{f.count} × {lower_first(f.title)} [{f.code}]" for f in g.findings.values()
        )
        lines.append(
            f"Not listed: {g.connections} more connection(s) without DICOM to {g.server}, "
            f"{iso_time(g.first_ts)} to {iso_time(g.last_ts)}, frames {g.first_frame} to "
            f"{g.last_frame}" + (f": {said}." if said else ".")
        )
    return lines
