"""What a crash is, for ``bench/fuzz.py``: an exception reduced to its identity.

Two crashes are the same defect when they have the same exception type and top frame (the
innermost frame in dicomtap's code; for a runaway recursion, the function that recurs; for a
broken invariant, the check that failed). :data:`KNOWN` lists crashes already tracked
elsewhere, reported as known rather than new.
"""

from __future__ import annotations

import traceback
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from fuzz_targets import TARGETS, InvariantBroken

_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class Crash:
    """An unexpected exception, reduced to what tells one defect from another."""

    kind: str
    """The exception's type name."""
    where: str
    """The innermost frame in dicomtap's code (``path:function:line``), else the innermost."""
    message: str
    traceback: str
    known: str | None
    """Why this crash is already known (and who fixes it), or None for a new one."""

    @property
    def key(self) -> str:
        """Type and top frame: the identity of a defect for deduplication."""
        return f"{self.kind}@{self.where}"

    @property
    def slug(self) -> str:
        """The key, safe as a file name."""
        return "".join(c if c.isalnum() or c in "-_." else "_" for c in self.key)[:120]


@dataclass(frozen=True, slots=True)
class Known:
    """A crash already known: its exception type, and a function in its stack (``file``,
    ``function``) or the start of its message; ``note`` says where it is tracked."""

    kind: str
    note: str
    file: str = ""
    function: str = ""
    message: str = ""

    def matches(self, kind: str, frames: list[traceback.FrameSummary], message: str) -> bool:
        if kind != self.kind:
            return False
        if self.function and not any(
            relative(f.filename) == self.file and f.name == self.function for f in frames
        ):
            return False
        return message.startswith(self.message)


KNOWN: tuple[Known, ...] = ()
"""Crashes already tracked elsewhere: reported as known, not as new."""


def _frames(tb: TracebackType | None) -> list[traceback.FrameSummary]:
    return list(traceback.extract_tb(tb))


def relative(filename: str) -> str:
    """A path relative to the repository, or a bare file name outside it."""
    try:
        return Path(filename).resolve().relative_to(_ROOT).as_posix()
    except ValueError:
        return Path(filename).name


def classify(exc: BaseException) -> Crash:
    """Reduce ``exc`` to a :class:`Crash` (its type and the frame it came from)."""
    frames = _frames(exc.__traceback__)
    ours = [f for f in frames if f.filename.startswith(str(_ROOT)) and "/bench/" not in f.filename]
    kind = type(exc).__name__
    if isinstance(exc, InvariantBroken):
        # Raised by the harness: the target and the name of the check tell it apart.
        kind = f"{kind}[{exc.name}]"
        site = [f for f in frames if f.name != "check"]
        where = f"{relative(site[-1].filename)}:{site[-1].name}" if site else "?"
    else:
        candidates = ours or frames
        top = candidates[-1] if candidates else None
        where = f"{relative(top.filename)}:{top.name}:{top.lineno}" if top is not None else "?"
    message = str(exc).splitlines()[0][:300] if str(exc) else ""
    known = next((k for k in KNOWN if k.matches(kind, frames, message)), None)
    if known is not None and known.function:
        where = f"{known.file}:{known.function}"  # a recursion's innermost frame varies
    if kind == "RecursionError" and known is None and ours:
        # The innermost frame of a runaway recursion is wherever the limit struck: name the
        # function that recurs most instead.
        counts = Counter((relative(f.filename), f.name) for f in ours)
        (file, func), _ = counts.most_common(1)[0]
        where = f"{file}:{func}"
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-12))
    return Crash(kind, where, message, text, known.note if known else None)


def outcome(target: str, data: bytes) -> str | None:
    """Run one input on ``target`` in this process: its crash key, or None if it passes."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            TARGETS[target].run(data)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        return classify(exc).key
    return None
