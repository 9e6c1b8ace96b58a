"""The driver: files → capture points → analyses (run by an executor) → merged records.

:func:`plan` looks at every file (through the executor, so that on a cluster the workers
read them) and groups them into capture points (:mod:`.groups`); :func:`records` has each
capture point analysed and yields the output's records as soon as the capture points before
them are done, merged (:mod:`.merge`) into exactly what one process gives analysing them one
after the other. Only one capture point's results are in the driver's memory at a time.

An executor runs :func:`.task.probe_file` and :func:`.task.analyze_group`:
:class:`InProcess` here, one after the other; :class:`analyzer.scale.cluster.DaskExecutor`
on a Dask cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from .groups import Group, group
from .merge import Merge
from .task import GroupResult, Probed, Record, Settings, analyze_group, probe_file

Progress = Callable[[int, int], None]
"""Called with (bytes of the capture points done, bytes of all)."""


class Executor(Protocol):
    """Runs the tasks of a scaled analysis."""

    def probe(self, paths: Sequence[str]) -> list[Probed]:
        """:func:`.task.probe_file` of each path, in order."""
        ...

    def analyze(self, groups: Sequence[Group], settings: Settings) -> Iterator[GroupResult]:
        """:func:`.task.analyze_group` of each group, yielded in the order of ``groups``."""
        ...


class InProcess:
    """Runs every task in this process, one after the other."""

    def probe(self, paths: Sequence[str]) -> list[Probed]:
        return [probe_file(p) for p in paths]

    def analyze(self, groups: Sequence[Group], settings: Settings) -> Iterator[GroupResult]:
        for g in groups:
            yield analyze_group(g.files, settings)


@dataclass(frozen=True, slots=True)
class Plan:
    """The capture points to analyse, the files that could not be read at all, and the
    files of folders that are no captures (passed over)."""

    groups: tuple[Group, ...]
    unreadable: tuple[Probed, ...]
    passed_over: tuple[str, ...] = ()


def plan(
    paths: Sequence[str], executor: Executor, in_folders: Collection[str] = frozenset()
) -> Plan:
    """Look at every file and group them into capture points. A file of ``in_folders``
    that is no capture at all is passed over; any other file that cannot be read is an
    error."""
    probed = executor.probe(paths)
    infos = [p.info for p in probed if p.info is not None]
    failed = [p for p in probed if p.info is None]
    over = [p for p in failed if p.not_a_capture and p.path in in_folders]
    return Plan(
        tuple(group(infos)),
        tuple(p for p in failed if p not in over),
        tuple(p.path for p in over),
    )


def records(
    work: Plan, settings: Settings, executor: Executor, progress: Progress | None = None
) -> Iterator[Record]:
    """The merged records: a header, an ``error`` record per file that could not be read,
    each capture point's records (or an ``error`` record), a summary."""
    merge = Merge(settings.generator, [f for g in work.groups for f in g.files])
    results = executor.analyze(work.groups, settings)  # a cluster starts on them at once
    yield merge.header()
    for failed in work.unreadable:
        yield merge.error((failed.path,), failed.error or "cannot be read")
    total = sum(g.size for g in work.groups)
    done = 0
    for g, result in zip(work.groups, results, strict=True):
        yield from merge.add(result)
        done += g.size
        if progress is not None:
            progress(done, total)
    yield merge.summary()
