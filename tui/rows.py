"""Rows of the association list as text: which columns fit, and what each cell says
(headless: no Textual here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from analyzer.model import Association
from analyzer.reports.common import duration_text, size_text, utc_clock
from analyzer.textsafe import printable

from .core import OUTCOME_SHORT, SEVERITY_MARK, SortKey, Summary


@dataclass(frozen=True, slots=True)
class Column:
    """A column of the association list: ``width`` cells, or at least that when ``flex``."""

    key: SortKey
    title: str
    width: int
    priority: int
    """Lower goes first; columns are dropped from the highest when the screen is narrow."""
    flex: int = 0
    right: bool = False


COLUMNS: tuple[Column, ...] = (
    Column(SortKey.ID, "#", 4, 0, right=True),
    Column(SortKey.START, "Start UTC", 12, 2),
    Column(SortKey.AES, "Calling → Called", 20, 0, flex=2),
    Column(SortKey.OUTCOME, "Outcome", 9, 0),
    Column(SortKey.EXCHANGES, "Exch", 4, 3, right=True),
    Column(SortKey.BYTES, "Bytes", 9, 4, right=True),
    Column(SortKey.DURATION, "Duration", 8, 5, right=True),
    # a finding code is read whole (association-rejected): it goes before the figures
    Column(SortKey.FINDING, "Finding", 19, 0, flex=3),
    Column(SortKey.PEERS, "Client → Server", 22, 6, flex=3),
)
GAP = 1
"""Blank cells between two columns."""


def layout(width: int) -> list[tuple[Column, int]]:
    """The columns that fit in ``width`` cells, in display order, with their widths.

    Columns go in by priority while their minimum width fits; what is left is shared by
    the flexible ones in proportion to ``flex``.
    """
    chosen: list[Column] = []
    used = 0
    for col in sorted(COLUMNS, key=lambda c: c.priority):
        need = col.width + (GAP if chosen else 0)
        if used + need <= width:
            chosen.append(col)
            used += need
    spare = max(0, width - used)
    flex_total = sum(c.flex for c in chosen)
    widths: dict[SortKey, int] = {}
    given = 0
    for col in chosen:
        extra = spare * col.flex // flex_total if flex_total else 0
        widths[col.key] = col.width + extra
        given += extra
    for col in chosen:  # rounding leftovers go to the first flexible column
        if col.flex:
            widths[col.key] += spare - given if flex_total else 0
            break
    return [(c, widths[c.key]) for c in COLUMNS if c in chosen]


def clock(ts: int | None) -> str:
    """``HH:MM:SS.mmm`` in UTC."""
    return "-" if ts is None else utc_clock(ts)


def outcome_word(a: Association) -> str:
    return OUTCOME_SHORT.get(a.outcome, str(a.outcome)) if a.outcome else "…"


def ae_pair(a: Association) -> str:
    """``CALLING → CALLED``, escaped (:func:`~analyzer.textsafe.printable`): AE titles are
    wire text."""
    if a.calling_ae is None and a.called_ae is None:
        return "-"
    return printable(f"{a.calling_ae_title or '?'} → {a.called_ae_title or '?'}")


def finding_text(s: Summary) -> str:
    worst = s.worst
    if worst is None:
        return ""
    more = f" +{len(s.findings) - 1}" if len(s.findings) > 1 else ""
    return f"{SEVERITY_MARK[worst.severity]} {worst.code}{more}"


CELLS: dict[SortKey, Callable[[Summary], str]] = {
    SortKey.ID: lambda s: str(s.id),
    SortKey.START: lambda s: clock(s.association.start_ts),
    SortKey.PEERS: lambda s: f"{s.association.client} → {s.association.server}",
    SortKey.AES: lambda s: ae_pair(s.association),
    SortKey.OUTCOME: lambda s: outcome_word(s.association),
    SortKey.EXCHANGES: lambda s: str(s.association.exchanges),
    SortKey.BYTES: lambda s: size_text(
        s.association.requestor_pdus.bytes + s.association.acceptor_pdus.bytes
    ),
    SortKey.DURATION: lambda s: duration_text(s.association.duration_ns),
    SortKey.FINDING: finding_text,
}


def fit(text: str, width: int, right: bool = False) -> str:
    """``text`` cut (with an ellipsis) or padded to exactly ``width`` cells."""
    if len(text) > width:
        return text[: max(0, width - 1)] + "…" if width > 0 else ""
    return text.rjust(width) if right else text.ljust(width)


def cells(s: Summary, columns: list[tuple[Column, int]]) -> list[tuple[SortKey, str]]:
    """The text of each visible cell of one row, already fitted to its width."""
    return [(col.key, fit(CELLS[col.key](s), w, col.right)) for col, w in columns]


def header(
    columns: list[tuple[Column, int]], key: SortKey, reverse: bool
) -> list[tuple[SortKey, str]]:
    """The column titles, the sorted one marked with an arrow."""
    out = []
    for col, w in columns:
        title = col.title + ((" ▼" if reverse else " ▲") if col.key == key else "")
        out.append((col.key, fit(title, w, col.right)))
    return out
