"""Same-length replacement values, by VR (PS3.5 §6.2).

A replacement is always exactly as long as the value it replaces and valid for its VR:
dates become 19000101, times 000000, numbers 0, text a fixed word, names ``ANONYMIZED``,
UIDs their consistent replacement (:class:`~analyzer.redact.uids.UidMap`), binary values
zeros. Whatever is left over is padding (a space, NUL for UIDs), as the standard pads.
"""

from __future__ import annotations

from .uids import UidMap

_TEXT = b"ANONYMIZED"
_DATE = b"19000101"
_TIME = b"000000.000000"
_DATETIME = b"19000101000000.000000"
_BINARY = frozenset(
    {"OB", "OD", "OF", "OL", "OV", "OW", "UN", "US", "SS", "UL", "SL", "FL", "FD", "AT"}
    | {"SV", "UV"}
)


def _fill(pattern: bytes, n: int, pad: bytes = b" ") -> bytes:
    """``pattern`` cut or padded to ``n`` bytes."""
    return pattern[:n].ljust(n, pad)


def replacement(vr: str, value: bytes, uids: UidMap) -> bytes:
    """A value of VR ``vr`` as long as ``value``, holding nothing of it."""
    n = len(value)
    if not n:
        return b""
    if vr in _BINARY or vr == "SQ":
        return bytes(n)
    if vr == "UI":
        return _uids(value, uids)
    if vr == "DA":
        return _fill(_DATE, n) if n >= 8 else b" " * n
    if vr == "TM":
        out = _fill(_TIME, n)
        return out[:-1] + b" " if out.endswith(b".") else out
    if vr == "DT":
        out = _fill(_DATETIME, n)
        return out[:-1] + b" " if out.endswith(b".") else out
    if vr == "AS":
        return b"000Y" if n == 4 else b" " * n
    if vr in ("DS", "IS"):
        return _fill(b"0", n)
    if vr == "AE":
        return _fill(b"ANONYMOUS", n)
    if vr == "UR":
        return _fill(b"urn:x", n) if n >= 5 else b" " * n
    # PN, CS, LO, SH, LT, ST, UT, UC and anything unexpected: a fixed word.
    word = (_TEXT + b" ") * (n // (len(_TEXT) + 1) + 1)
    return word[:n]


def _uids(value: bytes, uids: UidMap) -> bytes:
    text = value.rstrip(b"\0 ")
    pad = value[len(text) :]
    try:
        parts = text.decode("ascii").split("\\")
    except UnicodeDecodeError:
        return bytes(len(value))
    out = "\\".join(uids.replace(p) if _looks_like_uid(p) else "0" * len(p) for p in parts)
    data = out.encode("ascii")
    if len(data) != len(text):  # cannot happen: each replacement keeps its length
        return bytes(len(value))
    return data + pad


def _looks_like_uid(text: str) -> bool:
    return bool(text) and all(c.isdigit() or c == "." for c in text)
