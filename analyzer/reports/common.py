"""Formatting shared by the reports."""

from __future__ import annotations

from analyzer.model import Association, Exchange
from analyzer.store import Store
from dissectors import Outcome
from dissectors.pdu import (
    abort_reason_text,
    reject_reason_text,
    reject_result_text,
    reject_source_text,
)


def iso_time(ts: int | None) -> str | None:
    """UTC ISO 8601 with microseconds, e.g. ``2026-11-24T19:13:52.123456Z``.

    Any time a capture can hold is written, whatever its year: one outside 0000-9999 (a
    crafted or damaged timestamp) in ISO 8601's expanded form, ``+22577-03-01T...``."""
    if ts is None:
        return None
    seconds, ns = divmod(ts, 1_000_000_000)
    days, second = divmod(seconds, 86_400)
    year, month, day = _civil(days)
    hh, rest = divmod(second, 3600)
    stamp = f"{month:02d}-{day:02d}T{hh:02d}:{rest // 60:02d}:{rest % 60:02d}"
    year_text = f"{year:04d}" if 0 <= year <= 9999 else f"{year:+05d}"
    return f"{year_text}-{stamp}.{ns // 1000:06d}Z"


def _civil(days: int) -> tuple[int, int, int]:
    """(year, month, day) of the proleptic Gregorian calendar, ``days`` after 1970-01-01.

    ``datetime`` stops at the year 9999; this is H. Hinnant's ``civil_from_days``, exact for
    any integer."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


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


def side(from_requestor: bool | None) -> str | None:
    if from_requestor is None:
        return None
    return "requestor" if from_requestor else "acceptor"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 file``, ``3 files``; ``many`` for an irregular plural."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def in_start_order(store: Store) -> list[Association]:
    """Every association, in the order they started (then by id)."""
    return sorted(store.associations(), key=lambda a: (a.start_ts, a.id))


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
            who = side(ab.by_requestor)
            if ab.source == 2:
                return (
                    f"aborted by the {who}'s DICOM stack "
                    f"({abort_reason_text(ab.source, ab.reason)}; source 2, reason {ab.reason})"
                )
            return f"aborted by the {who} (A-ABORT from the application; source {ab.source})"
        case Outcome.TRANSPORT_DROPPED:
            who = side(a.closed_by_requestor) or "one side"
            state = (
                f" in {a.outcome_state.label} ({a.outcome_state.description})"
                if a.outcome_state
                else ""
            )
            return f"TCP connection closed by the {who} without release or abort{state}"
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
