"""The proxy's asyncio edge: listeners, sessions, shutdown, and the outputs around them.

:func:`run_proxy` is the whole proxy as a coroutine over a caller's
:class:`~analyzer.store.Store`: the CLI runs it with a store of its own, and a future TUI can
run it in a worker with the store it displays, subscribe to that store, and stop it by
setting the ``stop`` event. Nothing in here is special to either.

Shutdown: stop accepting, give open associations ``grace`` seconds to finish, then end the
rest with an A-ABORT to both sides (logged); then the summary, and every file flushed and
closed. Recording (the flow table, the model, the live log, the files) runs in a process of
its own (:mod:`.recproc`) for :func:`serve`, and in this one, after relaying
(:class:`~.recorder.Recorder`), for a caller that reads the store (the terminal UI); see
``RECORDING.md``.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import ssl
import sys
from collections.abc import Callable
from typing import IO, Any

from analyzer.sources import heap
from analyzer.store import Retention, Store

from .access import AccessPolicy
from .config import Address, ConfigError, Listener, ProxyConfig
from .pcapng import PcapngWriter
from .records import LocalRecording, open_recording
from .recproc import ProcessRecording, RecordingMode
from .runtime import Runtime
from .session import Session
from .sides import Side
from .tls import server_context

__all__ = ["run_proxy", "serve"]

_SWITCH_INTERVAL = 0.0005  # seconds a thread waits for the interpreter lock before asking


async def run_proxy(
    config: ProxyConfig,
    store: Store,
    *,
    stop: asyncio.Event,
    out: IO[str] | None = sys.stdout,
    generator: str = "dicomtap",
    ready: Callable[[list[Address]], None] | None = None,
    pcap_opened: Callable[[PcapngWriter], None] | None = None,
    recording: RecordingMode = RecordingMode.THREAD,
) -> int:
    """Relay and observe until ``stop`` is set, then shut down gracefully. Returns the exit
    status: 0, or 1 when the recording process stopped before the end (relaying went on,
    the outputs miss what came after).

    Everything observed goes into ``store``; the live log goes to ``out`` (None: only to the
    log file, if configured). ``ready`` is called with the bound addresses once every
    listener accepts. ``pcap_opened`` is given the pcapng writer (``--pcap``) once it is
    open, for a reader of its files while the proxy runs (the terminal UI). Raises
    :class:`~.config.ConfigError` for a start-up problem (address in use, unreadable TLS
    files, unwritable output), before anything was accepted.

    ``recording``: :attr:`RecordingMode.PROCESS` records in a process of its own (see
    ``RECORDING.md``), which fills a store of its own (``store`` stays empty) and writes the
    live log to this process's stdout (``out`` must be ``sys.stdout`` or None); for a caller
    that reads ``store`` (the terminal UI), :attr:`RecordingMode.THREAD`.
    """
    loop = asyncio.get_running_loop()
    rec: LocalRecording | ProcessRecording
    if recording == RecordingMode.PROCESS:
        rec = await ProcessRecording.start(config, loop, quiet_out=out is None, generator=generator)
    else:
        heap.steady()  # before the writer threads start: a proxy runs for weeks
        rec = open_recording(
            config, store, loop, out=out, generator=generator, pcap_opened=pcap_opened
        )
        rec.start()
    rt = Runtime(config, AccessPolicy(config.access), rec)
    sessions: set[asyncio.Task[None]] = set()
    contexts: dict[Listener, ssl.SSLContext | None] = {}
    servers: list[asyncio.Server] = []

    admission_check: list[asyncio.TimerHandle] = []

    def check_admission() -> None:
        """Close what keeps the proxy over its pending limits past the grace period."""
        admission_check.clear()
        evict, again = rt.admission.excess(loop.time())
        for session in evict:
            session.evict()
        if again is not None:
            admission_check.append(loop.call_at(again, check_admission))

    def factory(listener: Listener) -> Callable[[], Side]:
        def accepted(side: Side) -> None:
            connection = rt.next_connection
            rt.next_connection += 1
            session = Session(rt, connection, listener, side, tls=contexts[listener])
            if not rt.admission.arrive(session, session.peer.host, loop.time()):
                session.turn_away()
                return
            if rt.admission.over and not admission_check:
                admission_check.append(loop.call_later(rt.admission.grace, check_admission))
            task = loop.create_task(session.run())
            session.task = task
            sessions.add(task)
            task.add_done_callback(sessions.discard)

        # TLS is started by the session (so a failed handshake is logged with its number).
        return lambda: Side(True, on_made=accepted, tls_pending=listener.tls is not None)

    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(_quiet_handler(rec))
    # The writer threads pack packets and lines holding the interpreter lock; when a socket
    # becomes readable, the event loop's thread gets the lock within this long, rather than
    # the interpreter's default 5 ms (restored at the end: the TUI runs the proxy in-process).
    switch = sys.getswitchinterval()
    sys.setswitchinterval(min(switch, _SWITCH_INTERVAL))
    try:
        for listener in config.listeners:
            ctx: ssl.SSLContext | None = server_context(listener.tls) if listener.tls else None
            contexts[listener] = ctx
            try:
                server = await loop.create_server(
                    factory(listener),
                    listener.address.host,
                    listener.address.port,
                    reuse_address=True,
                    backlog=max(128, config.limits.max_associations + config.limits.max_pending),
                )
            except OSError as exc:
                why = "address in use" if exc.errno == errno.EADDRINUSE else exc.strerror or exc
                raise ConfigError(f"cannot listen on {listener.address}: {why}") from None
            servers.append(server)
        bound = [_bound(s) for s in servers]
        for address, listener in zip(bound, config.listeners, strict=True):
            tls = " (TLS)" if listener.tls else ""
            rec.line(f"listening on {address}{tls}")
        if ready is not None:
            ready(bound)
        await stop.wait()
    finally:
        for server in servers:
            server.close()
        for timer in admission_check:
            timer.cancel()
        rec.drain()
        if sessions:
            grace = config.timeouts.grace
            rec.line(f"shutting down: {len(sessions)} association(s) open, {grace:g} s to finish")
            await asyncio.wait(set(sessions), timeout=grace)
            for task in list(sessions):
                task.cancel()
            await asyncio.gather(*sessions, return_exceptions=True)
        else:
            rec.line("shutting down")
        await rec.finish()
        loop.set_exception_handler(previous_handler)
        sys.setswitchinterval(switch)
    return 1 if isinstance(rec, ProcessRecording) and rec.dead is not None else 0


def _bound(server: asyncio.Server) -> Address:
    host, port = server.sockets[0].getsockname()[:2]
    return Address(host, port)


def _quiet_handler(
    rec: LocalRecording | ProcessRecording,
) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """asyncio's own errors (a failed TLS handshake from a client ...) as one log line each."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        text = context.get("message", "error")
        if exc is not None:
            text = f"{text}: {type(exc).__name__}: {exc}"
        rec.line(f"asyncio: {text}")

    return handle


#: The environment variable that chooses where ``serve`` records (internal: for tests and
#: benchmarks; see :class:`~.recproc.RecordingMode`).
RECORDING_ENV = "DICOMTAP_PROXY_RECORDING"


def recording_mode() -> RecordingMode:
    """Where :func:`serve` records: :data:`RECORDING_ENV` if it names a mode, else the
    default."""
    try:
        return RecordingMode(os.environ.get(RECORDING_ENV, ""))
    except ValueError:
        return RecordingMode.PROCESS


def serve(config: ProxyConfig, *, out: IO[str] = sys.stdout, generator: str = "dicomtap") -> int:
    """Run the proxy until SIGINT or SIGTERM.
    Returns the exit status; raises :class:`~.config.ConfigError` for start-up problems."""
    # Without a terminal UI nothing reads old associations again: a proxy that runs for
    # weeks keeps a bounded past (the log and --jsonl have written it).
    store = Store(retention=Retention())

    async def main() -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await run_proxy(
            config, store, stop=stop, out=out, generator=generator, recording=recording_mode()
        )

    return asyncio.run(main())
