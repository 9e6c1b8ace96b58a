"""The recording process: every message from the relay's process applied, in order, to a
:class:`~.records.LocalRecording` that records at once (see ``RECORDING.md``).

Run as ``python -c '...recchild import main ...' FD`` (:data:`.recproc.CHILD`): it reads
the configuration, opens the outputs (answering ``K`` on ``FD``, or ``E`` and the error),
then records, and answers boundary questions on ``FD``. It ends at end of file on its
stdin, which the kernel gives it however the proxy ends (no orphan): it then finishes the
observation, writes the summary and closes its files. It ignores SIGINT and SIGTERM, which a
terminal or a service manager send to the whole group: it must finish after the proxy's
last message.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from dataclasses import replace
from typing import Any

from analyzer import redact
from analyzer.filter import Filter
from analyzer.sources import heap
from analyzer.store import Retention, Store

from .config import ConfigError
from .records import LocalRecord, LocalRecording, failure, open_recording
from .recwire import (
    RELAYED_MMAP_THRESHOLD,
    RELAYED_TRIM_THRESHOLD,
    SAME,
    Op,
    Reader,
    batches,
    write_all,
)

__all__ = ["NICENESS", "main"]

#: How much less this process's claim on a core weighs than the relay's (``nice``).
NICENESS = 10


class _Child:
    """The recording process: messages applied in order to a local recording."""

    def __init__(self, rec: LocalRecording, answers: int) -> None:
        self.rec = rec
        self.answers = answers
        self.records: dict[int, LocalRecord] = {}

    def apply(self, message: tuple[Any, ...]) -> None:
        op, connection, *args = message
        rec = self.rec
        if op == Op.OPEN:
            self.records[connection] = rec.connection(connection, *args)
        elif op == Op.EVENT:
            rec.event(connection, *args)
        elif op == Op.LINE:
            rec.line(*args)
        elif op == Op.BOUNDARY:
            to_client, seq = args
            record = self.records.get(connection)
            at = record is not None and record.at_boundary(to_client)
            write_all(self.answers, seq.to_bytes(4, "big") + (b"\x01" if at else b"\x00"))
        else:
            record = self.records.get(connection)
            if record is None:
                return
            kind = Op(op)
            if kind == Op.FORWARDED and args[3] is SAME:
                args[3] = args[2]
            getattr(record, kind.name.lower())(*args)
            if kind == Op.ENDED:
                del self.records[connection]


def main() -> int:
    """The recording process (see the module docstring); its exit status."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Relaying comes first: woken by the relay's every write, this process must not take the
    # core the relay's next read wants. Behind by BACKLOG_LIMIT, the relay waits for it.
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    answers = int(sys.argv[1])
    reader = Reader(0)
    hello = reader.batch()
    if hello is None:
        return 1
    config, source, quiet_out, generator, phi_redacted = hello
    redact.redact_phi(phi_redacted)
    if source is not None:
        config = replace(config, output=replace(config.output, log_filter=Filter.parse(source)))
    # Every relayed chunk (up to 256 KiB) is read into a buffer of its own: taken from the
    # heap, not mmapped and faulted in afresh each time (3x the CPU per byte). Set before
    # the writer threads start.
    heap.steady(RELAYED_MMAP_THRESHOLD, RELAYED_TRIM_THRESHOLD)
    try:
        rec = open_recording(
            config,
            Store(retention=Retention()),
            None,
            out=None if quiet_out else sys.stdout,
            generator=generator,
        )
    except ConfigError as exc:
        write_all(answers, b"E" + str(exc).encode())
        return 1
    write_all(answers, b"K")
    child = _Child(rec, answers)
    jobs = rec.regular_jobs()
    due = [time.monotonic() + every for every, _ in jobs]

    def tick(now: float) -> None:
        """The recording's regular jobs, when due (there is no event loop here)."""
        for i, (every, job) in enumerate(jobs):
            if now >= due[i]:
                job()
                due[i] = now + every

    for batch in batches(reader, tick, min(every for every, _ in jobs)):
        for message in batch:
            try:
                child.apply(message)
            except Exception as exc:  # one bad record must not stop the others
                rec.log.line(failure(exc))
    rec.finish_now()
    return 0


if __name__ == "__main__":
    sys.exit(main())
