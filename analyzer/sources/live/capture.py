"""Live capture: dumpcap on an interface, its pcapng stream analysed as it arrives.

dumpcap (Wireshark's capture engine) runs as a subprocess writing pcapng to a pipe; the
pipe is read by :func:`~analyzer.sources.pcap.read_packets`, the reader of capture files,
and the frames go through the same :class:`~analyzer.sources.packets.PacketDecoder` and
:class:`~analyzer.pipeline.Pipeline` as ``dicomtap analyze``: live and file analysis share
one path, so the records of a live session equal those of ``analyze`` on its capture
(``--write``/``--ring`` keep it, see :mod:`analyzer.sources.live.tee`).

:func:`run_live` fills a :class:`~analyzer.store.Store` from the calling thread until the
capture is stopped (``stop`` event, or :meth:`LiveCapture.stop` from a signal handler); a
report, the live log or the terminal UI subscribe to that store like to any other. Events
reach the store as soon as dumpcap hands their packet over: libpcap delivers packets at the
latest every 250 ms (dumpcap's read timeout) and dumpcap flushes each one into the pipe.

Stopping: dumpcap gets SIGINT, writes what it has captured and its Interface Statistics
Block, and exits; the pipe is read to its end, the pipeline finished (associations still
open become ``open-at-end``), the capture files closed. Drops (the ISB, and dumpcap's report
on stderr) and the analysis falling behind the capture become capture-wide findings
(:mod:`analyzer.sources.live.findings`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, cast

from analyzer.builder import Rules
from analyzer.errors import InputError
from analyzer.model import Finding
from analyzer.pipeline import Pipeline, Progress
from analyzer.sources.packets import PacketDecoder
from analyzer.sources.pcap import CaptureStats, Packet, read_packets
from analyzer.store import Store
from dissectors.observer import DEFAULT_KEEP

from .dumpcap import (
    CaptureError,
    DumpcapStats,
    capture_argv,
    explain_failure,
    find_dumpcap,
    parse_stats,
)
from .findings import Drops, LiveRules, capture_drops, capture_lag
from .monitor import STOP_TIMEOUT, Backlog, Monitor
from .process import DumpcapProcess
from .tee import PcapngFiles, TeeReader

__all__ = ["CaptureError", "LiveCapture", "LiveOptions", "LiveResult", "run_live"]

START_TIMEOUT = 15.0
"""Seconds dumpcap may take to start capturing."""

Notice = Callable[[str], None]
"""Receives one line for the user (stderr), from any thread."""


@dataclass(frozen=True, slots=True)
class LiveOptions:
    """What to capture and where to keep it (the options of ``dicomtap live``)."""

    interface: str
    capture_filter: str | None = None
    """A libpcap filter; None: ``tcp``, narrowed to :attr:`ports` if any."""
    ports: tuple[int, ...] = ()
    """DICOM ports: they narrow the default filter, and the analysis treats them as DICOM
    (as ``analyze --port``)."""
    write: str | None = None
    """Keep the raw capture (pcapng) in this file, or as the base name of a ring."""
    ring: tuple[int, float] | None = None
    """(files, megabytes each): a ring buffer of files based on :attr:`write`."""
    dumpcap: str | None = None
    """dumpcap's path; None: found by pyshark (config.ini, PATH)."""
    buffer_mb: int = 64
    """dumpcap's kernel capture buffer (``-B``), MiB."""
    snaplen: int = 0
    """Bytes kept of each packet (0: whole packets)."""
    keep: int = DEFAULT_KEEP
    """Bytes kept from the start of each data set (as ``analyze --keep``)."""
    lag_warning: float = 2.0
    """Seconds of delay between a packet's capture and its analysis that count as behind."""

    @property
    def bpf(self) -> str:
        """The capture filter dumpcap is given."""
        if self.capture_filter:
            return self.capture_filter
        if self.ports:
            return " or ".join(f"tcp port {p}" for p in sorted(set(self.ports)))
        return "tcp"


@dataclass(slots=True)
class LiveResult:
    """How a live capture went."""

    interface: str
    capture_filter: str
    started_ns: int = 0
    ended_ns: int = 0
    packets: int = 0
    """Frames read from dumpcap."""
    tcp_segments: int = 0
    bytes: int = 0
    """Bytes of pcapng read from dumpcap."""
    drops: Drops = field(default_factory=Drops)
    dumpcap_stats: DumpcapStats | None = None
    behind: int = 0
    """Times the analysis fell behind the capture (0: it kept up)."""
    max_lag_ns: int = 0
    """Largest delay between a packet's capture and its analysis, while behind."""
    behind_ns: int = 0
    """Time spent behind the capture."""
    files: list[str] = field(default_factory=list)
    """Capture files kept (``--write``/``--ring``), oldest first."""
    write_error: str | None = None
    stopped: bool = False
    """Stopped on request (rather than dumpcap ending by itself)."""
    error: str | None = None
    """Why capturing ended, when dumpcap ended by itself or the stream was cut."""
    findings: list[Finding] = field(default_factory=list)
    """The capture-wide findings added to the store."""

    @property
    def duration_ns(self) -> int:
        return max(0, self.ended_ns - self.started_ns)


