"""Running a scaled analysis on Dask (``distributed``): a local cluster, or a scheduler's.

:func:`dask_client` starts a local cluster (one single-threaded worker process per core)
or connects to a running scheduler; :class:`DaskExecutor` submits one task per file to look
at it and one per capture point to analyse it. The largest capture points start first, so
that the longest task does not start last; results are fetched in output order, each
released from its worker once merged. Workers must be able to import dicomtap (the same
version) and to read the capture files under the names the driver gives (the same paths:
a shared file system).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from analyzer.errors import DicomtapError

from .groups import Group
from .task import GroupResult, Probed, Settings, analyze_group, probe_file

if TYPE_CHECKING:
    from distributed import Client

CONNECT_TIMEOUT = "20s"
"""How long to try reaching a scheduler given by address."""


class ClusterError(DicomtapError):
    """Dask is missing, or the scheduler cannot be reached."""


LOCAL_SETTINGS = {
    # Dask's own log lines (workers starting and stopping, the heartbeats a worker misses
    # while a busy machine stops the cluster) stay off the user's terminal: what matters
    # reaches dicomtap as a failed task, and is said once, as an error record.
    "DASK_LOGGING__DISTRIBUTED": "critical",
    # The statistical profiler samples each worker's stack every 10 ms for a dashboard
    # dicomtap does not show; it cost the analysis a third more CPU time.
    "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
}
"""Dask settings for the driver and a local cluster, as environment variables: worker
processes read them when they import Dask. A variable already set is left as it is
(``DASK_LOGGING__DISTRIBUTED=info`` shows the log again)."""


def _configure() -> None:
    for name, value in LOCAL_SETTINGS.items():
        os.environ.setdefault(name, value)
    import dask

    settings = {name: os.environ[name] for name in LOCAL_SETTINGS}
    dask.config.update(dask.config.config, dask.config.collect_env(settings))
    logging.getLogger("distributed").setLevel(settings["DASK_LOGGING__DISTRIBUTED"].upper())


@contextmanager
def dask_client(scheduler: str | None, workers: int | None = None) -> Iterator[Client]:
    """A Dask client: on a new local cluster of ``workers`` processes (default: one per
    core) when ``scheduler`` is None, else on the scheduler at that address
    (``tcp://host:8786``). The local cluster is stopped on the way out."""
    try:
        _configure()
        from distributed import Client, LocalCluster
    except ImportError:
        raise ClusterError(
            "--dask needs Dask: install dicomtap with its scale extra "
            "(pip install 'dicomtap[scale]')"
        ) from None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=workers or os.cpu_count() or 1,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
        with cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(scheduler, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    with client:
        yield client


class DaskExecutor:
    """Runs the tasks of a scaled analysis on a Dask cluster."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def probe(self, paths: Sequence[str]) -> list[Probed]:
        futures = self.client.map(probe_file, list(paths), pure=False)
        try:
            probed: list[Probed] = self.client.gather(futures)
        finally:
            self.client.cancel(futures)
        return probed

    def analyze(self, groups: Sequence[Group], settings: Settings) -> Iterator[GroupResult]:
        biggest_first = sorted(range(len(groups)), key=lambda i: -groups[i].size)
        run = uuid.uuid4().hex[:12]  # runs sharing a scheduler must not share task keys
        # One batch, so that the scheduler sees the tasks as a group of its own and hands
        # them to workers as threads fall free (biggest first: keys order them) instead of
        # queueing them all on workers at once.
        submitted = self.client.map(
            analyze_group,
            [groups[i].files for i in biggest_first],
            settings=settings,
            key=[f"dicomtap-group-{run}-{rank:06}" for rank in range(len(groups))],
        )
        futures: dict[int, Any] = dict(zip(biggest_first, submitted, strict=True))
        # Submitted now, not when the caller first asks for a result: the work starts while
        # the caller writes its header.
        return self._results(groups, futures)

    def _results(self, groups: Sequence[Group], futures: dict[int, Any]) -> Iterator[GroupResult]:
        try:
            for i, g in enumerate(groups):
                future = futures.pop(i)
                try:
                    result: GroupResult = future.result()
                except Exception as exc:  # the worker died (memory, killed), or lost the task
                    result = GroupResult(
                        g.files, error=f"{', '.join(g.files)}: the Dask task failed: {exc}"
                    )
                finally:
                    future.release()
                yield result
        finally:
            if futures:  # stopped early (the output went away): nothing more to run
                self.client.cancel(list(futures.values()))
