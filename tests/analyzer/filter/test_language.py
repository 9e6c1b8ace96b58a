"""The filter language's syntax: tokens, tree, canonical text, and errors with a caret."""

from __future__ import annotations

import ipaddress
import re
import string
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom._uid_dict import UID_dictionary

from analyzer.filter import (
    FIELDS,
    And,
    Compare,
    Facts,
    Filter,
    FilterError,
    Flag,
    Node,
    Not,
    Op,
    Or,
    Word,
    parse,
    to_text,
)
from analyzer.filter.parser import MAX_DEPTH
from analyzer.findings import CODES

from .conftest import sample

# --- what parses to what ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("calling=CT", Compare("calling", Op.EQ, "CT")),
        ("CALLING == CT", Compare("calling", Op.EQ, "CT")),
        ('called="MY AE"', Compare("called", Op.EQ, "MY AE")),
        ("called='MY AE'", Compare("called", Op.EQ, "MY AE")),
        ('calling~"^CT\\d"', Compare("calling", Op.MATCH, "^CT\\d")),
        ('calling!~"a\\"b"', Compare("calling", Op.NOMATCH, 'a"b')),
        ("latency > 500ms", Compare("latency", Op.GT, "500ms")),
        ("bytes>=10MB", Compare("bytes", Op.GE, "10MB")),
        ("port<=1024", Compare("port", Op.LE, "1024")),
        ("duration<2s", Compare("duration", Op.LT, "2s")),
        ("status!=0xA801", Compare("status", Op.NE, "0xA801")),
        ("partial", Flag("partial")),
        ("PACS", Word("PACS")),
        ('"not"', Word("not")),
        ("10.0.0.1:104", Word("10.0.0.1:104")),  # not a field: a word with a colon
        ("a and b", And((Word("a"), Word("b")))),
        ("a && b", And((Word("a"), Word("b")))),
        ("a b", And((Word("a"), Word("b")))),  # juxtaposition is "and"
        ("a or b || c", Or((Word("a"), Word("b"), Word("c")))),
        ("a and b or c", Or((And((Word("a"), Word("b"))), Word("c")))),
        ("a or b and c", Or((Word("a"), And((Word("b"), Word("c")))))),
        ("a and (b or c)", And((Word("a"), Or((Word("b"), Word("c")))))),
        ("(a and b) and c", And((Word("a"), Word("b"), Word("c")))),  # flat
        ("a and (b and (c))", And((Word("a"), Word("b"), Word("c")))),
        ("not a and b", And((Not(Word("a")), Word("b")))),
        ("!a", Not(Word("a"))),
        ("NOT not a", Not(Not(Word("a")))),
        ("!(a or b)", Not(Or((Word("a"), Word("b"))))),
        ("not partial", Not(Flag("partial"))),
    ],
)
def test_parses_to(text: str, tree: Node) -> None:
    assert parse(text) == tree
    assert parse(to_text(tree)) == tree


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("calling == CT  &&  !latency>2s", "calling=CT and not latency>2s"),
        ("(a or b) (c or d)", "(a or b) and (c or d)"),
        ("not (a and b) or c", "not (a and b) or c"),
        ('called="PACS" ', "called=PACS"),
        ('"MY AE" "and" "calling"', '"MY AE" and "and" and "calling"'),
        ('"ae:x"', '"ae:x"'),  # bare, it would be the old key:value syntax
        ("time=19:00..19:30", "time=19:00..19:30"),
    ],
)
def test_canonical_text(text: str, canonical: str) -> None:
    assert to_text(parse(text)) == canonical
    assert Filter.parse(text).text == canonical and Filter.parse(text).source == text


