"""Connections without DICOM that are counted rather than listed one by one.

A connection to a DICOM port that never became an association is worth a record of its own
(a refused modality, a health check, TLS on a plain port), but a SYN flood or a port scan is
a hundred thousand of them: listed, they bury the associations and make gigabytes of output.
So the first :data:`LISTED_PER_SERVER` to each server, and :data:`LISTED` in all, are listed
as associations; the rest are counted in an :class:`UnlistedGroup` per server, with their
times, frames and what the findings rules said about each (so that nothing is hidden, only
folded). Past :data:`GROUPS` servers, the rest are counted per port.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .model import Association, Endpoint, Finding, Severity

__all__ = ["GROUPS", "LISTED", "LISTED_PER_SERVER", "CountedFinding", "Unlisted", "UnlistedGroup"]

#: Connections without DICOM listed one by one per server endpoint.
LISTED_PER_SERVER = 100
#: Connections without DICOM listed one by one in all.
LISTED = 1_000
#: Servers whose unlisted connections are counted apart; past them, per port.
GROUPS = 1_000


@dataclass(slots=True)
class CountedFinding:
    """A finding the rules gave for ``count`` unlisted connections (its first wording)."""

    code: str
    severity: Severity
    title: str
    count: int = 0


@dataclass(slots=True)
class UnlistedGroup:
    """Unlisted connections to one server (``server_ip`` None: to any server on ``port``,
    once too many servers had some)."""

    server_ip: str | None
    port: int
    connections: int = 0
    first_ts: int = 0
    last_ts: int = 0
    first_frame: int = 0
    last_frame: int = 0
    findings: dict[str, CountedFinding] = field(default_factory=dict)

    @property
    def server(self) -> str:
        """The server in words: ``10.0.0.2:104``, or ``port 104`` of many servers."""
        if self.server_ip is None:
            return f"port {self.port} (many servers)"
        return str(Endpoint(self.server_ip, self.port))

    @property
    def worst(self) -> Severity | None:
        """The highest severity among the findings counted."""
        return max((f.severity for f in self.findings.values()), default=None)


class Unlisted:
    """Which connections without DICOM are listed, and the count of the others."""

    def __init__(
        self, *, per_server: int | None = None, listed: int | None = None, groups: int | None = None
    ) -> None:
        # The module's bounds are read here, not bound as defaults: a test can lower them.
        self._per_server = LISTED_PER_SERVER if per_server is None else per_server
        self._limit = LISTED if listed is None else listed
        self._groups = GROUPS if groups is None else groups
        self._listed = 0
        # Keys are added only while connections are listed: at most ``listed`` of them.
        self._listed_to: dict[tuple[str, int], int] = {}
        self._by_server: dict[tuple[str | None, int], UnlistedGroup] = {}

    def lists(self, server: Endpoint) -> bool:
        """Whether a connection without DICOM to ``server`` is listed (counting it as listed
        if so)."""
        if self._listed >= self._limit:
            return False
        key = (server.ip, server.port)
        n = self._listed_to.get(key, 0)
        if n >= self._per_server:
            return False
        self._listed_to[key] = n + 1
        self._listed += 1
        return True

    def count(self, association: Association, findings: Iterable[Finding]) -> None:
        """Count a connection that is not listed, with the findings the rules gave for it."""
        server = association.server
        key: tuple[str | None, int] = (server.ip, server.port)
        first_frame = association.start_frame or 0
        group = self._by_server.get(key)
        if group is None and len(self._by_server) >= self._groups:
            key = (None, server.port)
            group = self._by_server.get(key)
        if group is None:
            group = self._by_server[key] = UnlistedGroup(
                key[0], server.port, first_ts=association.start_ts, first_frame=first_frame
            )
        group.connections += 1
        group.first_ts = min(group.first_ts, association.start_ts)
        group.first_frame = min(group.first_frame, first_frame)
        end_ts = association.end_ts if association.end_ts is not None else association.start_ts
        end_frame = association.end_frame or first_frame
        group.last_ts = max(group.last_ts, end_ts)
        group.last_frame = max(group.last_frame, end_frame)
        for f in findings:
            counted = group.findings.get(f.code)
            if counted is None:
                counted = group.findings[f.code] = CountedFinding(f.code, f.severity, f.title)
            counted.count += 1

    @property
    def connections(self) -> int:
        """Connections counted, not listed."""
        return sum(g.connections for g in self._by_server.values())

    def __iter__(self) -> Iterator[UnlistedGroup]:
        """The groups, in the order of their first frame."""
        return iter(sorted(self._by_server.values(), key=lambda g: (g.first_frame, g.port)))

    def __len__(self) -> int:
        return len(self._by_server)