class LiveCapture:
    """One dumpcap run feeding a :class:`Pipeline`.

    Construction finds dumpcap (:class:`~analyzer.errors.ToolMissingError` if it is not
    there); :meth:`start` starts it and waits until it captures (:class:`CaptureError`: no
    permission, no such interface, invalid filter; :class:`~analyzer.sources.live.tee.
    WriteError`: capture file not writable); :meth:`run` analyses the stream into a store
    until dumpcap ends; :meth:`stop` (thread- and signal-safe) ends it cleanly.
    """

    def __init__(self, options: LiveOptions, *, notice: Notice | None = None) -> None:
        self.options = options
        self.dumpcap = find_dumpcap(options.dumpcap)
        self.argv = capture_argv(
            self.dumpcap,
            options.interface,
            options.bpf,
            buffer_mb=options.buffer_mb,
            snaplen=options.snaplen,
        )
        self.result = LiveResult(options.interface, options.bpf)
        self.process: DumpcapProcess | None = None
        self._notice: Notice = notice or (lambda line: None)
        self._stop_requested = threading.Event()
        self._files: PcapngFiles | None = None

    def start(self) -> None:
        """Start dumpcap; return once it captures."""
        options = self.options
        if options.write:
            ring = (options.ring[0], int(options.ring[1] * 1_000_000)) if options.ring else None
            self._files = PcapngFiles(options.write, ring)
        try:
            self.process = DumpcapProcess(self.argv, options.interface, options.bpf)
            self.result.started_ns = time.time_ns()
            self.process.wait_capturing(START_TIMEOUT)
        except BaseException as exc:
            if self._files is not None:  # no capture: no empty file left behind
                self._files.close()
                for path in self._files.files:
                    path.unlink(missing_ok=True)
            if self.stopping and isinstance(exc, CaptureError):
                raise CaptureError("stopped before the capture had started") from None
            raise
        if self._stop_requested.is_set():  # stop() came while dumpcap was starting
            self.process.stop()

    def stop(self) -> None:
        """End the capture cleanly: dumpcap stops and what it captured is still analysed.
        Safe from any thread and from a signal handler; again is harmless."""
        self._stop_requested.set()
        if self.process is not None:
            self.process.stop()

    @property
    def files(self) -> list[str]:
        """The capture files kept so far (``--write``/``--ring``), oldest first. They hold
        every whole block of the stream as soon as it is read, before its packets are
        analysed: what the store shows is in them (the terminal UI saves frames from
        them)."""
        return [str(p) for p in self._files.files] if self._files is not None else []

    @property
    def stopping(self) -> bool:
        """:meth:`stop` was called."""
        return self._stop_requested.is_set()

    def run(
        self, store: Store, *, rules: Rules | None = None, progress: Progress | None = None
    ) -> LiveResult:
        """Analyse the stream into ``store`` until dumpcap ends (after :meth:`stop`, or by
        itself), then finish: open associations become ``open-at-end``, capture-wide
        findings are added, the store is marked done.

        ``rules``: the findings rules (e.g. :class:`analyzer.findings.Diagnosis`).
        ``progress`` is called every half second with (bytes read, 0) from another thread;
        if it raises, the capture stops, finishes as above, and the exception is raised
        again at the end (the terminal UI's ingest contract).
        """
        process = self.process
        if process is None:
            raise RuntimeError("LiveCapture.run() before start()")
        options = self.options
        source = store.source
        source.name = f"live capture on {options.interface}"
        stats = CaptureStats()
        decoder = PacketDecoder(stats)
        live_rules = LiveRules(rules)
        pipeline = Pipeline(store, ports=options.ports, rules=live_rules, keep=options.keep)
        reader = process.stdout
        if self._files is not None:
            reader = TeeReader(reader, self._files)  # type: ignore[assignment]
        backlog = Backlog(
            reader,
            process.fd,
            process.pipe_size,
            lag_warning=options.lag_warning,
            notice=self._notice,
        )
        monitor = Monitor(process, stats, source, progress, stop=self.stop)
        monitor.start()
        try:
            try:
                packets: Iterator[Packet] = read_packets(cast(BinaryIO, backlog), stats)
            except InputError:  # nothing came: dumpcap ended at once (see _account)
                packets = iter(())
            decode = decoder.decode
            feed = pipeline.feed
            for ts, frame, linktype, data, orig_len in packets:
                backlog.last_ts = ts  # for the delay: the reader syncs its stats only per MiB
                seg = decode(ts, frame, linktype, data, orig_len)
                if seg is not None:
                    feed(seg)
        except BaseException:
            self.stop()
            process.kill()
            raise
        finally:
            monitor.finish()
            backlog.finish()
            if self._files is not None:
                self._files.close()
            self.result.ended_ns = time.time_ns()
        process.wait(STOP_TIMEOUT)
        decoder.finish()
        self._account(stats, pipeline.segments, backlog)
        self._fill_source(store, stats)
        live_rules.at_end = self.result.findings
        pipeline.finish()
        if monitor.raised is not None:
            raise monitor.raised
        return self.result

    def _account(self, stats: CaptureStats, segments: int, backlog: Backlog) -> None:
        """The result: counts, drops (Interface Statistics Block and dumpcap's report),
        errors, capture-wide findings."""
        result = self.result
        process = self.process
        assert process is not None
        result.packets = stats.packets
        result.tcp_segments = segments
        result.bytes = stats.bytes_read
        result.stopped = self.stopping
        result.behind = backlog.episodes
        result.max_lag_ns = backlog.max_lag_ns
        result.behind_ns = backlog.behind_ns
        if self._files is not None:
            result.files = [str(p) for p in self._files.files]
            result.write_error = self._files.error
        for line in process.stderr_lines:
            result.dumpcap_stats = parse_stats(line) or result.dumpcap_stats
        last: dict[int, tuple[int, int]] = {}
        for isb in stats.interface_statistics:  # cumulative: the last one per interface
            last[isb.interface] = (isb.received or 0, (isb.dropped or 0) + (isb.os_dropped or 0))
        isb_received = sum(r for r, _ in last.values()) if last else None
        isb_dropped = sum(d for _, d in last.values())
        ds = result.dumpcap_stats
        if ds is not None:
            result.drops = Drops(
                received=ds.received,
                kernel=max(ds.kernel, isb_dropped),
                dumpcap=ds.dumpcap + ds.flushed,
                interface=ds.interface_drops,
            )
        else:
            result.drops = Drops(received=isb_received, kernel=isb_dropped)
        if not self.stopping:
            if process.returncode not in (0, None):
                result.error = str(explain_failure(process.stderr_text(), self.options.interface))
            else:
                result.error = f"dumpcap stopped capturing on {self.options.interface} by itself"
        elif stats.truncated and stats.truncation:
            result.error = f"the capture stream was cut: {stats.truncation}"
        result.findings = [
            f
            for f in (
                capture_drops(result.drops, stats.last_ts, backlog.episodes > 0),
                capture_lag(
                    backlog.episodes,
                    backlog.max_lag_ns,
                    backlog.behind_ns,
                    backlog.first_behind_ts,
                ),
            )
            if f is not None
        ]

    def _fill_source(self, store: Store, stats: CaptureStats) -> None:
        result = self.result
        source = store.source
        interface = self.options.interface
        source.files = list(result.files)
        source.packets = stats.packets
        source.tcp_segments = result.tcp_segments
        source.bytes_read = stats.bytes_read
        source.first_ts = stats.first_ts
        source.last_ts = stats.last_ts
        if stats.truncated and stats.truncation:
            source.truncated.append(f"{interface}: {stats.truncation}")
        source.warnings.extend(f"{interface}: {w}" for w in stats.warnings())
        source.warnings.extend(w for w in (result.error, result.write_error) if w)


