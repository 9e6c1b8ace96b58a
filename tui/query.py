"""The filter box: the analyzer's filter language (:mod:`analyzer.filter`), as the list
uses it (headless: no Textual here).

::

    called=PACS* and cmd=C-STORE and latency>2s and not ip=10.0.0.5

:func:`parse` never raises: a mistake comes back in :attr:`Query.error` (with its place,
for the status line), so the box can be typed into freely.
"""

from __future__ import annotations

from dataclasses import dataclass

from analyzer.filter import FIELDS, Facts, Filter, FilterError

KEYS: dict[str, str] = {f.usage: f.help for f in FIELDS.values()}
"""Every field with an example and what it tests (shown in the help screen)."""

SYNTAX = (
    "and / or / not (&& || !), ( ), = != < <= > >=, ~ regex, PACS* glob, "
    "500ms 2s 10MB units, low..high ranges; a plain word searches all text"
)
"""The operators, in one line for the help screen."""


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed filter: the empty query (no filter) matches everything."""

    text: str = ""
    filter: Filter | None = None
    error: FilterError | None = None

    def __bool__(self) -> bool:
        return self.filter is not None

    def matches(self, facts: Facts) -> bool:
        return self.filter is None or self.filter.matches(facts)


def parse(text: str) -> Query:
    """The query for the box's text (blank: no filter). Never raises."""
    if not text.strip():
        return Query(text)
    try:
        return Query(text, Filter.parse(text))
    except FilterError as error:
        return Query(text, None, error)
