"""A :class:`~.config.ProxyConfig` from a TOML file and the command line.

The command line wins over the file for single values; lists (listeners, routes, allowed
addresses and AE titles) from both are joined. Every user mistake raises
:class:`ConfigError` with one line of text, which the CLI prints before exiting with 2.

A TOML file (all tables optional)::

    [[listen]]
    address = "0.0.0.0:11112"
    tls = { cert = "proxy.pem", key = "proxy.key", ca = "clients.pem", min_version = "1.2" }

    [upstream]                      # used when no route matches the called AE title
    address = "pacs.example:104"
    tls = { ca = "pacs-ca.pem" }    # originate TLS towards the upstream

    [[route]]
    called_ae = "ARCHIVE"
    upstream = "10.0.0.9:104"

    [timeouts]                      # seconds
    connect = 30
    first_pdu = 10                  # accept to a whole A-ASSOCIATE-RQ (TLS included)
    idle = 3600
    write = 120
    grace = 30
    linger = 10                     # after one side closed, before closing the other

    [limits]
    max_associations = 200          # associations (A-ASSOCIATE-RQ accepted)
    max_pending = 100               # connections still waiting for their A-ASSOCIATE-RQ
    max_pending_per_ip = 10
    max_parse_pdu = 67108864        # bytes; larger PDUs are relayed, their bodies not parsed

    [access]
    allow_ip = ["10.0.0.0/8", "127.0.0.1"]
    allow_calling_ae = ["MODALITY"]
    on_ip_refused = "reject"        # or "close"

    [rewrite]
    calling_ae = { MODALITY = "PROXY" }     # "*" matches any title
    called_ae = { ARCHIVE = "PACS" }
    max_pdu = 16384

    [output]
    jsonl = "proxy.jsonl"
    pcap = "proxy.pcapng"
    pcap_max_size = "1GiB"
    log_max_size = "100MiB"
    keep_files = 10
    on_upstream_failure = "reject"  # or "close"
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analyzer.filter import Filter
from dissectors.observer import DEFAULT_KEEP

from .config import (
    AccessConfig,
    ConfigError,
    FailurePolicy,
    Limits,
    Listener,
    OutputConfig,
    ProxyConfig,
    RewriteConfig,
    Route,
    Timeouts,
    TlsConfig,
    parse_address,
    parse_size,
)

__all__ = ["CliOptions", "build_config", "check_tls", "load_toml"]

_DEFAULT_LIMITS = Limits()


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ConfigError(f"bad allowed address {text!r}: expected an IP or CIDR") from None


def _ae(text: str, what: str) -> str:
    title = text.strip()
    if not title or len(title) > 16 or not title.isascii() or "\\" in title:
        raise ConfigError(f"bad {what} {text!r}: an AE title is 1 to 16 ASCII characters")
    return title


def _mapping(text: str, what: str) -> tuple[str, str]:
    """``OLD=NEW`` (``*=NEW`` for any title)."""
    old, sep, new = text.partition("=")
    if not sep:
        raise ConfigError(f"bad {what} {text!r}: expected OLD=NEW")
    old = old.strip()
    return (old if old == "*" else _ae(old, what)), _ae(new, what)


def load_toml(path: str) -> dict[str, Any]:
    """Read a TOML configuration file; any problem is one :class:`ConfigError` line."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"bad config {path}: {exc}") from None


def _table(doc: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"config: [{key}] must be a table")
    return value


def _tls(value: object, what: str) -> TlsConfig | None:
    if value is None or value is False:
        return None
    if value is True:
        return TlsConfig()
    if not isinstance(value, dict):
        raise ConfigError(f"config: {what} tls must be a table or true")
    known = {"cert", "key", "ca", "min_version", "verify", "keylog"}
    unknown = set(value) - known
    if unknown:
        raise ConfigError(f"config: unknown {what} tls option(s): {', '.join(sorted(unknown))}")
    tls = TlsConfig(
        cert=value.get("cert"),
        key=value.get("key"),
        ca=value.get("ca"),
        min_version=str(value.get("min_version", "1.2")),
        verify=bool(value.get("verify", True)),
        keylog=value.get("keylog"),
    )
    check_tls(tls, what)
    return tls