def run_live(
    options: LiveOptions,
    store: Store,
    *,
    rules: Rules | None = None,
    stop: threading.Event | None = None,
    started: Callable[[LiveCapture], None] | None = None,
    progress: Progress | None = None,
    notice: Notice | None = None,
) -> LiveResult:
    """Capture on ``options.interface`` and analyse into ``store`` until ``stop`` is set
    (or dumpcap ends by itself); returns how it went. Blocks: run it in a thread to read
    the store meanwhile (the terminal UI does, through its ingest worker).

    ``started`` is called once dumpcap captures (before any packet); ``notice`` gets the
    lines meant for the user (falling behind, caught up); ``rules`` and ``progress`` as in
    :meth:`LiveCapture.run`. Raises :class:`~analyzer.errors.DicomtapError` subclasses
    (exit status 2) when capturing cannot start: dumpcap missing, no permission, unknown
    interface, invalid filter, capture file not writable.
    """
    capture = LiveCapture(options, notice=notice)
    ended = threading.Event()

    def watch() -> None:
        assert stop is not None
        while not ended.is_set():
            if stop.wait(0.2):
                capture.stop()  # also while dumpcap is still starting: start() sees it
                return

    watcher = None
    if stop is not None:
        watcher = threading.Thread(target=watch, name="live-stop", daemon=True)
        watcher.start()
    try:
        capture.start()
        if started is not None:
            try:
                started(capture)
            except BaseException:
                capture.stop()
                capture.run(Store())  # let dumpcap end and close the files, then give up
                raise
        return capture.run(store, rules=rules, progress=progress)
    finally:
        ended.set()
        if watcher is not None:
            watcher.join(1)
