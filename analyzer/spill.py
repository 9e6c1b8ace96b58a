"""Spilling: the records a finished capture's store no longer needs in memory, on disk.

A store that must keep everything until the reports are written (``dicomtap analyze``,
``dicomtap diagnose``) moves ended associations, with every record about them, and the
exchanges of long associations, into a :class:`SpillFile` once its records pass a memory
budget (:class:`Spill`), and reads them back one association at a time when the reports
ask for them. The file is an anonymous temporary file: it never has a name, so nothing is
left behind whatever way the process ends (an error, Ctrl-C, a kill), and no other user can
open it.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import tempfile
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import IntEnum
from itertools import repeat
from operator import attrgetter
from typing import Any

from .errors import DicomtapError
from .model import Exchange, Finding, Gap, Link, Note, ViolationRecord

__all__ = [
    "ASSOCIATION_WEIGHT",
    "BUDGET_VARIABLE",
    "DEFAULT_BUDGET",
    "Column",
    "IdTable",
    "Ref",
    "Spill",
    "SpillError",
    "SpillFile",
    "Spilled",
    "exchange_weight",
    "finding_weight",
    "record_weight",
]

DEFAULT_BUDGET = 16 << 20
"""Bytes of records (estimated) a spilling store keeps in memory."""
BUDGET_VARIABLE = "DICOMTAP_SPILL_BUDGET"
"""An environment variable that overrides :data:`DEFAULT_BUDGET` (bytes; 0 spills every
ended association at once)."""

ASSOCIATION_WEIGHT = 3000
"""Estimated bytes an association record holds (its contexts, user information, TCP
health), and the weight of its entry in the store's tables."""
_EXCHANGE_WEIGHT = 2000
_FINDING_WEIGHT = 1000
_RECORD_WEIGHT = 400


def exchange_weight(e: Exchange) -> int:
    """Estimated bytes an exchange holds in memory: its records and the data set starts kept."""
    weight = _EXCHANGE_WEIGHT
    for m in (e.request, e.final):
        if m is not None and m.dataset is not None:
            weight += len(m.dataset.kept)
    return weight


def finding_weight(f: Finding) -> int:
    return _FINDING_WEIGHT + len(f.explanation)


def record_weight(_: ViolationRecord | Gap | Note | Link) -> int:
    return _RECORD_WEIGHT


@dataclass(frozen=True, slots=True)
class Spill:
    """How a store spills (see the module doc)."""

    budget: int = DEFAULT_BUDGET
    """Estimated bytes of records kept in memory before ended associations are spilled."""
    directory: str | None = None
    """Where the spill file is made (None: the system's temporary directory, ``TMPDIR``)."""

    @classmethod
    def from_environment(cls) -> Spill:
        """The default, with the budget from :data:`BUDGET_VARIABLE` if set."""
        value = os.environ.get(BUDGET_VARIABLE, "").strip()
        return cls(budget=max(0, int(value))) if value.isdigit() else cls()


class SpillError(DicomtapError):
    """The spill file cannot be made or written (no room in the temporary directory)."""


Ref = tuple[int, int]
"""(offset, length) of a batch in a :class:`SpillFile`."""


class SpillFile:
    """An append-only anonymous file of pickled batches of records.

    Only this process writes and reads it (what it reads back is what it wrote), so
    pickle round-trips the frozen model records exactly and cheaply."""

    def __init__(self, directory: str | None = None) -> None:
        # O_TMPFILE where the file system has it: the file has no name from the start.
        try:
            self._file = tempfile.TemporaryFile(prefix="dicomtap-spill-", dir=directory)  # noqa: SIM115
        except OSError as exc:
            raise SpillError(_failed("make", directory, exc)) from None
        self._directory = directory
        self._fd = self._file.fileno()
        self._end = 0

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._end

    def append(self, batch: Any) -> Ref:
        """Write ``batch`` (any picklable value) at the end; its reference."""
        buffer = io.BytesIO()
        _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(batch)
        data = buffer.getbuffer()
        view = memoryview(data)
        offset = self._end
        try:
            while view:
                written = os.pwrite(self._fd, view, offset + len(data) - len(view))
                view = view[written:]
        except OSError as exc:
            raise SpillError(_failed("write", self._directory, exc)) from None
        self._end += len(data)
        return offset, len(data)

    def read(self, ref: Ref) -> Any:
        """The batch written at ``ref``."""
        offset, length = ref
        parts: list[bytes] = []
        done = 0
        while done < length:
            part = os.pread(self._fd, length - done, offset + done)
            if not part:
                raise OSError(f"spill file cut at {offset + done} of {offset + length}")
            parts.append(part)
            done += len(part)
        return pickle.loads(b"".join(parts))

    def close(self) -> None:
        self._file.close()


