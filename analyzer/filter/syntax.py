"""Tokens of the filter language (see :mod:`analyzer.filter` for the grammar)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum, StrEnum

from .errors import FilterError

__all__ = ["KEYWORDS", "SPECIAL", "Op", "Token", "TokenKind", "is_bare_word", "quote", "tokens"]


class TokenKind(Enum):
    WORD = "word"
    STRING = "string"
    OP = "operator"
    LPAREN = "("
    RPAREN = ")"
    AND = "and"
    OR = "or"
    NOT = "not"
    END = "end"


class Op(StrEnum):
    """A comparison operator, as printed."""

    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    MATCH = "~"
    NOMATCH = "!~"

    @property
    def positive(self) -> Op:
        """The operator this one negates (``!=`` → ``=``), or itself."""
        return {Op.NE: Op.EQ, Op.NOMATCH: Op.MATCH}.get(self, self)

    @property
    def negated(self) -> bool:
        return self in (Op.NE, Op.NOMATCH)


#: Words that are operators (any case); quote them to search for them.
KEYWORDS = {"and": TokenKind.AND, "or": TokenKind.OR, "not": TokenKind.NOT}
#: Characters that end a bare word.
SPECIAL = frozenset("()=!<>~&|\"'")

_OPERATORS = (
    ("&&", TokenKind.AND, None),
    ("||", TokenKind.OR, None),
    ("!=", TokenKind.OP, Op.NE),
    ("!~", TokenKind.OP, Op.NOMATCH),
    ("==", TokenKind.OP, Op.EQ),
    ("<=", TokenKind.OP, Op.LE),
    (">=", TokenKind.OP, Op.GE),
    ("!", TokenKind.NOT, None),
    ("=", TokenKind.OP, Op.EQ),
    ("<", TokenKind.OP, Op.LT),
    (">", TokenKind.OP, Op.GT),
    ("~", TokenKind.OP, Op.MATCH),
    ("(", TokenKind.LPAREN, None),
    (")", TokenKind.RPAREN, None),
)


@dataclass(frozen=True, slots=True)
class Token:
    """One token: ``value`` is a word's text or a string's decoded content; ``start`` and
    ``end`` are offsets in the expression; ``offsets`` maps each character of a string's
    value back to the expression (for errors inside a quoted regex)."""

    kind: TokenKind
    value: str
    start: int
    end: int
    op: Op | None = None
    offsets: tuple[int, ...] = ()

    def source_offset(self, index: int) -> int:
        """Where character ``index`` of the value is in the expression."""
        if self.kind is TokenKind.STRING:
            if 0 <= index < len(self.offsets):
                return self.offsets[index]
            return self.end - 1
        return self.start + max(0, min(index, len(self.value)))


def tokens(text: str) -> Iterator[Token]:
    """The tokens of ``text``, ending with one END token; :class:`FilterError` on a
    character that cannot start a token or a string that is not closed."""
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            yield Token(TokenKind.END, "", n, n)
            return
        ch = text[i]
        if ch in "\"'":
            token = _string(text, i)
            yield token
            i = token.end
            continue
        for symbol, kind, op in _OPERATORS:
            if text.startswith(symbol, i):
                yield Token(kind, symbol, i, i + len(symbol), op)
                i += len(symbol)
                break
        else:
            if ch in "&|":
                raise FilterError(
                    f"'{ch}' alone means nothing: write {ch * 2} (or 'and'/'or')", text, i
                )
            start = i
            while i < n and not text[i].isspace() and text[i] not in SPECIAL:
                i += 1
            word = text[start:i]
            kind = KEYWORDS.get(word.lower(), TokenKind.WORD)
            yield Token(kind, word, start, i)


def _string(text: str, start: int) -> Token:
    """A quoted string: ``\\\\`` and a backslash before the quote are escapes, any other
    backslash is kept (so regular expressions need no doubling)."""
    quote_char = text[start]
    chars: list[str] = []
    offsets: list[int] = []
    i, n = start + 1, len(text)
    while i < n:
        ch = text[i]
        if ch == quote_char:
            return Token(TokenKind.STRING, "".join(chars), start, i + 1, offsets=tuple(offsets))
        if ch == "\\" and i + 1 < n and text[i + 1] in (quote_char, "\\"):
            chars.append(text[i + 1])
            offsets.append(i)
            i += 2
            continue
        chars.append(ch)
        offsets.append(i)
        i += 1
    raise FilterError(f"unclosed {quote_char}: add the closing {quote_char}", text, start, n)


def is_bare_word(value: str) -> bool:
    """Whether ``value`` reads back as one word, unquoted."""
    return (
        bool(value)
        and value.lower() not in KEYWORDS
        and not any(c.isspace() or c in SPECIAL for c in value)
    )


def quote(value: str) -> str:
    """``value`` as a double-quoted string that reads back as ``value``."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
