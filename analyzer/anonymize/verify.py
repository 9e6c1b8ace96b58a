"""The anonymizer checks its own output: the same records as the original (the replaced
values aside), and no PHI value of the original left anywhere in the file."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, BinaryIO

import ahocorasick_rs

#: Free-text fields of the records, where a replaced value may be quoted.
_TEXT_FIELDS = frozenset(
    {"text", "title", "explanation", "hint", "detail", "error_comment", "reason"}
)
#: Fields that name the input itself (file names, warnings about them).
_SKIP = {"header": None, "summary": frozenset({"truncated", "warnings"})}
#: Bytes read at a time when searching the output; a value is at most this long to be found
#: across two reads.
_CHUNK = 16 << 20
_OVERLAP = 1 << 16


class Translation:
    """Original text → replacement text, for comparing the two analyses."""

    def __init__(self, pairs: Mapping[str, str]) -> None:
        self.pairs = {k: v for k, v in pairs.items() if k and k != v}
        keys = sorted((k for k in self.pairs if len(k) >= 4), key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, keys))) if keys else None

    def value(self, field: str, value: Any) -> Any:
        if isinstance(value, str):
            found = self.pairs.get(value)
            if found is not None:
                return found
            if field in _TEXT_FIELDS and self._pattern is not None:
                return self._pattern.sub(lambda m: self.pairs[m.group(0)], value)
            return value
        if isinstance(value, dict):
            return {k: self.value(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(field, v) for v in value]
        return value


def differences(
    original: Iterable[dict[str, Any]],
    anonymized: Iterable[dict[str, Any]],
    translation: Translation,
    limit: int = 50,
) -> list[str]:
    """How the records of the anonymized capture differ from the original's, once the
    original's replaced values are translated (at most ``limit`` lines)."""
    out: list[str] = []
    a = [r for r in original if r.get("type") != "header"]
    b = [r for r in anonymized if r.get("type") != "header"]
    if len(a) != len(b):
        out.append(f"{len(a)} records in the original's analysis, {len(b)} in the output's")
    for n, (x, y) in enumerate(zip(a, b, strict=False), 1):
        skip = _SKIP.get(str(x.get("type")), frozenset()) or frozenset()
        expected = {k: translation.value(k, v) for k, v in x.items() if k not in skip}
        got = {k: v for k, v in y.items() if k not in skip}
        if expected != got:
            for field in sorted(set(expected) | set(got)):
                if expected.get(field) != got.get(field):
                    out.append(
                        f"record {n} ({x.get('type')}): {field}: expected "
                        f"{_short(expected.get(field))}, found {_short(got.get(field))}"
                    )
        if len(out) >= limit:
            break
    return out[:limit]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:119] + "…"


def leftovers(out: BinaryIO, originals: Iterable[bytes]) -> list[bytes]:
    """The ``originals`` found in the file ``out`` (read from its start, in chunks)."""
    needles = sorted({o for o in originals if o})
    if not needles:
        return []
    matcher = ahocorasick_rs.BytesAhoCorasick(needles)
    found: set[int] = set()
    for chunk in _chunks(out):
        found.update(i for i, _, _ in matcher.find_matches_as_indexes(chunk, overlapping=True))
    return [needles[i] for i in sorted(found)]


def _chunks(f: BinaryIO) -> Iterator[bytes]:
    tail = b""
    while True:
        data = f.read(_CHUNK)
        if not data:
            return
        yield tail + data
        tail = data[-_OVERLAP:]
