"""Wire text is escaped before it reaches a terminal or a log line."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from analyzer.textsafe import _escape, printable


def test_plain_text_unchanged() -> None:
    assert printable("STORESCU") == "STORESCU"
    assert printable("1.2.840.10008.1.1") == "1.2.840.10008.1.1"
    assert printable("Müller^Hans") == "Müller^Hans"
    assert printable("A\\B") == "A\\B"


def test_controls_escaped() -> None:
    assert printable("EVIL\x1b]0;owned\x07") == "EVIL\\x1b]0;owned\\x07"
    assert printable("a\nb\rc\x00d\x7f\x9b") == "a\\x0ab\\x0dc\\x00d\\x7f\\x9b"


def test_bidi_and_separators_escaped() -> None:
    assert printable("abc\u202edcb") == "abc\\u202edcb"
    assert printable("x\u2028y") == "x\\u2028y"


@given(st.text())
def test_never_a_control_character(text: str) -> None:
    out = printable(text)
    unsafe = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
    assert not any(unicodedata.category(ch) in unsafe for ch in out)


@given(st.text())
def test_printable_text_is_returned_as_is(text: str) -> None:
    # the fast path (str.isprintable) never skips a character the escaping would change
    if text.isprintable():
        assert _escape(text) == text
