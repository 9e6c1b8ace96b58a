"""Renumbering inside a captured command set, byte for byte.

A replayed response must name the live request it answers: its Message ID Being Responded
To (0000,0120) is set to the live request's Message ID. The value is a US (2 bytes) in an
Implicit VR Little Endian command set, so the command set keeps its length and every other
byte (element order, padding, elements outside the dictionary) stays as captured.
"""

from __future__ import annotations

import struct

__all__ = ["MESSAGE_ID", "MESSAGE_ID_BEING_RESPONDED_TO", "set_us"]

_ELEMENT = struct.Struct("<HHI")
_US = struct.Struct("<H")

#: (0000,0110) and (0000,0120), as (group, element).
MESSAGE_ID = (0x0000, 0x0110)
MESSAGE_ID_BEING_RESPONDED_TO = (0x0000, 0x0120)


def set_us(raw: bytes, tag: tuple[int, int], value: int) -> bytes | None:
    """``raw`` with the US element ``tag`` set to ``value``; None when ``raw`` holds no such
    element of length 2 (or cannot be walked: a declared length runs past its end)."""
    pos = 0
    end = len(raw)
    while end - pos >= _ELEMENT.size:
        group, element, length = _ELEMENT.unpack_from(raw, pos)
        value_at = pos + _ELEMENT.size
        if value_at + length > end:
            return None
        if (group, element) == tag:
            if length != 2:
                return None
            out = bytearray(raw)
            _US.pack_into(out, value_at, value & 0xFFFF)
            return bytes(out)
        pos = value_at + length
    return None
