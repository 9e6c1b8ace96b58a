"""What a rule reads about one association, and the words rules share."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from analyzer.model import (
    Association,
    Direction,
    Evidence,
    Exchange,
    Finding,
    Gap,
    Party,
    Severity,
    ViolationRecord,
)
from analyzer.names import uid_name
from analyzer.reports.common import duration_text
from analyzer.store import Store
from dissectors.pdu import ae_title_text


@dataclass(frozen=True, slots=True)
class Facts:
    """One ended association and everything recorded about it."""

    store: Store
    a: Association
    exchanges: list[Exchange]
    violations: list[ViolationRecord]
    gaps: list[Gap]

    @classmethod
    def of(cls, store: Store, a: Association) -> Facts:
        return cls(store, a, store.exchanges(a.id), store.violations(a.id), store.gaps(a.id))

    # --- naming the parties --------------------------------------------------------

    def who(self, party: Party) -> str:
        """:meth:`party` for the requestor or the acceptor; a third party in words."""
        if party == Party.THIRD_PARTY:
            return "a third party between them (a proxy or another middlebox)"
        return self.party(party == Party.REQUESTOR)

    def party(self, requestor: bool, *, by_title: bool = True) -> str:
        """``the requestor MODALITY (10.0.0.1:51234)``; ``by_title=False`` names the side by
        its address only (the acceptor's real title is unknown when the called one was wrong)."""
        a = self.a
        title = (a.calling_ae_title if requestor else a.called_ae_title) if by_title else None
        where = a.client if requestor else a.server
        role = "requestor" if requestor else "acceptor"
        if title:
            return f"the {role} {title} ({where})"
        return f"the {role} at {where}"

    def finding(
        self,
        code: str,
        severity: Severity,
        title: str,
        explanation: str,
        hint: str,
        *,
        frames: Iterable[int | None] = (),
        ts: int | None = None,
        requestor_sent: bool | None = None,
        detail: str | None = None,
    ) -> Finding:
        direction = None
        if requestor_sent is not None:
            direction = (
                Direction.REQUESTOR_TO_ACCEPTOR
                if requestor_sent
                else Direction.ACCEPTOR_TO_REQUESTOR
            )
        return Finding(
            code=code,
            severity=severity,
            title=title,
            explanation=explanation,
            hint=hint,
            evidence=Evidence(
                association=self.a.id,
                frames=tuple(sorted({f for f in frames if f is not None})),
                ts=ts,
                direction=direction,
                detail=detail,
            ),
        )


def cap(text: str) -> str:
    """Upper-case the first letter only (``str.capitalize`` would lower AE titles)."""
    return text[:1].upper() + text[1:]


def ae_exact(raw: bytes | None) -> str:
    """An AE title as sent, quoted, with what makes it differ from what it looks like.

    Trailing spaces are the field's normal padding and are not mentioned; leading spaces,
    NUL bytes and lower case are, because the receiving side compares titles byte for byte.
    """
    if raw is None:
        return "(none)"
    text = raw.decode("ascii", "replace")
    core = ae_title_text(raw)
    lead = len(text) - len(text.lstrip(" "))
    notes = []
    if lead:
        notes.append(f"{lead} leading space{'s' if lead > 1 else ''}")
    if "\x00" in text:
        notes.append("padded with NUL bytes instead of spaces")
    if core != core.upper():
        notes.append("lower-case letters")
    out = f"'{core}'"
    if notes:
        out += f" ({', '.join(notes)})"
    return out


def sop_name(uid: str | None) -> str:
    return uid_name(uid) if uid else "an unknown SOP class"


def seconds(ns: int) -> str:
    return duration_text(ns)


def exchange_label(e: Exchange) -> str:
    """``C-STORE-RQ (message 3, CT Image Storage)``."""
    mid = f"message {e.message_id}" if e.message_id is not None else "no message ID"
    what = f", {sop_name(e.sop_class)}" if e.sop_class else ""
    return f"{e.service}-RQ ({mid}{what})"
