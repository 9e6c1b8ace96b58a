"""What the copy keys put on the clipboard (headless: no Textual here).

:func:`display_filter` is a Wireshark display filter for one association: its two
addresses and ports, and, when the store was read from one capture file, its frame range
(so a port reused later in the capture is not included; with several files, numbered
within the file, as Wireshark opens it). :func:`identifiers` is the AE
titles and UIDs of an association or an exchange, escaped (they are wire text).
"""

from __future__ import annotations

import ipaddress

from analyzer.model import Association, Exchange
from analyzer.store import SourceInfo
from analyzer.textsafe import printable

from .frames import FrameNames


def display_filter(a: Association, frames: FrameNames | None = None) -> str:
    """``ip.addr==A && ip.addr==B && tcp.port==P && tcp.port==Q``, and the association's
    frame range when it lies in one capture file (``frames`` names frames by file; None
    when the store was not read from capture files)."""
    field = "ip.addr"
    if any(ipaddress.ip_address(e.ip).version == 6 for e in (a.client, a.server)):
        field = "ipv6.addr"
    parts = [
        f"{field}=={a.client.ip}",
        f"{field}=={a.server.ip}",
        f"tcp.port=={a.client.port}",
        f"tcp.port=={a.server.port}",
    ]
    if frames is not None and a.start_frame is not None and a.end_frame is not None:
        (first_file, first), (last_file, last) = (
            frames.locate(a.start_frame),
            frames.locate(a.end_frame),
        )
        if first_file == last_file:
            parts.append(f"frame.number>={first} && frame.number<={last}")
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


def frame_names(source: SourceInfo) -> FrameNames | None:
    """How frames are named in a filter; None when the store was not read from capture
    files (a proxy without a pcapng numbers no frame Wireshark could open)."""
    return FrameNames.of(source) if source.frame_bases else None