def _failed(what: str, directory: str | None, exc: OSError) -> str:
    where = directory or tempfile.gettempdir()
    return (
        f"cannot {what} the temporary file of records kept out of memory in {where}: "
        f"{exc.strerror or exc}; set TMPDIR to a folder with room (or {BUDGET_VARIABLE} "
        "to a larger budget in bytes)"
    )


_FIELDS: dict[type, tuple[str, ...]] = {}
_set = object.__setattr__


def _names(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _rebuild(cls: type, values: tuple[Any, ...]) -> Any:
    """A dataclass instance from its field values, as pickle would rebuild it (without
    calling ``__init__``), but with the field names looked up once per class: the model's
    records are frozen slotted dataclasses, which pickle otherwise restores through
    :func:`dataclasses.fields` for every record."""
    record: Any = object.__new__(cls)
    deque(map(_set, repeat(record), _names(cls), values), 0)  # the loop in C
    return record


class _Reducers(dict[type, Callable[[Any], Any]]):
    """A pickler's dispatch table that makes, on first sight of a dataclass, its reducer:
    the field values read in one C call (:func:`operator.attrgetter`), rebuilt by
    :func:`_rebuild`. Other types are pickled as usual."""

    def __init__(self) -> None:
        super().__init__()
        self._plain: set[type] = set()

    def __missing__(self, cls: type) -> Callable[[Any], Any]:
        if cls in self._plain or not dataclasses.is_dataclass(cls):
            self._plain.add(cls)
            raise KeyError(cls)
        names = _names(cls)
        get = attrgetter(*names) if len(names) != 1 else (lambda obj: (getattr(obj, names[0]),))

        def reduce(obj: Any) -> tuple[Callable[[type, tuple[Any, ...]], Any], tuple[Any, ...]]:
            return _rebuild, (cls, get(obj))

        self[cls] = reduce
        return reduce


_REDUCERS = _Reducers()


class _Pickler(pickle.Pickler):
    dispatch_table = _REDUCERS


class IdTable:
    """Columns of int64 by association id (ids are small and dense: 8 bytes a column per
    id); ids far beyond the ones seen go to a dict. A missing value reads as None."""

    _SLACK = 4096

    def __init__(self, columns: int) -> None:
        self._columns = [array("q") for _ in range(columns)]
        self._present = bytearray()
        self._sparse: dict[int, tuple[int, ...]] = {}

    def __contains__(self, key: int) -> bool:
        if 0 <= key < len(self._present):
            return bool(self._present[key])
        return key in self._sparse

    def __len__(self) -> int:
        return sum(self._present) + len(self._sparse)

    def set(self, key: int, values: tuple[int, ...]) -> None:
        present = self._present
        if 0 <= key < len(present) + max(self._SLACK, len(present)):
            if key >= len(present):
                grow = key + 1 - len(present)
                present.extend(bytes(grow))
                for column in self._columns:
                    column.extend(array("q", bytes(8 * grow)))
            present[key] = 1
            for column, value in zip(self._columns, values, strict=True):
                column[key] = value
        else:
            self._sparse[key] = values

    def get(self, key: int) -> tuple[int, ...] | None:
        if 0 <= key < len(self._present):
            if not self._present[key]:
                return None
            return tuple(column[key] for column in self._columns)
        return self._sparse.get(key)

    def value(self, key: int, column: int) -> int:
        """One column of a key known to be present."""
        if 0 <= key < len(self._present):
            return self._columns[column][key]
        return self._sparse[key][column]

    def keys(self) -> Iterator[int]:
        for key, present in enumerate(self._present):
            if present:
                yield key
        yield from self._sparse


class Column(IntEnum):
    """The columns of a spilling store's index (an :class:`IdTable`) of spilled associations."""

    BLOCK_OFFSET = 0
    """Where the batch of associations spilled together begins in the spill file."""
    BLOCK_LENGTH = 1
    SLOT = 2
    """The association's place in its batch."""
    START = 3
    EXCHANGES = 4
    OUTCOME = 5
    """Index in the members of :class:`~analyzer.model.Outcome`, -1 for None."""


@dataclass(slots=True)
class Spilled:
    """The records spilled with an association, besides the association itself."""

    exchanges: list[Exchange]
    findings: list[Finding]
    violations: list[ViolationRecord]
    gaps: list[Gap]
    notes: list[Note]
    links: list[Link]

    def batch(self) -> tuple[list[Any], ...]:
        return (self.exchanges, self.findings, self.violations, self.gaps, self.notes, self.links)

    def weight(self) -> int:
        # Most associations spilled have few records, often none of a kind: no loop then.
        weight = _RECORD_WEIGHT * (
            len(self.violations) + len(self.gaps) + len(self.notes) + len(self.links)
        )
        if self.exchanges:
            weight += sum(map(exchange_weight, self.exchanges))
        if self.findings:
            weight += sum(map(finding_weight, self.findings))
        return weight