# --- errors: what, and where --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message", "start", "end"),
    [
        ("", "empty filter", 0, 1),
        ("   ", "empty filter", 3, 4),
        ("calng=CT", "unknown field 'calng'; did you mean calling?", 0, 5),
        ("zzz>1", "unknown field 'zzz' (fields: calling, called", 0, 3),
        ("latency>fast", "latency: 'fast' is not a duration", 8, 12),
        ("latency>500", "latency: '500' is not a duration", 8, 11),
        ("calling=CT and", "the filter ends too early: a term is missing here", 14, 15),
        ("not", "a term is missing after 'not'", 3, 4),
        ("(a or b", "missing ')' to close the '(' at column 1", 7, 8),
        ("a)", "')' without a '(' before it", 1, 2),
        ("()", "nothing between '(' and ')'", 1, 2),
        ("a and )", "a term is missing before ')'", 6, 7),
        ("ae:PACS", "':' is not an operator: write ae=…", 2, 3),
        ("calling", "calling needs a comparison, as in calling=CT*", 0, 7),
        ("calling=", "calling= needs a value, as in calling=CT*", 8, 9),
        ("calling=(x)", "calling= needs a value (quote it if it is '(')", 8, 9),
        ("calling=and", "calling= needs a value (quote it if it is 'and')", 8, 11),
        ("latency~x", "latency takes = != < <= > >=, not ~", 7, 8),
        ("partial>1", "partial takes = or !=, not >", 7, 8),
        ("calling<CT", "calling takes = != ~ !~, not <", 7, 8),
        ('calling~"a(b"', "calling: bad regular expression: missing )", 10, 11),
        ('calling~"\\"(x"', "calling: bad regular expression: missing )", 11, 12),
        ('"abc', 'unclosed ": add the closing "', 0, 4),
        ("x & y", "'&' alone means nothing", 2, 3),
        ("x | y", "'|' alone means nothing", 2, 3),
        ("= x", "'=' needs a field before it, as in latency>2s", 0, 1),
        ("latency>2s > 3s", "'>' needs a field before it", 11, 12),
        ("and x", "'and' needs a term before it", 0, 3),
        ('"calling"=x', "a field name is not quoted", 0, 9),
        ("sop=CTImageStorag", "did you mean CTImageStorage?", 4, 17),
        ("sop=ExplicitVRLittleEndian", "unknown SOP class 'ExplicitVRLittleEndian'", 4, 26),
        ("ts=CTImageStorage", "unknown transfer syntax 'CTImageStorage'", 3, 17),
        ("cmd=C-STOR", "unknown command 'C-STOR'; did you mean C-STORE?", 4, 10),
        ("outcome=rejectd", "unknown outcome 'rejectd'; did you mean rejected?", 8, 15),
        ("code=context-rejectd", "did you mean context-rejected?", 5, 20),
        ("status=Z1", "status: 'Z1' is not a status", 7, 9),
        ("status=failur", "cancel|pending|unknown; did you mean failure?", 7, 13),
        ("status>failure", "a status class goes with = or !=", 7, 14),
        ("ip=10.0.0.300", "'10.0.0.300' is not an IP address or network", 3, 13),
        ("port=ten", "port: 'ten' is not a whole number", 5, 8),
        ("port=10..5", "port: a range goes from low to high", 5, 10),
        ("port>10..20", "a range goes with = or != (write =10..20)", 5, 11),
        ("bytes=1..", "a range needs both ends", 6, 9),
        ("bytes=1..x", "bytes: 'x' is not a size", 9, 10),
        ("time=2026-13-01", "time: '2026-13-01': no such date", 5, 15),
        ("time=2026-02-30", "no such date", 5, 15),
        ("time=25:00", "time: '25:00': no such time of day", 5, 10),
        ("time=19:00..2026-11-24", "both ends of a range are times of day, or both dates", 5, 22),
        ("time=2026-11-25..2026-11-24", "a range goes from early to late", 5, 27),
        ("time=2026-11-24T10:00+25:00", "bad UTC offset", 5, 27),
        ("severity=fatal", "'fatal' is not a severity", 9, 14),
        ("partial=maybe", "'maybe' is not yes or no", 8, 13),
        ("(" * (MAX_DEPTH + 1) + "a", "parentheses nested too deep", MAX_DEPTH, MAX_DEPTH + 1),
        (
            "not " * (MAX_DEPTH + 1) + "a",
            "too many 'not' in a row",
            MAX_DEPTH * 4,
            MAX_DEPTH * 4 + 3,
        ),
    ],
)
def test_errors_say_what_and_where(text: str, message: str, start: int, end: int) -> None:
    with pytest.raises(FilterError) as caught:
        parse(text)
    error = caught.value
    assert message in error.message
    assert (error.position, error.end) == (start, end)
    _, carets = error.caret_lines(indent="")
    assert carets == " " * start + "^" * (end - start)
    assert str(error).endswith(f"(column {start + 1})")