def check_tls(tls: TlsConfig, what: str, *, server: bool = False) -> None:
    """Files exist and the version is known (the context itself is built at start)."""
    if tls.min_version not in ("1.2", "1.3"):
        raise ConfigError(f"bad {what} TLS minimum version {tls.min_version!r}: 1.2 or 1.3")
    if server and not (tls.cert and tls.key):
        raise ConfigError(f"{what} TLS needs a certificate and a key")
    if bool(tls.cert) != bool(tls.key):
        raise ConfigError(f"{what} TLS needs both a certificate and a key")
    for name in (tls.cert, tls.key, tls.ca):
        if name and not Path(name).is_file():
            raise ConfigError(f"cannot read {what} TLS file {name}")


@dataclass(slots=True)
class CliOptions:
    """What the command line gave (None or empty: not given)."""

    listen: Sequence[str] = ()
    upstream: str | None = None
    routes: Sequence[str] = ()
    config: str | None = None
    timeouts: dict[str, float | None] = field(default_factory=dict)
    max_associations: int | None = None
    max_pending: int | None = None
    max_pending_per_ip: int | None = None
    max_parse_pdu: str | None = None
    allow_ip: Sequence[str] = ()
    allow_calling_ae: Sequence[str] = ()
    on_ip_refused: str | None = None
    rewrite_calling: Sequence[str] = ()
    rewrite_called: Sequence[str] = ()
    clamp_max_pdu: int | None = None
    jsonl: str | None = None
    pcap: str | None = None
    log: str | None = None
    pcap_max_size: str | None = None
    log_max_size: str | None = None
    keep_files: int | None = None
    quiet: bool = False
    on_upstream_failure: str | None = None
    tls: TlsConfig | None = None
    upstream_tls: TlsConfig | None = None
    keep: int | None = None
    log_filter: Filter | None = None


def _policy(value: object, what: str) -> FailurePolicy:
    try:
        return FailurePolicy(str(value))
    except ValueError:
        raise ConfigError(f"bad {what} {value!r}: 'reject' or 'close'") from None


