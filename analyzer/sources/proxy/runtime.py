"""What every relayed connection shares: configuration, clock, admission and recording."""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .access import AccessPolicy
from .admission import Admission
from .config import Address, ProxyConfig, Route, TlsConfig
from .records import Recording
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

    Recording (the client legs' flow table, the model, the outputs) is ``recording``'s: in
    this process or in one of its own (see ``RECORDING.md``). Connections are numbered in
    the order they were accepted, which is the order their SYN is recorded."""

    config: ProxyConfig
    access: AccessPolicy
    recording: Recording
    admission: Admission[Session] = field(init=False)
    next_connection: int = 1
    _last_ts: int = 0
    _contexts: dict[TlsConfig, ssl.SSLContext] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.admission = Admission(self.config.limits)
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

    def event(self, connection: int, text: str) -> None:
        """A line about connection ``#connection`` in the live log, in order with what was
        recorded before it."""
        self.recording.event(connection, text, self.now())

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
