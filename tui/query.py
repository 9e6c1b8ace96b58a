"""The filter box's small query language (headless: no Textual here).

::

    ae:PACS outcome:rejected status:A801 code:association-rejected ip:10.0.0.5 timeout

A term ``key:value`` tests one field of an association; a plain word matches anywhere in
its text. Terms with the same key are alternatives (``outcome:rejected outcome:aborted``:
either); terms with different keys must all hold. ``-`` in front negates a term
(``-outcome:released``). Values are case-insensitive substrings, except ``status``: hex
digits match DIMSE status codes by prefix (``status:A7`` is any 0xA7xx, ``status:0xA801``
one code), a word matches the status category (``status:failure``). Quote a value that
holds spaces: ``ae:"MY AE"``. A ``key:`` this module does not know is taken as a plain word,
so ``10.0.0.1:104`` searches for that text.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field

KEYS: dict[str, str] = {
    "ae": "calling or called AE title",
    "ip": "client or server address (ip or ip:port)",
    "outcome": "released, rejected, aborted, transport-dropped, ... or failed/warning/ok",
    "sop": "SOP class (name or UID) proposed or used",
    "status": "DIMSE status: hex code or prefix (A801, 0xA7), or category (failure)",
    "code": "finding code (association-rejected ...)",
    "sev": "worst finding severity (error, warning, info)",
}
"""Every key the filter understands, with what it tests (shown in the help screen)."""

_ALIASES = {"severity": "sev", "calling": "ae", "called": "ae", "host": "ip", "sop-class": "sop"}


@dataclass(frozen=True, slots=True)
class Facts:
    """What a query can test about one association (all text lower-case)."""

    ae: tuple[str, ...] = ()
    ip: tuple[str, ...] = ()
    outcome: tuple[str, ...] = ()
    sop: tuple[str, ...] = ()
    status: frozenset[int] = frozenset()
    status_categories: frozenset[str] = frozenset()
    code: tuple[str, ...] = ()
    sev: tuple[str, ...] = ()
    text: str = ""
    """Everything else a plain word may match (id, ports, outcome words ...)."""


@dataclass(frozen=True, slots=True)
class Term:
    """One term: ``key`` None for a plain word."""

    key: str | None
    value: str
    negate: bool = False

    def test(self, facts: Facts) -> bool:
        """Whether the association described by ``facts`` satisfies the term (ignoring
        ``negate``)."""
        v = self.value
        match self.key:
            case None:
                return v in facts.text
            case "status":
                return _status_matches(v, facts)
            case key:
                values: Iterable[str] = getattr(facts, key)
                return any(v in x for x in values)


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed filter; the empty query matches everything."""

    terms: tuple[Term, ...] = ()
    text: str = ""
    errors: tuple[str, ...] = field(default=(), compare=False)

    def __bool__(self) -> bool:
        return bool(self.terms)

    def matches(self, facts: Facts) -> bool:
        """AND over keys, OR within a key; a negated term must fail."""
        groups: dict[str | None, bool] = {}
        for term in self.terms:
            ok = term.test(facts)
            if term.negate:
                if ok:
                    return False
                continue
            # plain words are each required, so give each its own group
            group = term.key if term.key is not None else f"\0{term.value}"
            groups[group] = groups.get(group, False) or ok
        return all(groups.values())


def parse(text: str) -> Query:
    """Parse the filter box's text. Never raises: unbalanced quotes are reported in
    ``errors`` and the text is then split on spaces."""
    errors: list[str] = []
    try:
        words = shlex.split(text)
    except ValueError as exc:
        errors.append(f"{exc}")
        words = text.split()
    terms: list[Term] = []
    for word in words:
        negate = word.startswith("-") and len(word) > 1
        body = word[1:] if negate else word
        key, sep, value = body.partition(":")
        key = _ALIASES.get(key.lower(), key.lower())
        if sep and key in KEYS:
            if not value:
                errors.append(f"{key}: needs a value")
                continue
            terms.append(Term(key, value.lower(), negate))
        else:
            terms.append(Term(None, body.lower(), negate))
    return Query(tuple(terms), text, tuple(errors))


def _status_matches(value: str, facts: Facts) -> bool:
    digits = value[2:] if value.startswith("0x") else value
    if digits and all(c in "0123456789abcdef" for c in digits) and len(digits) <= 4:
        return any(f"{s:04x}".startswith(digits) for s in facts.status)
    return any(value in c for c in facts.status_categories)
