"""Replacement UIDs: the same length as the original, still valid UIDs, the same
replacement for the same UID everywhere in a capture, and unrelated to the original.

A replacement of 6 characters or more is a ``2.25`` UID (PS3.5 Annex B.2) whose digits come
from an HMAC of the original under a key drawn for the run; a shorter one keeps the
original's pattern of dots with digits drawn the same way. UIDs the standard defines (SOP
classes, transfer syntaxes, coding schemes: everything under ``1.2.840.10008``) are kept.

Drawn digits may spell, by chance, another value the caller is hiding (a 6-digit time is
inside one 60-digit replacement in about 20 000): :meth:`UidMap.redraw` draws again, once
the caller knows every such value.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Iterable

from pydicom.uid import RE_VALID_UID

_STANDARD_ROOT = "1.2.840.10008."
AVOIDED_MIN = 4
"""Shorter values are not looked for in the output either (they are everywhere by chance)."""
MAX_AVOIDED = 4096
"""Bound on the values :meth:`UidMap.avoid` keeps (each new UID is checked against all)."""


def is_standard(uid: str) -> bool:
    """Whether ``uid`` is one the DICOM standard defines (kept as it is)."""
    return uid.startswith(_STANDARD_ROOT)


class UidMap:
    """Same-length replacements for instance UIDs (see the module's docstring)."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key is not None else secrets.token_bytes(32)
        self._out: dict[str, str] = {}
        self._taken: set[str] = set()
        self._avoided: set[str] = set()

    def __len__(self) -> int:
        return len(self._out)

    def pairs(self) -> dict[str, str]:
        """Every UID replaced so far, with its replacement."""
        return dict(self._out)

    def replace(self, uid: str) -> str:
        """The replacement of ``uid`` (itself for a standard UID, or for text that is not a
        UID: what cannot be parsed is not a UID to keep consistent, the caller blanks it)."""
        if is_standard(uid) or not uid:
            return uid
        found = self._out.get(uid)
        if found is not None:
            return found
        candidate = self._draw(uid, self._spells_avoided)
        self._out[uid] = candidate
        self._taken.add(candidate)
        return candidate

    def avoid(self, values: Iterable[bytes]) -> None:
        """Hidden values (of :data:`AVOIDED_MIN` characters or more) that replacements drawn
        from now on must not spell: a caller that writes as it goes (``export``) names
        those of each data set before replacing its UIDs; one that knows every value first
        (``anonymize``) uses :meth:`redraw`."""
        for value in values:
            if len(self._avoided) >= MAX_AVOIDED:
                return
            text = value.strip(b" \x00").decode("ascii", "replace")
            if len(text) >= AVOIDED_MIN:
                self._avoided.add(text)

    def _spells_avoided(self, candidate: str) -> bool:
        return any(v in candidate for v in self._avoided)

    def redraw(self, uid: str, refuse: Callable[[str], bool]) -> str:
        """Draw the replacement of ``uid`` (one already replaced) again: one that ``refuse``
        accepts, and that no other UID has (the old one when none can be found)."""
        old = self._out[uid]
        candidate = self._draw(uid, refuse)
        if refuse(candidate):
            return old
        self._taken.discard(old)
        self._out[uid] = candidate
        self._taken.add(candidate)
        return candidate

    def _draw(self, uid: str, refuse: Callable[[str], bool]) -> str:
        for attempt in range(1000):
            candidate = self._derive(uid, attempt)
            if candidate != uid and candidate not in self._taken and not refuse(candidate):
                break
        return candidate

    def _digits(self, uid: str, attempt: int, count: int) -> str:
        out = ""
        block = 0
        while len(out) < count:
            msg = f"{attempt}:{block}:{uid}".encode("ascii", "replace")
            digest = hmac.new(self._key, msg, hashlib.sha256).digest()
            out += str(int.from_bytes(digest, "big")).zfill(77)[1:]  # 76 uniform-ish digits
            block += 1
        return out[:count]

    def _derive(self, uid: str, attempt: int) -> str:
        n = len(uid)
        if n >= 6:
            digits = self._digits(uid, attempt, n - 5)
            if len(digits) > 1 and digits[0] == "0":
                digits = "1" + digits[1:]
            return "2.25." + digits
        # Short: the same components' lengths, digits drawn; no leading zero.
        parts = uid.split(".") if re.fullmatch(RE_VALID_UID, uid) else [uid.replace(".", "")]
        digits = self._digits(uid, attempt, n)
        out, i = [], 0
        for part in parts:
            size = max(1, len(part))
            piece = digits[i : i + size]
            i += size
            if size > 1 and piece[0] == "0":
                piece = "9" + piece[1:]
            out.append(piece)
        return ".".join(out)[:n]
