"""Wire text made safe for a terminal or a log line.

Every string that came from the wire or a capture file (AE titles, UIDs, implementation
names, data set values, error comments) may be crafted: a newline forges a log line, an ESC
sequence retitles the operator's terminal or hides text, a bidirectional override reorders
what is read. :func:`printable` is the one place where such text is escaped for human
output; JSON keeps the text as decoded, where the encoder escapes control characters itself.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

__all__ = ["printable"]


@lru_cache(maxsize=4096)
def _escape(text: str) -> str:
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if code < 0x20 or 0x7F <= code <= 0x9F:
            out.append(f"\\x{code:02x}")
        elif code > 0x9F and unicodedata.category(ch) in ("Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            # Format characters (bidi overrides, zero-width joiners), surrogates, private use
            # and unassigned code points, line and paragraph separators.
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


def printable(text: str) -> str:
    """``text`` with control and format characters shown as ``\\xNN``/``\\uNNNN`` escapes.

    Plain printable text is returned unchanged (and fast: the common case is one scan;
    ``str.isprintable`` is false for every character escaped here, so a printable string,
    accents and arrows included, needs no second look).
    """
    if text.isprintable():
        return text
    return _escape(text)