def test_caret_lines_stay_aligned() -> None:
    """Wide characters take two cells and control characters are shown as one: the carets
    are still under the mistake."""
    with pytest.raises(FilterError) as caught:
        parse("ae=\u5168\u89d2 latency>x\x07")
    error = caught.value
    shown, carets = error.caret_lines(indent="> ")
    assert shown == "> ae=\u5168\u89d2 latency>x?"
    assert carets == ">" + " " * 17 + "^^"


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    for text in ("(" * 10_000, "!" * 10_000 + "a", "a and " * 5_000 + "b", "-" * 100_000):
        try:
            parse(text)
        except FilterError as error:
            assert 0 <= error.position <= len(text)


# --- printing: parse(to_text(tree)) == tree --------------------------------------------------


def _cased(word: str) -> st.SearchStrategy[str]:
    return st.sampled_from([word, word.upper(), word.lower()])


_TEXT = st.text(min_size=1, max_size=12)


def _values(name: str) -> st.SearchStrategy[tuple[Op, str]]:
    """Valid ``(op, value)`` pairs for a field (operators it takes, values it accepts)."""
    text_ops = st.sampled_from([Op.EQ, Op.NE, Op.MATCH, Op.NOMATCH])
    ordered = st.sampled_from([Op.EQ, Op.NE, Op.LT, Op.LE, Op.GT, Op.GE])
    eq = st.sampled_from([Op.EQ, Op.NE])
    regex = _TEXT.map(re.escape)
    glob = _TEXT.map(lambda t: t.replace("[", "").replace("]", "") + "*")

    def textual(exact: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[Op, str]]:
        return st.one_of(
            st.tuples(eq, st.one_of(exact, glob)),
            st.tuples(st.sampled_from([Op.MATCH, Op.NOMATCH]), regex),
        )

    def ranged(points: list[str]) -> st.SearchStrategy[tuple[Op, str]]:
        """One point with any operator, or ``low..high`` with = or != (``points`` in
        increasing order)."""
        index = st.integers(0, len(points) - 1)
        pairs = st.tuples(index, index).map(lambda ij: f"{points[min(ij)]}..{points[max(ij)]}")
        return st.one_of(st.tuples(ordered, st.sampled_from(points)), st.tuples(eq, pairs))

    match name:
        case "calling" | "called" | "ae" | "impl":
            return st.tuples(text_ops, regex) | st.tuples(eq, _TEXT)
        case "outcome":
            return textual(st.sampled_from(["released", "rejected", "in-progress"]).flatmap(_cased))
        case "cmd":
            return textual(st.sampled_from(["C-STORE", "N-ACTION", "C-MOVE"]).flatmap(_cased))
        case "code":
            return textual(st.sampled_from(CODES))
        case "sop" | "ts":
            kinds = ("Transfer Syntax",) if name == "ts" else ("SOP Class", "Meta SOP Class")
            entries = [(uid, e) for uid, e in UID_dictionary.items() if e[1] in kinds]
            exact = st.sampled_from(entries).flatmap(
                lambda p: st.sampled_from([p[0], p[1][4] or p[0], p[1][0]])
            )
            return textual(exact | st.just("1.2.3.4"))
        case "ip":
            address = st.ip_addresses().map(str)
            network = st.ip_addresses(v=4).map(
                lambda a: str(ipaddress.ip_network(f"{a}/16", False))
            )
            return st.tuples(eq, address | network | st.just("10.*"))
        case "port" | "id":
            return ranged(["0", "7", "104", "11112", "65535"])
        case "latency" | "duration":
            return ranged(["10ns", "1us", "2µs", "500ms", "2s", "1.5min", "2h"])
        case "bytes" | "gap":
            return ranged(["0", "1b", "512", "64k", "10MB", "1.5GiB"])
        case "time":
            return ranged(
                ["2026-11-24", "2026-11-24T19:41:22.5+01:00", "2026-11-24T19:41:22Z"]
            ) | ranged(["00:00", "19:41", "19:41:22.123", "23:59:59"])
        case "status":
            codes = ranged(["0", "0000", "A700", "0xA801", "FF00"])
            classes = st.tuples(eq, st.sampled_from(["failure", "Pending", "A7*"]))
            return (
                codes | classes | st.tuples(st.sampled_from([Op.MATCH, Op.NOMATCH]), st.just("^A"))
            )
        case "severity":
            return st.tuples(ordered, st.sampled_from(["info", "warning", "ERROR"]))
        case "partial":
            return st.tuples(eq, st.sampled_from(["yes", "no", "true", "0"]))
    raise AssertionError(name)