def build_config(cli: CliOptions) -> ProxyConfig:
    """Join the TOML file (if any) and the command line into one checked configuration."""
    doc = load_toml(cli.config) if cli.config else {}
    known = {"listen", "upstream", "route", "timeouts", "limits", "access", "rewrite", "output"}
    unknown = set(doc) - known
    if unknown:
        raise ConfigError(f"config: unknown section(s): {', '.join(sorted(unknown))}")
    listeners = [Listener(parse_address(a, "listen address"), cli.tls) for a in cli.listen]
    raw_listen = doc.get("listen", [])
    for item in raw_listen if isinstance(raw_listen, list) else [raw_listen]:
        if isinstance(item, str):
            item = {"address": item}
        if not isinstance(item, dict) or "address" not in item:
            raise ConfigError("config: each [[listen]] needs an address")
        listeners.append(
            Listener(
                parse_address(str(item["address"]), "listen address"),
                _tls(item.get("tls"), "listener"),
            )
        )
    if not listeners:
        raise ConfigError(
            "nothing to listen on: give --listen HOST:PORT (or [[listen]] in --config)"
        )
    for lst in listeners:
        if lst.tls is not None:
            check_tls(lst.tls, "listener", server=True)

    up_doc = doc.get("upstream", {})
    if isinstance(up_doc, str):
        up_doc = {"address": up_doc}
    upstream = None
    upstream_tls = cli.upstream_tls
    if cli.upstream:
        upstream = parse_address(cli.upstream, "upstream address")
    elif up_doc.get("address"):
        upstream = parse_address(str(up_doc["address"]), "upstream address")
    if upstream_tls is None:
        upstream_tls = _tls(up_doc.get("tls"), "upstream")
    else:
        check_tls(upstream_tls, "upstream")

    routes: list[Route] = []
    for text in cli.routes:
        ae, sep, where = text.partition("=")
        if not sep:
            raise ConfigError(f"bad route {text!r}: expected CALLED_AE=HOST:PORT")
        routes.append(
            Route(_ae(ae, "route AE title"), parse_address(where, "route upstream"), upstream_tls)
        )
    raw_routes = doc.get("route", [])
    for item in raw_routes if isinstance(raw_routes, list) else []:
        if not isinstance(item, dict) or "called_ae" not in item or "upstream" not in item:
            raise ConfigError("config: each [[route]] needs called_ae and upstream")
        routes.append(
            Route(
                _ae(str(item["called_ae"]), "route AE title"),
                parse_address(str(item["upstream"]), "route upstream"),
                _tls(item.get("tls"), "route") or upstream_tls,
            )
        )
    listening = {(lst.address.host, lst.address.port) for lst in listeners}
    for target in [upstream, *(r.upstream for r in routes)]:
        if target is not None and (target.host, target.port) in listening:
            raise ConfigError(f"upstream {target} is the proxy's own listen address")
    if upstream is None and not routes:
        raise ConfigError("nowhere to relay to: give --upstream HOST:PORT or --route AE=HOST:PORT")

    t_doc = _table(doc, "timeouts")
    timeouts: dict[str, float] = {}
    for name in ("connect", "first_pdu", "idle", "write", "grace", "linger"):
        value = cli.timeouts.get(name)
        if value is None:
            value = t_doc.get(name)
        if value is not None:
            if not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"bad {name} timeout {value!r}: a positive number of seconds")
            timeouts[name] = float(value)

    l_doc = _table(doc, "limits")
    counts: dict[str, int] = {}
    for name in ("max_associations", "max_pending", "max_pending_per_ip"):
        value = getattr(cli, name) or l_doc.get(name, getattr(_DEFAULT_LIMITS, name))
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"bad {name} {value!r}: a positive integer")
        counts[name] = value
    parse_raw = cli.max_parse_pdu or l_doc.get("max_parse_pdu")
    max_parse = (
        parse_size(parse_raw, "max parse PDU") if parse_raw else _DEFAULT_LIMITS.max_parse_pdu
    )

    a_doc = _table(doc, "access")
    allow_ip = [*cli.allow_ip, *a_doc.get("allow_ip", [])]
    allow_ae = [*cli.allow_calling_ae, *a_doc.get("allow_calling_ae", [])]
    access = AccessConfig(
        allow_ip=tuple(_network(str(x)) for x in allow_ip),
        allow_calling_ae=tuple(_ae(str(x), "allowed calling AE title") for x in allow_ae),
        on_ip_refused=_policy(
            cli.on_ip_refused or a_doc.get("on_ip_refused", "reject"), "on_ip_refused"
        ),
    )

    r_doc = _table(doc, "rewrite")
    calling = dict(
        _mapping(f"{k}={v}", "calling AE rewrite") for k, v in _table(r_doc, "calling_ae").items()
    )
    calling.update(_mapping(x, "calling AE rewrite") for x in cli.rewrite_calling)
    called = dict(
        _mapping(f"{k}={v}", "called AE rewrite") for k, v in _table(r_doc, "called_ae").items()
    )
    called.update(_mapping(x, "called AE rewrite") for x in cli.rewrite_called)
    clamp = cli.clamp_max_pdu if cli.clamp_max_pdu is not None else r_doc.get("max_pdu")
    if clamp is not None and (not isinstance(clamp, int) or clamp < 4096):
        raise ConfigError(f"bad max PDU clamp {clamp!r}: an integer of at least 4096")

    o_doc = _table(doc, "output")
    pcap_max = cli.pcap_max_size or o_doc.get("pcap_max_size")
    log_max = cli.log_max_size or o_doc.get("log_max_size")
    keep_files = cli.keep_files if cli.keep_files is not None else o_doc.get("keep_files", 10)
    if not isinstance(keep_files, int) or keep_files < 1:
        raise ConfigError(f"bad keep_files {keep_files!r}: a positive integer")
    output = OutputConfig(
        jsonl=cli.jsonl or o_doc.get("jsonl"),
        pcap=cli.pcap or o_doc.get("pcap"),
        log=cli.log or o_doc.get("log"),
        pcap_max_size=parse_size(pcap_max, "pcap max size") if pcap_max else None,
        log_max_size=parse_size(log_max, "log max size") if log_max else None,
        keep_files=keep_files,
        quiet=cli.quiet or bool(o_doc.get("quiet", False)),
        log_filter=cli.log_filter,
    )
    on_failure = _policy(
        cli.on_upstream_failure or o_doc.get("on_upstream_failure", "reject"), "on_upstream_failure"
    )
    return ProxyConfig(
        listeners=tuple(listeners),
        upstream=upstream,
        upstream_tls=upstream_tls,
        routes=tuple(routes),
        timeouts=Timeouts(**timeouts),
        limits=Limits(**counts, max_parse_pdu=max_parse),
        access=access,
        rewrite=RewriteConfig(calling_ae=calling, called_ae=called, max_pdu=clamp),
        output=output,
        on_upstream_failure=on_failure,
        keep=cli.keep if cli.keep is not None else DEFAULT_KEEP,
    )
