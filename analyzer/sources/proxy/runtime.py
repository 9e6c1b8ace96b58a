"""What every relayed connection shares: configuration, clock, admission, the flow table and
model, the recorder and the outputs."""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from analyzer.builder import ModelBuilder
from analyzer.sources.clientwire import ClientWire
from dissectors import ConnectionWithoutDicom, DissectorEvent

from .access import AccessPolicy
from .admission import Admission
from .config import Address, ProxyConfig, Route, TlsConfig
from .log import LiveLog
from .pcapng import PcapngWriter
from .recorder import Recorder
from .tls import client_context

if TYPE_CHECKING:
    from .session import Session

__all__ = ["Runtime", "Target"]


@dataclass(frozen=True, slots=True)
class Target:
    """Where one association is relayed to."""

    address: Address
    tls: ssl.SSLContext | None
    route: str | None
    """The called AE title of the route taken; None for the default upstream."""


@dataclass(slots=True)
class Runtime:
    """State shared by the sessions of one proxy run (all used from the event loop thread).

    The client legs go through one :class:`~analyzer.sources.clientwire.ClientWire` (a flow
    table, as the segments of a capture go through), so connection numbers are the flow
    table's: connections are numbered in the order their SYN is recorded, which is the order
    they were accepted."""

    config: ProxyConfig
    builder: ModelBuilder
    log: LiveLog
    pcap: PcapngWriter | None
    access: AccessPolicy
    recorder: Recorder
    admission: Admission[Session] = field(init=False)
    wire: ClientWire = field(init=False)
    """The client legs: their flow table, and the tap of each connection being recorded."""
    next_connection: int = 1
    _last_ts: int = 0
    _contexts: dict[TlsConfig, ssl.SSLContext] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.admission = Admission(self.config.limits)
        ports = frozenset(lst.address.port for lst in self.config.listeners)
        self.wire = ClientWire(self._emit, server_ports=ports, keep=self.config.keep)
        # Build TLS contexts up front: a bad certificate is a start-up error, not a runtime one.
        wanted = [self.config.upstream_tls, *(r.tls for r in self.config.routes)]
        for tls in wanted:
            if tls is not None and tls not in self._contexts:
                self._contexts[tls] = client_context(tls)

    def now(self) -> int:
        """Wall-clock nanoseconds, never going backwards (pcapng readers want that)."""
        ts = time.time_ns()
        if ts < self._last_ts:
            ts = self._last_ts
        self._last_ts = ts
        return ts

    def record(self, job: Callable[[], object], size: int = 0, *, reply_due: bool = False) -> None:
        """Record something after relaying (see :mod:`.recorder`; ``reply_due``: the bytes
        went to the upstream, whose answer is forwarded before they are recorded)."""
        self.recorder.add(job, size, reply_due=reply_due)

    def event(self, connection: int, text: str) -> None:
        """A line about connection ``#connection`` in the live log, in order with what was
        recorded before it."""
        ts = self.now()
        self.recorder.add(lambda: self.log.event(connection, text, ts))

    def _emit(self, event: DissectorEvent) -> None:
        """Observer events into the model; a connection without DICOM is reported at once
        (a capture reports them at its end; a proxy's end is its shutdown, when the rules
        about the run as a whole run once)."""
        self.builder.handle(event)
        if isinstance(event, ConnectionWithoutDicom):
            self.builder.report_unassociated()

    def target(self, called_ae: str | None) -> Target | None:
        """The route for ``called_ae`` (spaces stripped), else the default upstream."""
        route: Route | None = None
        if called_ae is not None:
            route = next((r for r in self.config.routes if r.called_ae == called_ae), None)
        if route is not None:
            tls = self._contexts[route.tls] if route.tls is not None else None
            return Target(route.upstream, tls, route.called_ae)
        if self.config.upstream is None:
            return None
        up_tls = self.config.upstream_tls
        return Target(self.config.upstream, self._contexts[up_tls] if up_tls else None, None)
