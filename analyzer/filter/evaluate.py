"""A syntax tree compiled to a test of :class:`~.facts.Facts`.

The rule for exchanges: comparisons on exchange fields (``cmd``, ``status``, ``latency``)
joined by ``and``/``or`` must hold for the same exchange, and an association matches when
one of its exchanges does. ``sop``, ``ts``, ``bytes``, ``duration`` and ``time`` join such
a group (and then test the exchange) when they stand next to an exchange field in the same
``and``; on their own they test the association. ``not`` applies to the association:
``not status=failure`` is "no exchange failed", ``status!=failure`` is "an exchange did not
fail". ``f != v`` is ``not f = v`` on the same record: for fields with several values (both
AE titles, both addresses) none of them is ``v``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any, assert_never

from analyzer.model import Exchange

from .facts import Facts
from .fields import FIELDS, Level
from .nodes import And, Compare, Flag, Node, Not, Or, Word
from .values import Test

__all__ = ["Predicate", "compile_node"]

Predicate = Callable[[Facts], bool]
_ExchangeTest = Callable[[Exchange, Facts], bool]


class _Scope(Enum):
    ASSOCIATION = 0
    EXCHANGE = 1
    EITHER = 2


def _scope(node: Node) -> _Scope:
    """EXCHANGE: an exchange group; EITHER: only fields that can be either; else the
    association."""
    match node:
        case Compare(field) | Flag(field):
            level = FIELDS[field].level
            if level is Level.EXCHANGE:
                return _Scope.EXCHANGE
            return _Scope.EITHER if level is Level.EITHER else _Scope.ASSOCIATION
        case And(operands) | Or(operands):
            scopes = {_scope(n) for n in operands}
            if _Scope.ASSOCIATION in scopes:
                return _Scope.ASSOCIATION
            return _Scope.EXCHANGE if _Scope.EXCHANGE in scopes else _Scope.EITHER
        case Word() | Not():
            return _Scope.ASSOCIATION
        case _:
            assert_never(node)


def compile_node(node: Node) -> Predicate:
    """The test of an association that ``node`` stands for."""
    match node:
        case Compare() | Flag() | Word():
            if _scope(node) is _Scope.EXCHANGE:
                return _any_exchange(_exchange_test(node))
            return _association_test(node)
        case Not(operand):
            inner = compile_node(operand)
            return lambda f: not inner(f)
        case Or(operands):
            if _scope(node) is _Scope.EXCHANGE:
                return _any_exchange(_exchange_test(node))
            return _any([compile_node(n) for n in operands])
        case And(operands):
            scopes = [_scope(n) for n in operands]
            grouped = _Scope.EXCHANGE in scopes  # EITHER fields join the exchange group
            group = tuple(
                n
                for n, s in zip(operands, scopes, strict=True)
                if grouped and s is not _Scope.ASSOCIATION
            )
            tests = [
                compile_node(n)
                for n, s in zip(operands, scopes, strict=True)
                if not grouped or s is _Scope.ASSOCIATION
            ]
            if group:
                tests.append(_any_exchange(_exchange_test(And(group))))
            return _all(tests)
        case _:
            assert_never(node)


def _any(tests: list[Predicate]) -> Predicate:
    return tests[0] if len(tests) == 1 else lambda f: any(t(f) for t in tests)


def _all(tests: list[Predicate]) -> Predicate:
    return tests[0] if len(tests) == 1 else lambda f: all(t(f) for t in tests)


def _association_test(node: Compare | Flag | Word) -> Predicate:
    match node:
        case Word(text):
            wanted = text.lower()
            return lambda f: wanted in f.text
        case Flag(field):
            flag = FIELDS[field].flag
            assert flag is not None
            return flag
        case Compare(field, op, value):
            spec = FIELDS[field]
            values = spec.association
            assert values is not None
            test = spec.kind.test(op.positive, value)
            if op.negated:
                return lambda f: not _some(test, values(f))
            return lambda f: _some(test, values(f))


def _some(test: Test, values: Iterable[Any]) -> bool:
    return any(test(v) for v in values)


def _exchange_test(node: Node) -> _ExchangeTest:
    """The test of one exchange (``node`` is an exchange group: comparisons, and/or)."""
    match node:
        case Compare(field, op, value):
            get = FIELDS[field].exchange
            assert get is not None
            test = FIELDS[field].kind.test(op.positive, value)
            if op.negated:
                return lambda e, f: not test(get(e, f))
            return lambda e, f: test(get(e, f))
        case And(operands):
            every = [_exchange_test(n) for n in operands]
            return lambda e, f: all(t(e, f) for t in every)
        case Or(operands):
            some = [_exchange_test(n) for n in operands]
            return lambda e, f: any(t(e, f) for t in some)
        case _:  # pragma: no cover - _scope() keeps the rest out of exchange groups
            raise AssertionError(node)


def _any_exchange(test: _ExchangeTest) -> Predicate:
    """Whether one exchange passes ``test``. Exchanges only ever grow, so what was tested
    is remembered per association: a live list tests only the new ones."""
    seen: weakref.WeakKeyDictionary[Facts, tuple[int, int, bool]] = weakref.WeakKeyDictionary()

    def predicate(f: Facts) -> bool:
        start = 0
        memo = seen.get(f)
        if memo is not None and memo[0] == f.generation:
            if memo[2]:
                return True
            start = memo[1]
        exchanges = f.exchanges
        for i in range(start, len(exchanges)):
            if test(exchanges[i], f):
                seen[f] = (f.generation, i + 1, True)
                return True
        seen[f] = (f.generation, len(exchanges), False)
        return False

    return predicate
