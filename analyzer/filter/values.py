"""What a value means for each kind of field, and the test it becomes.

A kind turns the text after an operator into a test of one value of the field (a string,
a number of nanoseconds or bytes, an address...). Bad text raises :class:`Problem`, which
the parser turns into a :class:`~.errors.FilterError` with a caret under the value.
Text comparisons ignore case; ``=`` with ``*``, ``?`` or ``[...]`` is a glob (``PACS*``),
``~`` a regular expression searched anywhere (``"^CT"``).
"""

from __future__ import annotations

import calendar
import difflib
import fnmatch
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from pydicom._uid_dict import UID_dictionary

from analyzer.model import Severity

from .syntax import Op

__all__ = [
    "BOOL",
    "DURATION",
    "INTEGER",
    "IP",
    "SEVERITY",
    "SIZE",
    "SOP_CLASS",
    "STATUS",
    "TEXT",
    "TIME",
    "TRANSFER_SYNTAX",
    "Kind",
    "Problem",
    "Test",
    "Text",
]

Test = Callable[[Any], bool]
"""A test of one value of a field (None, a missing value, never passes)."""

ORDERED = frozenset({Op.EQ, Op.NE, Op.LT, Op.LE, Op.GT, Op.GE})
TEXTUAL = frozenset({Op.EQ, Op.NE, Op.MATCH, Op.NOMATCH})
_GLOB = re.compile(r"[*?\[]")
_NS = 1_000_000_000
_DAY_NS = 86_400 * _NS


