"""Timeline rows laid out as a text sequence diagram (headless: no Textual here).

Each line is ``time │ lane │ frame``: the lane runs between the requestor (left edge) and
the acceptor (right edge), and a PDU or DIMSE message is an arrow from its sender to its
receiver. Lines are returned as ``(text, style name)`` pieces; the widget maps style
names to colours from the stylesheet.
"""

from __future__ import annotations

from analyzer.model import Association
from analyzer.textsafe import printable

from .frames import FrameNames
from .rows import fit
from .timeline import Kind, Row

TIME_W = 11
FRAME_W = 8
MIN_LANE = 24

Piece = tuple[str, str]


def rel_time(ns: int) -> str:
    """Time since the association began: ``+41.207 ms``, ``+12.345 s``."""
    sign = "+" if ns >= 0 else "-"
    ns = abs(ns)
    if ns < 1_000_000_000:
        return f"{sign}{ns / 1e6:.3f} ms"
    if ns < 1_000_000_000_000:
        return f"{sign}{ns / 1e9:.3f} s"
    return f"{sign}{ns / 1e9:.0f} s"


def lane_width(width: int) -> int:
    return max(MIN_LANE, width - TIME_W - FRAME_W - 2)


def header(a: Association, width: int) -> list[Piece]:
    """The names over the two edges of the lane."""
    lane = lane_width(width)
    left = printable(f"{a.calling_ae_title or str(a.client)} (requestor)")
    right = printable(f"(acceptor) {a.called_ae_title or str(a.server)}")
    room = max(0, lane - len(right) - 1)
    names = fit(left, room) + " " + right
    return [
        (" " * (TIME_W + 1), "lane"),
        (fit(names, lane), "title"),
        (" " * (FRAME_W + 1), "lane"),
    ]


def line(row: Row, a: Association, width: int, frames: FrameNames | None = None) -> list[Piece]:
    """One row as pieces that fill exactly ``width`` cells (or the minimum lane width).
    ``frames`` numbers frames within their file when the capture is several files."""
    lane = lane_width(width)
    inner = lane - 2
    time = fit(rel_time(row.ts - a.start_ts) if row.kind is not Kind.SILENCE else "", TIME_W, True)
    number = (frames or _ONE_FILE).number(row.first_frame)
    frame = fit(f"#{number}" if number else "", FRAME_W, True)
    pieces: list[Piece] = [(time + " ", "time")]
    if row.from_requestor is not None:
        # the text sits next to the sender's edge, the shaft runs to the receiver's
        room = inner - 5  # the shaft's end, the head and the spaces around the text
        label = _text(row, room).rstrip(" ")
        shaft = "─" * max(1, inner - len(label) - 4)
        arrow = f"─ {label} {shaft}▶" if row.from_requestor else f"◀{shaft} {label} ─"
        pieces += [("├", "lane"), (arrow, row.look), ("┤", "lane")]
    elif row.kind is Kind.SILENCE:
        text = _text(row, inner)
        pieces += [("┆", "lane"), (text.center(inner)[:inner], row.look), ("┆", "lane")]
    else:
        pieces += [("│", "lane"), (" " + _text(row, inner - 1), row.look), ("│", "lane")]
    pieces.append((" " + frame, "frame"))
    return pieces


def _text(row: Row, room: int) -> str:
    """Label and detail in ``room`` cells; a long label gives way to the detail."""
    if not row.detail:
        return fit(row.label, room)
    full = f"{row.label}  {row.detail}"
    keep = room - len(row.detail) - 2
    if len(full) <= room or keep < 12:
        return fit(full, room)
    return fit(row.label, keep) + "  " + row.detail


def plain(pieces: list[Piece]) -> str:
    """The text of a line without its styles (for search and tests)."""
    return "".join(text for text, _ in pieces)


_ONE_FILE = FrameNames()
