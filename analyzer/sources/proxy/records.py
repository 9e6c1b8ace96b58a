"""What the relay tells recording, one connection at a time, and the in-process recording.

The session and the relay never touch a tap, a leg, the flow table or the log themselves:
they tell a :class:`Record` what happened on their connection (bytes forwarded, a PDU the
proxy wrote, a close), with the time it happened, and a :class:`Recording` what happened to
the run (a log line). :class:`LocalRecording` records in this process, after relaying (each
call becomes a :class:`~.recorder.Recorder` job); :mod:`.recproc` records in a process of its
own, applying the same calls to a :class:`LocalRecording` there (see ``RECORDING.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import IO, Protocol

from analyzer.builder import ModelBuilder
from analyzer.findings import Diagnosis
from analyzer.sources import heap
from analyzer.sources.clientwire import ClientWire
from analyzer.store import Store
from dissectors import CloseKind, ConnectionWithoutDicom, DissectorEvent

from .config import ConfigError, ProxyConfig
from .log import JsonlSink, LiveLog, RotatingFile
from .pcapng import INJECTED, Interface, PcapngWriter, TcpLeg
from .recorder import Recorder
from .tap import ClientTap
from .writer import BackgroundWriter

__all__ = [
    "Endpoint",
    "LocalRecord",
    "LocalRecording",
    "Record",
    "Recording",
    "complain",
    "failure",
    "open_recording",
]

#: Seconds between flushes of the pcapng file.
FLUSH_EVERY = 1.0
_TERMINAL_WAIT = 5.0  # seconds the last lines may take to reach the terminal at exit
_TERMINAL_QUEUE = 1 << 20  # bytes of lines waiting for the terminal before more are dropped

Endpoint = tuple[str, int]
"""An (ip, port) pair."""


class Record(Protocol):
    """Recording of one relayed connection. ``ts``: wall-clock nanoseconds of the event."""

    def forwarded(self, to_client: bool, ts: int, sent: bytes, received: bytes | None) -> None:
        """``sent`` was written to one side; the source leg got ``received`` (None when
        already recorded; they differ only where a rewrite applied)."""

    def client_data(self, ts: int, data: bytes) -> None:
        """The client sent ``data`` before relaying started (or after the proxy closed)."""

    def injected(self, to_client: bool, ts: int, pdu: bytes) -> None:
        """The proxy itself wrote ``pdu`` to a side."""

    def closed(self, from_client: bool, kind: CloseKind, ts: int) -> None:
        """The client (or the upstream, passed on) closed its side of the client leg."""

    def upstream_fin(self, from_proxy: bool, ts: int) -> None:
        """A FIN on the upstream leg: passed on by the proxy, or sent by the upstream."""

    def proxy_closed(self, to_client: bool, kind: CloseKind, ts: int) -> None:
        """The proxy itself closed (FIN) or reset its socket to a side."""

    def reset_both(self, by_client: bool | None, ts: int) -> None:
        """A reset on one side, passed on to the other."""

    def discarded(self, size: int) -> None:
        """``size`` bytes the client sent were read and dropped unrecorded."""

    def acknowledged(self, ts: int) -> None:
        """The proxy acknowledges what the client sent (after bytes left out)."""

    def upstream_opened(self, local: Endpoint, remote: Endpoint, ts: int, where: str) -> None:
        """The upstream connection is up (``where``: as the log names it)."""

    def ended(self, ts: int) -> None:
        """The connection is over however it ended: what is still open is reset."""

    def at_boundary(self, to_client: bool) -> bool:
        """Whether the stream towards the client (or from it) is between PDUs, once all that
        was relayed has been framed."""


class Recording(Protocol):
    """Recording of a whole run."""

    def connection(self, connection: int, peer: Endpoint, local: Endpoint, ts: int) -> Record:
        """A client connected (accepted at ``ts``): its record, numbered in accept order."""

    def event(self, connection: int, text: str, ts: int) -> None:
        """A log line about connection ``#connection``."""

    def line(self, text: str, ts: int | None = None) -> None:
        """A log line about the run."""

    def drain(self) -> None:
        """Record what waits now."""

    async def finish(self) -> None:
        """The run is over: finish the observation, write the summary, close every output."""