_COMPARE = st.sampled_from(sorted(set(FIELDS) - {"gap"})).flatmap(
    lambda name: _values(name).map(lambda ov: Compare(name, ov[0], ov[1]))
)
_ATOMS: st.SearchStrategy[Node] = st.one_of(
    _COMPARE,
    st.sampled_from([Flag("partial"), Flag("gap")]),
    st.text(max_size=10).map(Word),
)


def _trees(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    return st.one_of(
        children.map(Not),
        st.lists(children.filter(lambda n: not isinstance(n, And)), min_size=2, max_size=4)
        .map(tuple)
        .map(And),
        st.lists(children.filter(lambda n: not isinstance(n, Or)), min_size=2, max_size=4)
        .map(tuple)
        .map(Or),
    )


TREES = st.recursive(_ATOMS, lambda children: _trees(children), max_leaves=12)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(TREES)
def test_parse_of_print_is_identity(tree: Node) -> None:
    text = to_text(tree)
    assert parse(text) == tree
    Filter(tree)  # every generated tree compiles


@cache
def _varied_facts() -> list[Facts]:
    return [
        Facts(a, store.exchanges(a.id), store.findings(a.id))
        for store in map(sample, _VARIED)
        for a in store.associations()
    ]


_VARIED = (
    "fail_dimse_status.pcap",
    "abort.pcap",
    "fail_never_associated.pcap",
    "fail_snaplen.pcap",
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(TREES)
def test_any_tree_evaluates_and_not_is_its_complement(tree: Node) -> None:
    """On associations with and without AE titles, exchanges, latencies, findings."""
    flt, negated = Filter(tree), Filter(Not(tree))
    for f in _varied_facts():
        assert negated.matches(f) is (not flt.matches(f))


# --- any text: a tree or a FilterError with a valid place ------------------------------------

_PIECES = st.sampled_from(
    [
        *FIELDS,
        "and",
        "or",
        "not",
        "&&",
        "||",
        "!",
        "(",
        ")",
        "=",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "~",
        "!~",
        '"',
        "'",
        "..",
        "*",
        "500ms",
        "10MB",
        "A801",
        "0x",
        "C-STORE",
        "10.0.0.0/8",
        "19:41",
        "2026-11-24",
        "\\",
        ":",
        " ",
        "\t",
        "PACS",
        "-",
        "?",
        "[",
        "\u5168",
        "\x00",
    ]
)
_TEXTS = st.one_of(
    st.text(alphabet=string.printable + "µ\u5168\u200f", max_size=40),
    st.lists(_PIECES, max_size=14).map("".join),
    st.lists(_PIECES, max_size=14).map(" ".join),
)


@settings(max_examples=1500, deadline=None)
@given(_TEXTS)
def test_any_text_parses_or_fails_with_a_caret(text: str) -> None:
    try:
        tree = parse(text)
    except FilterError as error:
        assert 0 <= error.position <= len(text)
        assert error.position < error.end <= len(text) + 1
        _, carets = error.caret_lines(indent="")
        assert carets.strip(" ") and set(carets.strip(" ")) == {"^"}
        assert error.message and "\n" not in error.message
        return
    assert parse(to_text(tree)) == tree
    Filter(tree)
