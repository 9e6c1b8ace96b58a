"""One filter language for every view: the TUI's ``/``, ``--filter`` of ``analyze``,
``diagnose`` and ``live``, and the proxy's ``--log-filter``.

::

    calling=CT* and cmd=C-STORE and latency>2s and not ip=10.0.0.5
    status=failure or outcome=aborted
    sop=CTImageStorage bytes>=10MB          (juxtaposition is "and")
    called~"^PACS[0-9]$" || code=context-rejected

Fields (:data:`FIELDS`) are compared with ``= != < <= > >=`` (numbers with units: ``500ms``,
``10MB``; ranges ``low..high``), text also with ``~`` (regular expression) and ``!~``, and
``=`` with a glob (``PACS*``); ``and``/``or``/``not`` (``&&``/``||``/``!``) and
parentheses combine them; a plain word matches any text of the association. Text
comparisons ignore case. How exchange fields combine: :mod:`.evaluate`.

    >>> flt = Filter.parse("called=PACS* and latency>500ms")
    >>> matching = [a for a in store if flt.matches(Facts(a, store.exchanges(a.id)))]
"""

from __future__ import annotations

from .errors import FilterError
from .evaluate import compile_node
from .facts import Facts
from .fields import FIELDS, Field, Level
from .nodes import And, Compare, Flag, Node, Not, Or, Word
from .parser import parse
from .printer import to_text
from .select import StreamFilter, select
from .syntax import Op

__all__ = [
    "FIELDS",
    "And",
    "Compare",
    "Facts",
    "Field",
    "Filter",
    "FilterError",
    "Flag",
    "Level",
    "Node",
    "Not",
    "Op",
    "Or",
    "StreamFilter",
    "Word",
    "parse",
    "select",
    "to_text",
]


class Filter:
    """A parsed and compiled filter expression."""

    __slots__ = ("_test", "node", "source")

    def __init__(self, node: Node, source: str | None = None) -> None:
        self.node = node
        self.source = source if source is not None else to_text(node)
        """The text as the user wrote it."""
        self._test = compile_node(node)

    @classmethod
    def parse(cls, text: str) -> Filter:
        """Parse and compile ``text``; :class:`FilterError` if it is not a valid filter."""
        return cls(parse(text), text)

    @property
    def text(self) -> str:
        """The canonical text (:func:`to_text`)."""
        return to_text(self.node)

    def matches(self, facts: Facts) -> bool:
        """Whether the association ``facts`` describes matches."""
        return self._test(facts)

    def __repr__(self) -> str:
        return f"Filter({self.text!r})"
