"""The proxy's options as frozen dataclasses (:class:`ProxyConfig` and its parts), and the
parsing of addresses and sizes. :mod:`.options` builds a :class:`ProxyConfig` from the
command line and a TOML file; every user mistake is a :class:`ConfigError`, one line of
text, exit status 2.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from analyzer.errors import DicomtapError
from analyzer.filter import Filter
from dissectors.observer import DEFAULT_KEEP

__all__ = [
    "AccessConfig",
    "Address",
    "ConfigError",
    "FailurePolicy",
    "Limits",
    "Listener",
    "OutputConfig",
    "ProxyConfig",
    "RewriteConfig",
    "Route",
    "Timeouts",
    "TlsConfig",
    "parse_address",
    "parse_size",
]


class ConfigError(DicomtapError):
    """A bad option, address or configuration file (exit status 2)."""


class FailurePolicy(StrEnum):
    """What the client gets when the proxy refuses it or cannot reach the upstream."""

    REJECT = "reject"
    """An A-ASSOCIATE-RJ answering the client's A-ASSOCIATE-RQ, then a close."""
    CLOSE = "close"
    """The TCP connection is closed without a word."""


@dataclass(frozen=True, slots=True)
class Address:
    """A host name or IP literal and a TCP port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS on one side. As a server (listener) ``cert``/``key`` are required and ``ca``
    asks for client certificates; as a client (upstream) ``ca`` verifies the server and
    ``cert``/``key`` are presented when the upstream asks for a client certificate."""

    cert: str | None = None
    key: str | None = None
    ca: str | None = None
    min_version: str = "1.2"
    verify: bool = True
    keylog: str | None = None


@dataclass(frozen=True, slots=True)
class Listener:
    """An address the proxy accepts associations on, with optional TLS termination."""

    address: Address
    tls: TlsConfig | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """Associations whose called AE title is ``called_ae`` go to ``upstream``."""

    called_ae: str
    upstream: Address
    tls: TlsConfig | None = None


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. Generous once associated, so that the proxy is never the first to give up;
    short before (``first_pdu``: from accept to a whole A-ASSOCIATE-RQ, TLS included), so that
    connections that send nothing do not hold places for long. ``linger``: after one side
    closed, the other is closed when nothing was relayed for that long."""

    connect: float = 30.0
    first_pdu: float = 10.0
    idle: float = 3600.0
    write: float = 120.0
    grace: float = 30.0
    linger: float = 10.0


@dataclass(frozen=True, slots=True)
class Limits:
    """``max_associations`` counts connections whose A-ASSOCIATE-RQ was accepted;
    ``max_pending`` (and ``max_pending_per_ip``) those still waiting for it. ``max_parse_pdu``:
    a PDU declaring more bytes is relayed whole, but its body is not captured or observed."""

    max_associations: int = 200
    max_pending: int = 100
    max_pending_per_ip: int = 10
    max_parse_pdu: int = 1 << 26


@dataclass(frozen=True, slots=True)
class AccessConfig:
    """Allow lists; empty means everyone."""

    allow_ip: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    allow_calling_ae: tuple[str, ...] = ()
    on_ip_refused: FailurePolicy = FailurePolicy.REJECT


@dataclass(frozen=True, slots=True)
class RewriteConfig:
    """Opt-in rewrites of the A-ASSOCIATE-RQ/AC (none by default)."""

    calling_ae: Mapping[str, str] = field(default_factory=dict)
    called_ae: Mapping[str, str] = field(default_factory=dict)
    max_pdu: int | None = None

    @property
    def active(self) -> bool:
        return bool(self.calling_ae or self.called_ae or self.max_pdu is not None)


@dataclass(frozen=True, slots=True)
class OutputConfig:
    """Files written besides the live log on stdout."""

    jsonl: str | None = None
    pcap: str | None = None
    log: str | None = None
    pcap_max_size: int | None = None
    log_max_size: int | None = None
    keep_files: int = 10
    quiet: bool = False
    log_filter: Filter | None = None
    """Only associations that match it are in the live log (stdout and --log)."""


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """Everything :func:`~analyzer.sources.proxy.server.run_proxy` needs."""

    listeners: tuple[Listener, ...]
    upstream: Address | None = None
    upstream_tls: TlsConfig | None = None
    routes: tuple[Route, ...] = ()
    timeouts: Timeouts = field(default_factory=Timeouts)
    limits: Limits = field(default_factory=Limits)
    access: AccessConfig = field(default_factory=AccessConfig)
    rewrite: RewriteConfig = field(default_factory=RewriteConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    on_upstream_failure: FailurePolicy = FailurePolicy.REJECT
    keep: int = DEFAULT_KEEP
    """Bytes kept from the start of each data set (as ``analyze --keep``)."""


_ADDRESS = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\[\]]*)):(?P<port>\d{1,5})$")


def parse_address(text: str, what: str = "address") -> Address:
    """``HOST:PORT`` or ``[IPv6]:PORT``; ``:PORT`` means every IPv4 address."""
    m = _ADDRESS.match(text.strip())
    if m is None:
        raise ConfigError(f"bad {what} {text!r}: expected HOST:PORT (or [IPv6]:PORT)")
    port = int(m["port"])
    if not 1 <= port <= 65535:
        raise ConfigError(f"bad {what} {text!r}: port {port} is not in 1..65535")
    host = m["v6"] if m["v6"] is not None else (m["host"] or "0.0.0.0")
    if m["v6"] is not None:
        try:
            ipaddress.IPv6Address(host.split("%")[0])
        except ValueError:
            raise ConfigError(f"bad {what} {text!r}: {host!r} is not an IPv6 address") from None
    return Address(host, port)


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)


def parse_size(value: object, what: str) -> int:
    """A byte count: an integer, or text such as ``500M``, ``1GiB``, ``64k``."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    m = _SIZE.match(str(value)) if isinstance(value, str) else None
    if m is None:
        raise ConfigError(f"bad {what} {value!r}: expected a size such as 500M or 1GiB")
    scale = 1 << (10 * "KMGT".index(m[2].upper()) + 10) if m[2] else 1
    size = int(float(m[1]) * scale)
    if size <= 0:
        raise ConfigError(f"bad {what} {value!r}: must be positive")
    return size
