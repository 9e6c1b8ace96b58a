"""Filter text to a syntax tree, every value checked, or a :class:`FilterError` with the
place of the first mistake.

::

    expression := or
    or         := and (("or" | "||") and)*
    and        := unary (("and" | "&&")? unary)*       juxtaposition is "and"
    unary      := ("not" | "!") unary | "(" or ")" | term
    term       := FIELD OP value | FIELD | WORD | STRING
    OP         := = == != < <= > >= ~ !~
    value      := WORD | STRING
"""

from __future__ import annotations

import difflib

from .errors import FilterError
from .fields import FIELDS, Field
from .nodes import And, Compare, Flag, Node, Not, Or, Word
from .syntax import Op, Token, TokenKind, tokens
from .values import Problem

__all__ = ["MAX_DEPTH", "parse"]

#: Parentheses and ``not`` nested deeper than this are refused (the parser recurses).
MAX_DEPTH = 64

_TEXT_OPS = "= != ~ !~"
_OPS_HELP = {
    frozenset({Op.EQ, Op.NE}): "= or !=",
    frozenset({Op.EQ, Op.NE, Op.MATCH, Op.NOMATCH}): _TEXT_OPS,
}


def parse(text: str) -> Node:
    """The syntax tree of ``text``; :class:`FilterError` if it is not a valid filter."""
    return _Parser(text).expression()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = list(tokens(text))
        self.i = 0
        self.depth = 0

    # --- tokens -----------------------------------------------------------------------

    @property
    def token(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        if token.kind is not TokenKind.END:
            self.i += 1
        return token

    def fail(self, message: str, token: Token) -> FilterError:
        return FilterError(message, self.text, token.start, token.end)

    # --- grammar --------------------------------------------------------------------------

    def expression(self) -> Node:
        if self.token.kind is TokenKind.END:
            raise self.fail("empty filter", self.token)
        node = self.disjunction()
        token = self.token
        if token.kind is TokenKind.RPAREN:
            raise self.fail("')' without a '(' before it", token)
        if token.kind is not TokenKind.END:
            self.primary(None)  # an operator out of place: says what is missing
            raise self.fail(f"unexpected {token.value!r}", token)
        return node

    def disjunction(self) -> Node:
        operands = [self.conjunction()]
        while self.token.kind is TokenKind.OR:
            self.advance()
            operands.append(self.conjunction())
        return _flat(Or, operands)

    def conjunction(self) -> Node:
        operands = [self.unary()]
        while True:
            kind = self.token.kind
            if kind is TokenKind.AND:
                self.advance()
            elif kind not in (TokenKind.NOT, TokenKind.LPAREN, TokenKind.WORD, TokenKind.STRING):
                break
            operands.append(self.unary())
        return _flat(And, operands)

    def unary(self) -> Node:
        nots: list[Token] = []
        while self.token.kind is TokenKind.NOT:
            nots.append(self.advance())
            if len(nots) > MAX_DEPTH:
                raise self.fail("too many 'not' in a row", nots[-1])
        node = self.primary(nots[-1] if nots else None)
        for _ in nots:
            node = Not(node)
        return node

    def primary(self, after: Token | None) -> Node:
        token = self.token
        match token.kind:
            case TokenKind.LPAREN:
                self.depth += 1
                if self.depth > MAX_DEPTH:
                    raise self.fail("parentheses nested too deep", token)
                self.advance()
                if self.token.kind is TokenKind.RPAREN:
                    raise self.fail("nothing between '(' and ')'", self.token)
                node = self.disjunction()
                closing = self.token
                if closing.kind is not TokenKind.RPAREN:
                    raise FilterError(
                        f"missing ')' to close the '(' at column {token.start + 1}",
                        self.text,
                        closing.start,
                        closing.end,
                    )
                self.advance()
                self.depth -= 1
                return node
            case TokenKind.WORD:
                return self.term()
            case TokenKind.STRING:
                self.advance()
                if self.token.kind is TokenKind.OP:
                    raise self.fail("a field name is not quoted", token)
                return Word(token.value)
            case TokenKind.END:
                what = f"after {after.value!r}" if after else "here"
                raise self.fail(f"the filter ends too early: a term is missing {what}", token)
            case TokenKind.RPAREN:
                raise self.fail("a term is missing before ')'", token)
            case TokenKind.OP:
                raise self.fail(f"{token.value!r} needs a field before it, as in latency>2s", token)
            case _:
                raise self.fail(f"{token.value!r} needs a term before it", token)

    def term(self) -> Node:
        word = self.advance()
        op = self.token
        field = FIELDS.get(word.value.lower())
        if op.kind is not TokenKind.OP:
            if field is not None:
                if field.flag is not None:
                    return Flag(field.name)
                raise self.fail(f"{field.name} needs a comparison, as in {field.usage}", word)
            name, colon, _ = word.value.partition(":")
            if colon and name.lower() in FIELDS:
                raise FilterError(
                    f"':' is not an operator: write {name}=…",
                    self.text,
                    word.start + len(name),
                )
            return Word(word.value)
        if field is None:
            close = difflib.get_close_matches(word.value.lower(), list(FIELDS), n=1)
            hint = f"; did you mean {close[0]}?" if close else f" (fields: {', '.join(FIELDS)})"
            raise self.fail(f"unknown field {word.value!r}{hint}", word)
        self.advance()
        assert op.op is not None
        if op.op not in field.kind.ops:
            allowed = _OPS_HELP.get(field.kind.ops, "= != < <= > >=")
            raise self.fail(f"{field.name} takes {allowed}, not {op.value}", op)
        value = self.token
        if value.kind not in (TokenKind.WORD, TokenKind.STRING):
            if value.kind is TokenKind.END:
                raise self.fail(f"{field.name}{op.value} needs a value, as in {field.usage}", value)
            raise self.fail(
                f"{field.name}{op.value} needs a value (quote it if it is {value.value!r})", value
            )
        self.advance()
        self.check(field, op.op, value)
        return Compare(field.name, op.op, value.value)

    def check(self, field: Field, op: Op, value: Token) -> None:
        """Build the value's test once, so that a bad value fails here with its place."""
        try:
            field.kind.test(op.positive, value.value)
        except Problem as problem:
            start = value.source_offset(problem.offset)
            length = problem.length if problem.length is not None else 1
            end = value.source_offset(problem.offset + length - 1) + 1
            raise FilterError(f"{field.name}: {problem.message}", self.text, start, end) from None


def _flat(kind: type[And] | type[Or], operands: list[Node]) -> Node:
    """One operand as is; otherwise one flat ``And``/``Or`` (a parenthesised ``a and b``
    inside an ``and`` joins it)."""
    if len(operands) == 1:
        return operands[0]
    flat: list[Node] = []
    for node in operands:
        if isinstance(node, kind):
            flat.extend(node.operands)
        else:
            flat.append(node)
    return kind(tuple(flat))
