"""Running a scaled analysis on Dask (``distributed``): a local cluster, or a scheduler's.

:func:`dask_client` starts a local cluster (one single-threaded worker process per core)
or connects to a running scheduler; :class:`DaskExecutor` submits one task per file to look
at it and one per capture point to analyse it. The largest capture points are submitted
first (the scheduler starts tasks in the order they come), so that the longest task does
not start last; results are fetched in output order, each released from its worker once
merged. Workers must be able to import dicomtap (the same version) and to read the capture
files under the names the driver gives (the same paths: a shared file system).
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


def _quiet() -> None:
    """Keep Dask's own log lines off the user's terminal: workers starting and stopping, and
    the heartbeats a worker misses while a busy machine stops the cluster. What matters
    reaches dicomtap as a failed task, and is said once, as an error record. The worker
    processes of a local cluster read it from the environment, when they import Dask;
    ``DASK_LOGGING__DISTRIBUTED=info`` shows the log again."""
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "critical")
    import dask

    level = os.environ["DASK_LOGGING__DISTRIBUTED"]
    dask.config.set({"logging.distributed": level})
    logging.getLogger("distributed").setLevel(level.upper())


@contextmanager
def dask_client(scheduler: str | None, workers: int | None = None) -> Iterator[Client]:
    """A Dask client: on a new local cluster of ``workers`` processes (default: one per
    core) when ``scheduler`` is None, else on the scheduler at that address
    (``tcp://host:8786``). The local cluster is stopped on the way out."""
    try:
        _quiet()
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
        futures: dict[int, Any] = {}
        for i in biggest_first:
            futures[i] = self.client.submit(
                analyze_group, groups[i].files, settings, key=f"dicomtap-group-{run}-{i}"
            )
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
