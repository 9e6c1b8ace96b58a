"""What every relayed connection shares: configuration, clock, analyzer, outputs, counters."""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass, field

from analyzer.builder import ModelBuilder
from dissectors import ConnectionWithoutDicom, DissectorEvent

from .access import AccessPolicy
from .config import Address, ProxyConfig, Route, TlsConfig
from .log import LiveLog
from .pcapng import PcapngWriter
from .tls import client_context

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
    """State shared by the sessions of one proxy run (all used from the event loop thread)."""

    config: ProxyConfig
    builder: ModelBuilder
    log: LiveLog
    pcap: PcapngWriter | None
    access: AccessPolicy
    active: int = 0
    """Connections being relayed now."""
    next_connection: int = 1
    _last_ts: int = 0
    _contexts: dict[TlsConfig, ssl.SSLContext] = field(default_factory=dict)

    def __post_init__(self) -> None:
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

    def emit(self, event: DissectorEvent) -> None:
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
