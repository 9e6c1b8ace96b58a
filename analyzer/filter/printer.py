"""A syntax tree back to filter text: ``parse(to_text(tree)) == tree``."""

from __future__ import annotations

from typing import assert_never

from .fields import FIELDS
from .nodes import And, Compare, Flag, Node, Not, Or, Word
from .syntax import is_bare_word, quote

__all__ = ["to_text"]

_OR, _AND, _NOT, _ATOM = 1, 2, 3, 4


def to_text(node: Node) -> str:
    """The canonical text of ``node``: ``and``/``or``/``not`` words, no spaces around
    operators, parentheses only where needed, values quoted only where needed."""
    return _text(node, 0)


def _text(node: Node, context: int) -> str:
    match node:
        case Or(operands):
            text, level = " or ".join(_text(n, _AND) for n in operands), _OR
        case And(operands):
            text, level = " and ".join(_text(n, _NOT) for n in operands), _AND
        case Not(operand):
            text, level = "not " + _text(operand, _NOT), _NOT
        case Compare(field, op, value):
            text, level = f"{field}{op.value}{_value(value)}", _ATOM
        case Flag(field):
            text, level = field, _ATOM
        case Word(word):
            bare = (
                is_bare_word(word)
                and word.lower() not in FIELDS
                and word.partition(":")[0].lower() not in FIELDS
            )
            text, level = (word if bare else quote(word)), _ATOM
        case _:
            assert_never(node)
    return f"({text})" if level < context else text


def _value(value: str) -> str:
    return value if is_bare_word(value) else quote(value)
