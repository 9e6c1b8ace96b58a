"""Consistent pseudonyms for hosts (``--pseudonymize-hosts``): AE titles, IP and MAC
addresses. The same original gets the same pseudonym everywhere in the capture, in the order
first seen.

AE titles become ``HOST1``, ``HOST2``... padded to the original's length (16 bytes in an
A-ASSOCIATE PDU); IPv4 addresses come from the documentation ranges (192.0.2.0/24,
198.51.100.0/24, 203.0.113.0/24, then 10.0.0.0/8), IPv6 ones from 2001:db8::/32, MAC
addresses are locally administered (02:00:00:xx:xx:xx). Loopback and unspecified addresses are
kept (they identify no host).
"""

from __future__ import annotations

import ipaddress

_V4_BLOCKS = ("192.0.2.0", "198.51.100.0", "203.0.113.0")


class AeMap:
    """AE title → ``HOSTn`` of the same length."""

    def __init__(self) -> None:
        self._out: dict[bytes, bytes] = {}

    def replace(self, raw: bytes) -> bytes:
        text = raw.strip(b" \0")
        if not text:
            return raw
        name = self._out.get(text)
        if name is None:
            name = self._out[text] = f"HOST{len(self._out) + 1}".encode()
        return name[: len(raw)].ljust(len(raw), b" ") if len(raw) >= 1 else raw

    @property
    def titles(self) -> dict[bytes, bytes]:
        return dict(self._out)


class AddressMap:
    """IP (packed, 4 or 16 bytes) and MAC (6 bytes) addresses → pseudonyms of the same size."""

    def __init__(self) -> None:
        self._ip: dict[bytes, bytes] = {}
        self._mac: dict[bytes, bytes] = {}

    def ip(self, packed: bytes) -> bytes:
        found = self._ip.get(packed)
        if found is not None:
            return found
        address = ipaddress.ip_address(packed)
        if address.is_loopback or address.is_unspecified or address.is_multicast:
            out = packed
        elif address.version == 4:
            n = sum(1 for k in self._ip if len(k) == 4 and self._ip[k] != k)
            if n < 3 * 254:
                base = ipaddress.IPv4Address(_V4_BLOCKS[n // 254])
                out = (base + 1 + n % 254).packed
            else:
                out = (ipaddress.IPv4Address("10.0.0.1") + n).packed
        else:
            n = sum(1 for k in self._ip if len(k) == 16 and self._ip[k] != k)
            out = (ipaddress.IPv6Address("2001:db8::1") + n).packed
        self._ip[packed] = out
        return out

    def mac(self, raw: bytes) -> bytes:
        if raw == b"\xff" * 6 or raw == bytes(6) or raw[0] & 1:
            return raw  # broadcast, none, multicast
        found = self._mac.get(raw)
        if found is None:
            found = self._mac[raw] = b"\x02\x00\x00" + (len(self._mac) + 1).to_bytes(3, "big")
        return found

    def ip_text(self, text: str) -> str:
        """The pseudonym of an address in text form (for comparing reports)."""
        try:
            return str(ipaddress.ip_address(self.ip(ipaddress.ip_address(text).packed)))
        except ValueError:
            return text