class Problem(ValueError):
    """A value the field cannot take; ``offset``/``length``: the bad part of the value."""

    def __init__(self, message: str, offset: int = 0, length: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.length = length


class Kind(Protocol):
    """A kind of field: which operators it takes and what its values mean."""

    @property
    def ops(self) -> frozenset[Op]: ...

    @property
    def example(self) -> str:
        """A value, as help text (``500ms``)."""
        ...

    def test(self, op: Op, value: str) -> Test:
        """The test for ``op`` (never a negated one: ``!=`` is ``not =``)."""
        ...


def _regex(value: str) -> re.Pattern[str]:
    try:
        return re.compile(value, re.IGNORECASE)
    except re.error as exc:
        where = exc.pos if exc.pos is not None else 0
        raise Problem(f"bad regular expression: {exc.msg}", where) from None
    except (OverflowError, RecursionError):
        raise Problem("regular expression too large") from None


def _glob(value: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(value), re.IGNORECASE)


def _texts_test(op: Op, value: str, texts: Callable[[Any], Iterable[str]]) -> Test | None:
    """The regex or glob test over ``texts(x)``, or None for a plain ``=`` value."""
    if op is Op.MATCH:
        search = _regex(value).search
        return lambda x: x is not None and any(search(t) for t in texts(x))
    if op is Op.EQ and _GLOB.search(value):
        match = _glob(value).match
        return lambda x: x is not None and any(match(t) for t in texts(x))
    return None


def _one(x: str) -> tuple[str]:
    return (x,)


def _suggest(value: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


@dataclass(frozen=True, slots=True)
class Text:
    """Free text (AE titles, implementation names), or one of ``choices`` (outcomes,
    commands, finding codes) when given: an exact value must then be one of them."""

    what: str = "text"
    choices: Callable[[], Iterable[str]] | None = None
    example: str = "PACS*"

    @property
    def ops(self) -> frozenset[Op]:
        return TEXTUAL

    def test(self, op: Op, value: str) -> Test:
        special = _texts_test(op, value, _one)
        if special is not None:
            return special
        if not value:
            raise Problem(f"empty {self.what}: write a value, a glob (*) or ~regex")
        wanted = value.casefold()
        if self.choices is not None:
            known = {c.casefold(): c for c in self.choices()}
            if wanted not in known:
                raise Problem(
                    f"unknown {self.what} {value!r}{_suggest(value, known.values())}",
                    0,
                    len(value),
                )
        return lambda x: x is not None and x.casefold() == wanted


TEXT = Text()


@lru_cache(maxsize=8192)
def uid_texts(uid: str) -> tuple[str, ...]:
    """A UID and, when pydicom knows it, its keyword and name (what ``sop``/``ts`` match)."""
    entry = UID_dictionary.get(uid)
    return (uid,) if entry is None else (uid, entry[4], entry[0])


@lru_cache(maxsize=4)
def _uid_index(types: tuple[str, ...]) -> dict[str, str]:
    """Keyword and name (case-folded) → UID, for the UIDs of these dictionary types."""
    index: dict[str, str] = {}
    for uid, (name, kind, _info, _retired, keyword) in UID_dictionary.items():
        if kind in types:
            index.setdefault(name.casefold(), uid)
            if keyword:
                index.setdefault(keyword.casefold(), uid)
    return index


@lru_cache(maxsize=4)
def _uid_keywords(types: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(e[4] for e in UID_dictionary.values() if e[1] in types and e[4])


_DOTTED_UID = re.compile(r"[0-9]+(\.[0-9]+)+")


@dataclass(frozen=True, slots=True)
class Uid:
    """A UID named by keyword (``CTImageStorage``), dictionary name (``"CT Image Storage"``)
    or dotted UID; globs and regexes match any of the three."""

    what: str
    types: tuple[str, ...]
    example: str

    @property
    def ops(self) -> frozenset[Op]:
        return TEXTUAL

    def test(self, op: Op, value: str) -> Test:
        special = _texts_test(op, value, uid_texts)
        if special is not None:
            return special
        if _DOTTED_UID.fullmatch(value):
            target = value
        else:
            index = _uid_index(self.types)
            found = index.get(value.casefold())
            if found is None:
                hint = _suggest(value, _uid_keywords(self.types))
                raise Problem(
                    f"unknown {self.what} {value!r} (a keyword, a name in quotes, a UID, "
                    f"or a glob like {value}*){hint}",
                    0,
                    len(value),
                )
            target = found
        return lambda x: x == target


SOP_CLASS = Uid("SOP class", ("SOP Class", "Meta SOP Class"), "CTImageStorage")
TRANSFER_SYNTAX = Uid("transfer syntax", ("Transfer Syntax",), "JPEG2000")


@lru_cache(maxsize=4096)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Ip:
    """An address or a network in CIDR notation (``10.0.0.0/8``); a glob matches the text."""

    example: str = "10.0.0.0/8"

    @property
    def ops(self) -> frozenset[Op]:
        return TEXTUAL

    def test(self, op: Op, value: str) -> Test:
        special = _texts_test(op, value, _one)
        if special is not None:
            return special
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise Problem(
                f"{value!r} is not an IP address or network (10.0.0.5, 10.0.0.0/8, fe80::/10)",
                0,
                len(value),
            ) from None

        def test(x: str | None) -> bool:
            address = _address(x) if x is not None else None
            return address is not None and address in network

        return test


IP = Ip()


# --- ordered values --------------------------------------------------------------------


def _ordered(op: Op, lo: int, hi: int) -> Test:
    """A test against the interval [lo, hi) that a value (or range) stands for."""
    match op:
        case Op.EQ:
            return lambda x: x is not None and lo <= x < hi
        case Op.LT:
            return lambda x: x is not None and x < lo
        case Op.LE:
            return lambda x: x is not None and x < hi
        case Op.GT:
            return lambda x: x is not None and x >= hi
        case Op.GE:
            return lambda x: x is not None and x >= lo
        case _:
            raise AssertionError(op)


def _interval(op: Op, value: str, point: Callable[[str, int], tuple[int, int]]) -> tuple[int, int]:
    """``value`` as [lo, hi): one point, or ``low..high`` (both included) with ``=``."""
    low, sep, high = value.partition("..")
    if not sep:
        return point(value, 0)
    if op is not Op.EQ:
        raise Problem(f"a range goes with = or != (write ={value})", 0, len(value))
    if not low or not high:
        raise Problem("a range needs both ends: low..high", 0, len(value))
    lo, _ = point(low, 0)
    hi_lo, hi = point(high, len(low) + 2)
    if hi_lo < lo:
        raise Problem("a range goes from low to high", 0, len(value))
    return lo, hi


@dataclass(frozen=True, slots=True)
class Number:
    """A count with an optional unit: a duration (``500ms``), a size (``10MB``), a port."""

    what: str
    parse: Callable[[str], int | None]
    example: str

    @property
    def ops(self) -> frozenset[Op]:
        return ORDERED

    def test(self, op: Op, value: str) -> Test:
        def point(text: str, offset: int) -> tuple[int, int]:
            n = self.parse(text)
            if n is None:
                raise Problem(f"{text!r} is not {self.what}", offset, len(text))
            return n, n + 1

        return _ordered(op, *_interval(op, value, point))


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|min|h)", re.IGNORECASE)
_DURATION_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": _NS}
_DURATION_NS |= {"m": 60 * _NS, "min": 60 * _NS, "h": 3600 * _NS}


def duration_ns(text: str) -> int | None:
    """``500ms``, ``2s``, ``1.5min``, ``250us`` in nanoseconds (a unit is required)."""
    m = _DURATION.fullmatch(text)
    return None if m is None else round(float(m[1]) * _DURATION_NS[m[2].lower()])


_SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(?:([kmgt])(i?)b?|b)?", re.IGNORECASE)


def size_bytes(text: str) -> int | None:
    """``512``, ``64k``, ``10MB``, ``1.5GiB`` in bytes. K, M, G, T are powers of 1024, as
    everywhere in dicomtap (``10MB`` is ``10MiB``, what the reports print)."""
    m = _SIZE.fullmatch(text)
    if m is None:
        return None
    scale = 1 << (10 * ("kmgt".index(m[2].lower()) + 1)) if m[2] else 1
    return round(float(m[1]) * scale)


def integer(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 20 else None


DURATION = Number("a duration with a unit (500ms, 2s, 1.5min, 250us)", duration_ns, "500ms")
SIZE = Number("a size (512, 64k, 10MB, 1.5GiB)", size_bytes, "10MB")
INTEGER = Number("a whole number", integer, "104")


# --- times -----------------------------------------------------------------------------

_TIME_OF_DAY = r"(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
_DATE_TIME = re.compile(
    rf"(\d{{4}})-(\d{{2}})-(\d{{2}})(?:T{_TIME_OF_DAY}(Z|[+-]\d{{2}}:?\d{{2}})?)?"
)
_CLOCK = re.compile(rf"{_TIME_OF_DAY}Z?")


def _moment(text: str, offset: int) -> tuple[int, int, bool]:
    """``(lo, hi, time_of_day)``: the span ``text`` names, in ns since the epoch (UTC, or
    the offset it gives), or since midnight UTC for a time of day (``19:41``)."""
    if m := _CLOCK.fullmatch(text):
        hour, minute, second, frac = m.groups()
        lo, step = _clock(hour, minute, second, frac, text, offset)
        return lo, lo + step, True
    m = _DATE_TIME.fullmatch(text)
    if m is None:
        raise Problem(
            f"{text!r} is not a time (2026-11-24, 2026-11-24T19:41:22Z, 19:41)", offset, len(text)
        )
    year, month, day, hour, minute, second, frac, zone = m.groups()
    try:
        days = calendar.timegm((int(year), int(month), int(day), 0, 0, 0)) // 86_400
        if not (
            1 <= int(month) <= 12 and 1 <= int(day) <= calendar.monthrange(int(year), int(month))[1]
        ):
            raise ValueError
    except (ValueError, OverflowError):
        raise Problem(f"{text!r}: no such date", offset, len(text)) from None
    base = days * _DAY_NS
    if hour is None:
        return base, base + _DAY_NS, False
    lo, step = _clock(hour, minute, second, frac, text, offset)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        hh, mm = int(zone[1:3]), int(zone[-2:])
        if hh > 23 or mm > 59:
            raise Problem(f"{text!r}: bad UTC offset {zone}", offset, len(text))
        lo -= sign * (hh * 3600 + mm * 60) * _NS
    return base + lo, base + lo + step, False


def _clock(
    hour: str, minute: str, second: str | None, frac: str | None, text: str, offset: int
) -> tuple[int, int]:
    """Nanoseconds since midnight, and the span the precision given covers."""
    h, m, s = int(hour), int(minute), int(second or 0)
    if h > 23 or m > 59 or s > 60:
        raise Problem(f"{text!r}: no such time of day", offset, len(text))
    ns = ((h * 60 + m) * 60 + s) * _NS
    if frac:
        ns += int(frac.ljust(9, "0"))
        return ns, 10 ** (9 - len(frac))
    return ns, (_NS if second is not None else 60 * _NS)


@dataclass(frozen=True, slots=True)
class Time:
    """A moment or span: ``2026-11-24`` (the day), ``2026-11-24T19:41Z`` (the minute),
    ``19:41:22`` (that second, any day), ``19:00..19:30``. UTC unless an offset is given,
    like the times of the list and the JSON records."""

    example: str = "19:00..19:30"

    @property
    def ops(self) -> frozenset[Op]:
        return ORDERED

    def test(self, op: Op, value: str) -> Test:
        low, sep, high = value.partition("..")
        if sep and op is not Op.EQ:
            raise Problem(f"a range goes with = or != (write ={value})", 0, len(value))
        if sep and (not low or not high):
            raise Problem("a range needs both ends: low..high", 0, len(value))
        lo, hi, of_day = _moment(low, 0)
        if sep:
            hi_lo, hi, high_of_day = _moment(high, len(low) + 2)
            if high_of_day != of_day:
                raise Problem("both ends of a range are times of day, or both dates", 0, len(value))
            if not of_day and hi_lo < lo:
                raise Problem("a range goes from early to late", 0, len(value))
        if not of_day:
            return _ordered(op, lo, hi)
        if sep and hi <= lo:  # 23:00..01:00 wraps around midnight
            late, early = _ordered(Op.GE, lo, hi), _ordered(Op.LT, hi, hi)
            return lambda x: x is not None and (late(x % _DAY_NS) or early(x % _DAY_NS))
        inner = _ordered(op, lo, hi)
        return lambda x: x is not None and inner(x % _DAY_NS)


TIME = Time()


# --- DIMSE status, severity, yes/no --------------------------------------------------------

STATUS_CLASSES = ("success", "warning", "failure", "cancel", "pending", "unknown")
_HEX = re.compile(r"(?:0x)?([0-9a-f]{1,4})", re.IGNORECASE)


def _status_code(text: str, offset: int) -> tuple[int, int]:
    m = _HEX.fullmatch(text)
    if m is None:
        raise Problem(
            f"{text!r} is not a status: a hex code (A801, 0xA801) or {'|'.join(STATUS_CLASSES)}"
            + _suggest(text.lower(), STATUS_CLASSES),
            offset,
            len(text),
        )
    code = int(m[1], 16)
    return code, code + 1


def _status_texts(x: tuple[int | None, str]) -> tuple[str, ...]:
    return () if x[0] is None else (f"{x[0]:04X}",)


@dataclass(frozen=True, slots=True)
class Status:
    """A DIMSE status: a hex code (``A801``, ``0xA801``), a range (``A700..A7FF``), a glob
    (``A7*``) or a class (``failure``). Values tested are ``(code, class)``."""

    example: str = "failure"

    @property
    def ops(self) -> frozenset[Op]:
        return ORDERED | TEXTUAL

    def test(self, op: Op, value: str) -> Test:
        special = _texts_test(op, value, _status_texts)
        if special is not None:
            return special
        if value.lower() in STATUS_CLASSES:
            if op is not Op.EQ:
                raise Problem(f"a status class goes with = or != (write ={value})", 0, len(value))
            wanted = value.lower()
            return lambda x: x is not None and x[1] == wanted
        code = _ordered(op, *_interval(op, value, _status_code))
        return lambda x: x is not None and code(x[0])


STATUS = Status()

_SEVERITIES = {s.label: int(s) for s in Severity}


@dataclass(frozen=True, slots=True)
class SeverityKind:
    """A finding severity, ordered: ``info < warning < error``."""

    example: str = "warning"

    @property
    def ops(self) -> frozenset[Op]:
        return ORDERED

    def test(self, op: Op, value: str) -> Test:
        level = _SEVERITIES.get(value.lower())
        if level is None:
            raise Problem(f"{value!r} is not a severity: info, warning or error", 0, len(value))
        return _ordered(op, level, level + 1)


SEVERITY = SeverityKind()

_YES = {"yes": True, "true": True, "1": True, "on": True}
_YES |= {"no": False, "false": False, "0": False, "off": False}


@dataclass(frozen=True, slots=True)
class Boolean:
    """Yes or no: ``partial`` alone, ``partial=no``."""

    example: str = "yes"

    @property
    def ops(self) -> frozenset[Op]:
        return frozenset({Op.EQ, Op.NE})

    def test(self, op: Op, value: str) -> Test:
        wanted = _YES.get(value.lower())
        if wanted is None:
            raise Problem(f"{value!r} is not yes or no", 0, len(value))
        return lambda x: x is not None and bool(x) == wanted


BOOL = Boolean()
