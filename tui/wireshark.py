"""What the copy keys put on the clipboard (headless: no Textual here).

:func:`display_filter` is a Wireshark display filter for one association: its two
addresses and ports, and, when the store was read from one capture file, its frame range
(so a port reused later in the capture is not included). :func:`identifiers` is the AE
titles and UIDs of an association or an exchange, escaped (they are wire text).
"""

from __future__ import annotations

import ipaddress

from analyzer.model import Association, Exchange
from analyzer.textsafe import printable


def display_filter(a: Association, *, single_file: bool) -> str:
    """``ip.addr==A && ip.addr==B && tcp.port==P && tcp.port==Q`` (and the frames)."""
    field = "ip.addr"
    if any(ipaddress.ip_address(e.ip).version == 6 for e in (a.client, a.server)):
        field = "ipv6.addr"
    parts = [
        f"{field}=={a.client.ip}",
        f"{field}=={a.server.ip}",
        f"tcp.port=={a.client.port}",
        f"tcp.port=={a.server.port}",
    ]
    if single_file and a.start_frame is not None and a.end_frame is not None:
        parts.append(f"frame.number>={a.start_frame} && frame.number<={a.end_frame}")
    return " && ".join(parts)


def identifiers(a: Association, e: Exchange | None = None) -> str:
    """``calling=… called=…`` and, for an exchange, its SOP class and instance UIDs."""
    parts = [
        f"calling={a.calling_ae_title or '-'}",
        f"called={a.called_ae_title or '-'}",
    ]
    if e is not None:
        if e.sop_class:
            parts.append(f"sop_class={e.sop_class}")
        if e.sop_instance:
            parts.append(f"sop_instance={e.sop_instance}")
    return printable(" ".join(parts))
