"""The logging proxy (``dicomtap proxy``): relays DICOM associations byte for byte and
observes them with the same observer as the capture path.

Modules: :mod:`.config` (the options as dataclasses) and :mod:`.options` (CLI + TOML),
:mod:`.server` (listeners, shutdown, :func:`run_proxy`), :mod:`.runtime` (what sessions
share), :mod:`.session` (one connection up to the relay: A-ASSOCIATE-RQ, decisions, upstream
connect), :mod:`.relay` (both sides relayed, timeouts, aborts), :mod:`.sides` (the asyncio
protocol of one socket), :mod:`.transport` (socket helpers), :mod:`.records` (what the relay
tells recording), :mod:`.recorder` (recording on the relay's thread), :mod:`.recproc`
(recording in a process of its own: :mod:`.recchild` that process, :mod:`.recwire` the pipe
to it), :mod:`.tap` (observation and packets of the client
leg), :mod:`.pcapng` (the capture writer), :mod:`.access` (allow lists and refusals),
:mod:`.rewrite` (opt-in PDU rewrites), :mod:`.log` (live log and JSON Lines), :mod:`.tls`
(SSL contexts).
"""

from .config import Address, ConfigError, ProxyConfig, parse_address
from .server import run_proxy, serve

__all__ = ["Address", "ConfigError", "ProxyConfig", "parse_address", "run_proxy", "serve"]
