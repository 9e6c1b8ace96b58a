"""The syntax tree of a filter expression (what :func:`~.parser.parse` returns).

Nodes compare by value, so two spellings of one expression give equal trees (``==`` and
``=``, ``&&`` and ``and``, quoted and bare values, redundant parentheses). ``And`` and
``Or`` are flat: ``a and (b and c)`` is one ``And`` of three.
"""

from __future__ import annotations

from dataclasses import dataclass

from .syntax import Op

__all__ = ["And", "Compare", "Flag", "Node", "Not", "Or", "Word"]


@dataclass(frozen=True, slots=True)
class Compare:
    """``field op value``: ``latency>500ms``. ``value`` is the text as written (unquoted)."""

    field: str
    op: Op
    value: str


@dataclass(frozen=True, slots=True)
class Flag:
    """A yes/no field on its own: ``partial``, ``gap``."""

    field: str


@dataclass(frozen=True, slots=True)
class Word:
    """A plain word (or quoted text): matches when any text of the association contains it."""

    text: str


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]


Node = Compare | Flag | Word | Not | And | Or
