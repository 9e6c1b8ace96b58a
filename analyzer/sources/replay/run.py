"""One replay from start to end: read the capture, connect (or accept), play, compare.

The live connection is observed into a fresh store the way a capture fills one: its bytes go
through the proxy's :class:`~analyzer.sources.proxy.tap.ClientTap` into the same observer,
model builder and findings rules (:class:`~analyzer.findings.Diagnosis`), and into the
pcapng file with ``--pcap``. So the replay's records and findings are those ``dicomtap
analyze`` gives for that file, and are compared with the captured ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from analyzer.builder import ModelBuilder
from analyzer.model import Association, Exchange, Finding
from analyzer.reports.common import outcome_text
from analyzer.sources.proxy.pcapng import PcapngWriter
from analyzer.store import Store
from dissectors import DissectorEvent

from .captured import Captured, check_complete, diagnosis, load
from .compare import Row, Verdict, compare
from .link import Link, Unreachable, accept, connect, listener
from .live import LiveState
from .options import ReplayOptions
from .player import Player
from .script import script

__all__ = ["ReplayResult", "prepare", "replay"]


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What a replay did and found (``unreachable``: it could not start)."""

    options: ReplayOptions
    captured: Captured
    notes: tuple[str, ...] = ()
    unreachable: str | None = None
    stopped: str | None = None
    live: Association | None = None
    exchanges: tuple[Exchange, ...] = ()
    findings: tuple[Finding, ...] = ()
    rows: tuple[Row, ...] = ()
    peer: str = ""
    sent: int = 0
    received: int = 0
    elapsed_ns: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def differences(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.verdict == Verdict.DIFFERENT)

    @property
    def exit_code(self) -> int:
        """0: answered as captured; 1: differences; 3: the replay could not be made."""
        if self.unreachable is not None:
            return 3
        return 1 if self.differences or self.stopped else 0


def prepare(opts: ReplayOptions) -> tuple[Captured, list[str]]:
    """The captured association, checked; raises for what cannot be replayed."""
    captured = load(opts.capture, opts.association, keep=opts.keep)
    notes = check_complete(
        captured, requestor=opts.requestor, allow_incomplete=opts.allow_incomplete
    )
    if captured.store.source.truncated:
        notes.append(f"the capture is truncated: {'; '.join(captured.store.source.truncated)}")
    return captured, notes


def replay(
    opts: ReplayOptions,
    captured: Captured,
    notes: list[str],
    *,
    pcap: PcapngWriter | None = None,
    listening: Callable[[str], None] | None = None,
) -> ReplayResult:
    """Play ``captured`` against the target (or for the peer that connects)."""
    store = Store()
    store.source.name = "replay"
    where = opts.target if opts.requestor else opts.listen
    assert where is not None
    # The target's port is a DICOM port: a connection on which it spoke no DICOM is reported.
    builder = ModelBuilder(store, dicom_ports={where[1]}, rules=diagnosis())
    live = LiveState(opts.requestor)

    def emit(event: DissectorEvent) -> None:
        builder.handle(event)
        live.handle(event)

    started = time.time_ns()
    t0 = time.perf_counter_ns()
    try:
        if opts.requestor:
            assert opts.target is not None
            sock = connect(*opts.target, opts.timeout)
        else:
            assert opts.listen is not None
            server = listener(*opts.listen)
            try:
                host, port = server.getsockname()[:2]
                if listening is not None:
                    listening(f"{host}:{port}" if ":" not in str(host) else f"[{host}]:{port}")
                sock = accept(server, opts.timeout)
            finally:
                server.close()
    except Unreachable as exc:
        return ReplayResult(opts, captured, tuple(notes), unreachable=str(exc))
    link = Link(
        sock,
        client=opts.requestor,
        emit=emit,
        pcap=pcap,
        keep=opts.keep,
        started=started,
        warn=notes.append,
    )
    peer = f"{link.peer[0]}:{link.peer[1]}"
    player = Player(opts, captured, link, live)
    steps = script(
        captured.path,
        captured.association,
        requestor=opts.requestor,
        lossy=bool(captured.lost_by(not opts.requestor)),
        keep=opts.keep,
    )
    player.play(steps)
    builder.finish()
    store.finish()
    if pcap is not None:
        pcap.flush()
    elapsed = time.perf_counter_ns() - t0
    associations = store.associations()
    result_live = associations[0] if associations else None
    rows: list[Row] = [
        Row("association", outcome_text(captured.association), "no DICOM", Verdict.DIFFERENT)
    ]
    exchanges: tuple[Exchange, ...] = ()
    findings: tuple[Finding, ...] = ()
    if result_live is not None:
        exchanges = tuple(store.exchanges(result_live.id))
        findings = tuple(store.findings(result_live.id))
        rows = compare(
            captured.association,
            captured.exchanges,
            captured.findings,
            result_live,
            exchanges,
            findings,
            requestor=opts.requestor,
            max_slowdown=opts.max_slowdown,
        )
    return ReplayResult(
        opts,
        captured,
        tuple(notes + player.notes),
        stopped=player.stopped,
        live=result_live,
        exchanges=exchanges,
        findings=findings,
        rows=tuple(rows),
        peer=peer,
        sent=link.sent,
        received=link.received,
        elapsed_ns=elapsed,
        counts={
            "skipped": player.skipped,
            "renumbered": player.renumbered,
            "zero_filled": player.writer.zero_filled,
            "split": player.writer.split,
        },
    )