@dataclass(slots=True)
class LocalRecording:
    """Recording in this process: the client legs' flow table, the model, the live log and the
    pcapng; each call is a job of ``recorder`` (after relaying)."""

    config: ProxyConfig
    builder: ModelBuilder
    log: LiveLog
    pcap: PcapngWriter | None
    recorder: Recorder
    closers: list[Callable[[], None]]
    """Called last to first by :meth:`finish` (the outputs)."""
    writer: BackgroundWriter
    """The files' writer thread."""
    wire: ClientWire | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        ports = frozenset(lst.address.port for lst in self.config.listeners)
        self.wire = ClientWire(self._emit, server_ports=ports, keep=self.config.keep)

    def regular_jobs(self) -> list[tuple[float, Callable[[], None]]]:
        """The regular jobs of a run, each with its period in seconds: the heap trimmed every
        :data:`~analyzer.sources.heap.TRIM_EVERY` s (on the writer's thread: a trim takes
        milliseconds), the pcapng flushed every :data:`FLUSH_EVERY` s."""
        jobs: list[tuple[float, Callable[[], None]]] = [(heap.TRIM_EVERY, self.trim)]
        if self.pcap is not None:
            jobs.append((FLUSH_EVERY, self.pcap.flush))
        return jobs

    def start(self) -> None:
        """The :meth:`regular_jobs` run on the event loop."""
        for every, job in self.regular_jobs():
            self._tasks.append(asyncio.create_task(self._regularly(every, job)))

    def trim(self) -> None:
        """Give the heap's free pages back, on the writer's thread."""
        self.writer.submit(heap.trim)

    @staticmethod
    async def _regularly(every: float, job: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(every)
            job()

    def _emit(self, event: DissectorEvent) -> None:
        """Observer events into the model; a connection without DICOM is reported at once
        (a capture reports them at its end; a proxy's end is its shutdown, when the rules
        about the run as a whole run once)."""
        self.builder.handle(event)
        if isinstance(event, ConnectionWithoutDicom):
            self.builder.report_unassociated()

    def record(self, job: Callable[[], object], size: int = 0, *, reply_due: bool = False) -> None:
        """Record something after relaying (see :mod:`.recorder`)."""
        self.recorder.add(job, size, reply_due=reply_due)

    def connection(self, connection: int, peer: Endpoint, local: Endpoint, ts: int) -> LocalRecord:
        return LocalRecord(self, connection, peer, local, ts)

    def event(self, connection: int, text: str, ts: int) -> None:
        self.recorder.add(partial(self.log.event, connection, text, ts))

    def line(self, text: str, ts: int | None = None) -> None:
        self.recorder.add(partial(self.log.line, text, ts))

    def drain(self) -> None:
        self.recorder.drain()

    async def finish(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.finish_now()

    def finish_now(self) -> None:
        """:meth:`finish` without an event loop."""
        self.recorder.drain()
        assert self.wire is not None
        self.wire.finish()
        self.builder.finish()
        self.builder.store.finish()
        for close in reversed(self.closers):
            close()


class LocalRecord:
    """One connection recorded in this process: its client tap (pcapng and flow table) and
    upstream leg (pcapng only)."""

    def __init__(
        self, rec: LocalRecording, connection: int, peer: Endpoint, local: Endpoint, ts: int
    ) -> None:
        self.rec = rec
        self.id = connection
        # The client leg starts at accept: the SYN is recorded now, so that connections are
        # numbered in the order they were accepted.
        leg = TcpLeg(rec.pcap, Interface.CLIENT_LEG, peer, local)
        assert rec.wire is not None
        self.tap = ClientTap(
            leg, rec.wire.feed, parse_limit=rec.config.limits.max_parse_pdu, warn=self._warn
        )
        rec.wire.attach(connection, self.tap)
        self.u_leg: TcpLeg | None = None
        rec.record(partial(self.tap.open, ts))

    def _warn(self, text: str) -> None:
        self.rec.log.event(self.id, text)  # from a job: in order already

    def forwarded(self, to_client: bool, ts: int, sent: bytes, received: bytes | None) -> None:
        tap = self.tap
        u_leg = self.u_leg if self.rec.pcap is not None else None  # only packets to make
        if to_client:

            def record() -> None:
                if received is not None and u_leg is not None:
                    u_leg.data(False, ts, received)
                tap.data(False, ts, sent)

        else:

            def record() -> None:
                if received is not None:
                    tap.data(True, ts, received)
                if u_leg is not None:
                    u_leg.data(True, ts, sent)

        self.rec.record(record, len(sent), reply_due=not to_client)

    def client_data(self, ts: int, data: bytes) -> None:
        self.rec.record(partial(self.tap.data, True, ts, data), len(data))

    def injected(self, to_client: bool, ts: int, pdu: bytes) -> None:
        if to_client:
            self.rec.record(partial(self.tap.injected, ts, pdu))
        elif self.u_leg is not None:
            self.rec.record(partial(self.u_leg.data, True, ts, pdu, comment=INJECTED))

    def closed(self, from_client: bool, kind: CloseKind, ts: int) -> None:
        self.rec.record(partial(self.tap.close, from_client, kind, ts))

    def upstream_fin(self, from_proxy: bool, ts: int) -> None:
        if self.u_leg is not None:
            self.rec.record(partial(self.u_leg.fin, from_proxy, ts))

    def proxy_closed(self, to_client: bool, kind: CloseKind, ts: int) -> None:
        if to_client:
            self.rec.record(partial(self.tap.proxy_closed, kind, ts))
        elif self.u_leg is not None:
            end = self.u_leg.fin if kind == CloseKind.FIN else self.u_leg.rst
            self.rec.record(partial(end, True, ts, INJECTED))

    def reset_both(self, by_client: bool | None, ts: int) -> None:
        if self.u_leg is not None:
            self.rec.record(partial(self.u_leg.rst, by_client is not False, ts))
        self.rec.record(partial(self.tap.close, by_client is True, CloseKind.RST, ts))

    def discarded(self, size: int) -> None:
        self.rec.record(partial(self.tap.discarded, True, size))

    def acknowledged(self, ts: int) -> None:
        self.rec.record(partial(self.tap.acknowledge, False, ts))

    def upstream_opened(self, local: Endpoint, remote: Endpoint, ts: int, where: str) -> None:
        self.u_leg = leg = TcpLeg(self.rec.pcap, Interface.UPSTREAM_LEG, local, remote)
        self.rec.record(partial(leg.open, ts))
        self.rec.record(partial(self.rec.log.upstream, self.id, where))

    def ended(self, ts: int) -> None:
        rec = self.rec
        rec.record(partial(self.tap.end, ts))
        if self.u_leg is not None:
            rec.record(partial(self.u_leg.rst, True, ts, INJECTED))
        if rec.pcap is not None:
            rec.record(rec.pcap.flush)
        rec.record(partial(rec.log.forget, self.id))
        assert rec.wire is not None
        rec.record(partial(rec.wire.detach, self.id))

    def at_boundary(self, to_client: bool) -> bool:
        self.rec.recorder.drain()  # where PDUs end is known once all was framed
        return self.tap.at_boundary(to_client)


def open_recording(
    config: ProxyConfig,
    store: Store,
    loop: asyncio.AbstractEventLoop | None,
    *,
    out: IO[str] | None,
    generator: str,
    pcap_opened: Callable[[PcapngWriter], None] | None = None,
) -> LocalRecording:
    """Recording in this process into ``store``, with every output the configuration asks
    for open (``loop`` None: each record at once, for the recording process). Raises
    :class:`~.config.ConfigError` for an output that cannot be written. The caller sets the
    process's allocator up first (:func:`~analyzer.sources.heap.steady`: before the writer
    threads start)."""
    oc = config.output
    store.source.name = "proxy"
    store.source.files = [f"proxy {lst.address}" for lst in config.listeners]
    writer = BackgroundWriter(complain, name="file output")
    # The terminal has a writer of its own, which drops lines rather than wait: a terminal
    # nobody reads must stall neither relaying nor the files.
    terminal = BackgroundWriter(complain, name="terminal", drop=True, limit=_TERMINAL_QUEUE)
    closers: list[Callable[[], None]] = [writer.close, lambda: terminal.close(_TERMINAL_WAIT)]
    try:
        log_file = (
            RotatingFile(oc.log, max_size=oc.log_max_size, keep=oc.keep_files) if oc.log else None
        )
        live = LiveLog(
            store,
            None if oc.quiet else out,
            log_file,
            terminal=terminal,
            files=writer,
            log_filter=oc.log_filter,
        )
        closers.append(live.close)
        if oc.jsonl:
            jsonl = JsonlSink(
                store, oc.jsonl, generator, writer, max_size=oc.log_max_size, keep=oc.keep_files
            )
            closers.append(jsonl.close)
        pcap = None
        if oc.pcap:
            pcap = PcapngWriter(
                oc.pcap, max_size=oc.pcap_max_size, keep=oc.keep_files, output=writer
            )
            closers.append(pcap.close)
            if pcap_opened is not None:
                pcap_opened(pcap)
    except OSError as exc:
        for close in reversed(closers):
            close()
        raise ConfigError(f"cannot write {exc.filename}: {exc.strerror}") from None
    ports = {lst.address.port for lst in config.listeners}
    # The same rules as analyze and diagnose: a proxied association gets the same findings.
    builder = ModelBuilder(store, dicom_ports=ports, rules=Diagnosis())

    recorder = Recorder(loop, lambda exc: live.line(failure(exc)))
    return LocalRecording(config, builder, live, pcap, recorder, closers, writer)


def failure(exc: Exception) -> str:
    """The log line for a record that could not be made (relaying is not affected)."""
    return f"recording failed ({type(exc).__name__}: {exc}); relaying goes on"


def complain(text: str) -> None:
    """A write error (from the writer thread): one line on stderr, the terminal of last resort."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"dicomtap proxy: {text}\n")
        sys.stderr.flush()
