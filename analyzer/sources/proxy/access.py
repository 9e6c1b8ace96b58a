"""Who may use the proxy, and the answer a refused client gets.

Every refusal has a PS3.8 Table 9-21 A-ASSOCIATE-RJ (result, source, reason) so that a
client that sent an A-ASSOCIATE-RQ gets a valid answer rather than a dropped connection
(unless the configuration says to just close).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from dissectors.pdu import AssociateRj, RejectResult, RejectSource

from .config import AccessConfig

__all__ = [
    "CALLED_AE_UNKNOWN",
    "CALLING_AE_NOT_ALLOWED",
    "IP_NOT_ALLOWED",
    "OVER_LIMIT",
    "RQ_TOO_LARGE",
    "UPSTREAM_UNREACHABLE",
    "AccessPolicy",
    "Refusal",
]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a client is turned away, and the A-ASSOCIATE-RJ that says so."""

    code: str
    text: str
    result: RejectResult
    source: RejectSource
    reason: int

    def reject_pdu(self) -> bytes:
        """The encoded A-ASSOCIATE-RJ."""
        return AssociateRj(self.result, self.source, self.reason).encode()

    @property
    def codes(self) -> str:
        return f"RJ {int(self.result)}/{int(self.source)}/{self.reason}"


_PERMANENT, _TRANSIENT = RejectResult.REJECTED_PERMANENT, RejectResult.REJECTED_TRANSIENT
_USER, _PRESENTATION = RejectSource.SERVICE_USER, RejectSource.SERVICE_PROVIDER_PRESENTATION

IP_NOT_ALLOWED = Refusal("ip-not-allowed", "client address not allowed", _PERMANENT, _USER, 1)
"""Reason 1: no-reason-given (PS3.8 has no reason for an address)."""
CALLING_AE_NOT_ALLOWED = Refusal(
    "calling-ae-not-allowed", "calling AE title not recognized", _PERMANENT, _USER, 3
)
CALLED_AE_UNKNOWN = Refusal(
    "called-ae-unknown", "no route for the called AE title", _PERMANENT, _USER, 7
)
OVER_LIMIT = Refusal("over-limit", "too many concurrent associations", _TRANSIENT, _PRESENTATION, 2)
"""Reason 2 of source 3: local-limit-exceeded, as pynetdicom answers."""
UPSTREAM_UNREACHABLE = Refusal(
    "upstream-unreachable", "upstream unreachable", _TRANSIENT, _PRESENTATION, 1
)
"""Reason 1 of source 3: temporary-congestion; transient, so the client may retry."""
RQ_TOO_LARGE = Refusal("rq-too-large", "A-ASSOCIATE-RQ too large", _PERMANENT, _PRESENTATION, 2)
"""Reason 2 of source 3: local-limit-exceeded (the proxy will not buffer it)."""


class AccessPolicy:
    """Allow lists by client address (IP or CIDR) and calling AE title; empty allows all."""

    def __init__(self, config: AccessConfig) -> None:
        self._networks = config.allow_ip
        self._titles = frozenset(config.allow_calling_ae)

    def ip_allowed(self, ip: str) -> bool:
        """Whether a client at ``ip`` may connect."""
        if not self._networks:
            return True
        try:
            address = ipaddress.ip_address(ip.split("%")[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address.version == n.version and address in n for n in self._networks)

    def calling_allowed(self, title: str) -> bool:
        """Whether ``title`` (spaces stripped) may associate."""
        return not self._titles or title in self._titles
