"""Frames → TCP segments: link layers, IPv4/IPv6, IP fragment reassembly, TCP.

:class:`PacketDecoder` turns one captured frame (whatever its link type) into a
:class:`dissectors.tcp.Segment`, or ``None`` for anything that is not a decodable TCP
segment, counting what it skips in its :class:`DecodeStats`. It never raises for bad
packet bytes: a capture holds whatever was on the wire.

It works on offsets into a caller's buffer (:meth:`PacketDecoder.decode_at`) so that a
capture reader can hand it a slice of its read buffer without copying the frame; the
payload of a segment is always a fresh ``bytes`` copy, never a view into that buffer (the
TCP reassembler keeps payloads for a while, and a view would pin a whole read chunk).
For the same reason a frame given as a ``memoryview`` is copied first.

IPv4 and IPv6 fragments are reassembled (:class:`FragmentTable`); the segment comes at the
frame that completes its datagram. Padding and trailers after the IP datagram are ignored:
the IP length, not the frame's, ends it. A frame the snap length cut gives a segment whose
``missing`` counts the payload bytes that were on the wire but not in the capture.

Link types are the values of the tcpdump.org LINKTYPE_ registry (what pcap and pcapng
files store), not a platform's DLT_ values.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache

from dissectors.tcp import Segment

# --- link types (tcpdump.org/linktypes.html) -------------------------------------------
LINKTYPE_NULL = 0  #: BSD loopback: 4-byte address family in the capturing host's byte order
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_BSD12 = 12  #: raw IP as some BSDs wrote DLT_RAW into files
LINKTYPE_RAW_BSD14 = 14  #: raw IP as OpenBSD wrote DLT_RAW into files
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108  #: OpenBSD loopback: the address family in network byte order
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276


@lru_cache(maxsize=1)
def _linktype_names() -> dict[int, str]:
    # dpkt is imported only here, for a message: it costs a quarter of a second at start-up.
    import dpkt.pcap

    names: dict[int, str] = {}
    for name, value in sorted(vars(dpkt.pcap).items()):
        if name.startswith("DLT_") and isinstance(value, int):
            names.setdefault(value, name[4:])
    return names


def linktype_text(linktype: int) -> str:
    """``147 (USER0)``: a link type with the name libpcap gives it (dpkt's table)."""
    name = _linktype_names().get(linktype)
    return f"{linktype} ({name})" if name else str(linktype)


_ETH_IPV4 = 0x0800
_ETH_IPV6 = 0x86DD
#: 802.1Q, 802.1ad (QinQ) and the pre-standard QinQ tag types some switches still send.
_VLAN_TYPES = frozenset({0x8100, 0x88A8, 0x9100, 0x9200, 0x9300})
#: AF_INET6 differs between systems: 24 (NetBSD, OpenBSD), 28 (FreeBSD), 30 (macOS), 10 (Linux).
_AF_INET = 2
_AF_INET6 = frozenset({10, 24, 28, 30})

_PROTO_TCP = 6
#: IPv6 extension headers walked over on the way to TCP (hop-by-hop, routing, destination).
_IPV6_EXT = frozenset({0, 43, 60})
_IPV6_FRAGMENT = 44
_IPV6_AH = 51

_U16 = struct.Struct("!H")
_U32_LE = struct.Struct("<I")
_U32_BE = struct.Struct("!I")
_EXT = struct.Struct("!BB")
_IPV4 = struct.Struct("!BxHHHxB2x4s4s")  # vhl, total length, id, flags+offset, proto, src, dst
_IPV6 = struct.Struct("!4xHB1x16s16s")  # payload length, next header, src, dst
_IPV6_FRAG = struct.Struct("!BxHI")  # next header, offset+M, identification
_TCP = struct.Struct("!HHIIBBH")  # sport, dport, seq, ack, data offset, flags, window
_ETH_IPV4_TCP = struct.Struct("!12xHBxHHHxB2x4s4sHHIIBBH")  # EtherType + _IPV4 + _TCP

# Segment is a NamedTuple; tuple.__new__ builds one without the generated Python-level
# __new__, which is a measurable part of the per-packet cost. Every field is given (the last,
# ``injected``, is False: a capture cannot tell).
_new_tuple = tuple.__new__

#: Limits of IP fragment reassembly (memory stays bounded whatever the capture holds).
FRAGMENT_TIMEOUT_NS = 30 * 1_000_000_000
MAX_PENDING_DATAGRAMS = 1024
MAX_PENDING_BYTES = 16 << 20
DUPLICATE_WINDOW_NS = 1_000_000_000


@dataclass(slots=True)
class DecodeStats:
    """What :class:`PacketDecoder` skipped or rebuilt, updated while decoding."""

    non_tcp: int = 0
    """Frames that were not TCP (ARP, UDP, ICMP, other EtherTypes)."""
    undecodable: int = 0
    """Frames too short or malformed to decode, including those whose fixed 20-byte TCP
    header the snap length cut (a cut in the TCP options still gives a segment)."""
    snaplen_cut: int = 0
    """TCP segments whose payload was cut by the snap length (``missing`` > 0)."""
    fragments: int = 0
    """Frames that carried an IP fragment (of TCP, or IPv6 with an unknown upper layer)."""
    fragments_reassembled: int = 0
    """IP datagrams rebuilt from fragments."""
    fragments_incomplete: int = 0
    """Fragmented datagrams given up (timed out, evicted, or still incomplete at the end)."""
    unsupported_linktypes: dict[int, int] = field(default_factory=dict)
    """Frames skipped per link type this decoder does not understand."""


class _Datagram:
    """One fragmented datagram being rebuilt."""

    __slots__ = ("first_ts", "frags", "nxt", "size", "total")

    def __init__(self, ts: int) -> None:
        self.first_ts = ts
        #: (offset, length on the wire, captured bytes), in arrival order.
        self.frags: list[tuple[int, int, bytes]] = []
        self.total: int | None = None
        self.size = 0
        self.nxt = -1  # upper-layer protocol, once the first fragment is seen (IPv6)


class FragmentTable:
    """IP fragment reassembly with bounded memory.

    Fragments may arrive in any order and overlap (the first copy of a byte wins, as
    Windows and the BSDs do). A datagram whose fragments do not all arrive within
    ``timeout_ns`` of capture time is dropped; so are the oldest when more than
    ``max_datagrams`` or ``max_bytes`` are pending. A fragment of a datagram completed less
    than ``duplicate_window_ns`` before is a duplicate (the capture saw it twice, or a
    router sent it twice), not the start of a new datagram: it is ignored.
    """

    def __init__(
        self,
        *,
        timeout_ns: int = FRAGMENT_TIMEOUT_NS,
        max_datagrams: int = MAX_PENDING_DATAGRAMS,
        max_bytes: int = MAX_PENDING_BYTES,
        duplicate_window_ns: int = DUPLICATE_WINDOW_NS,
    ) -> None:
        self._timeout = timeout_ns
        self._window = duplicate_window_ns
        self._done: OrderedDict[tuple[object, ...], int] = OrderedDict()  # key → completed at
        self._max_datagrams = max_datagrams
        self._max_bytes = max_bytes
        self._pending: OrderedDict[tuple[object, ...], _Datagram] = OrderedDict()
        self._bytes = 0
        self.dropped = 0
        """Datagrams given up so far (timed out or evicted)."""
        self.duplicates = 0
        """Fragments that arrived after their datagram was complete."""

    def __len__(self) -> int:
        return len(self._pending)

    def add(
        self,
        key: tuple[object, ...],
        ts: int,
        offset: int,
        more: bool,
        data: bytes,
        wire_len: int,
        nxt: int,
    ) -> tuple[bytes, int, int, int] | None:
        """Add one fragment; when it completes its datagram, return the datagram.

        ``data`` is what was captured of the fragment, ``wire_len`` its length on the wire
        (more when the snap length cut it). ``nxt`` is the upper-layer protocol if this is
        the first fragment. The result is ``(data, captured, total, nxt)``: the rebuilt
        payload, how many of its leading bytes were captured without a hole, its length on
        the wire, and the upper-layer protocol.
        """
        self._expire(ts)
        pending = self._pending
        dgram = pending.get(key)
        if dgram is None:
            done = self._done.get(key)
            if done is not None and ts - done < self._window:
                self.duplicates += 1
                return None
            dgram = pending[key] = _Datagram(ts)
        dgram.frags.append((offset, wire_len, data))
        dgram.size += len(data)
        self._bytes += len(data)
        if offset == 0:
            dgram.nxt = nxt
        if not more and dgram.total is None:
            dgram.total = offset + wire_len
        total = dgram.total
        if total is not None and dgram.nxt >= 0:
            covered = 0
            for off, wl, _ in sorted(dgram.frags):
                if off > covered:
                    break
                covered = max(covered, off + wl)
            if covered >= total:
                del pending[key]
                self._bytes -= dgram.size
                done_keys = self._done
                done_keys[key] = ts
                done_keys.move_to_end(key)
                if len(done_keys) > self._max_datagrams:
                    done_keys.popitem(last=False)
                return self._assemble(dgram, total)
        while len(pending) > self._max_datagrams or self._bytes > self._max_bytes:
            self._drop_oldest()
        return None

    @staticmethod
    def _assemble(dgram: _Datagram, total: int) -> tuple[bytes, int, int, int]:
        out = bytearray(total)
        for off, _, data in reversed(dgram.frags):  # earliest last: the first copy wins
            chunk = data[: max(0, total - off)]
            out[off : off + len(chunk)] = chunk
        captured = 0
        for off, _, data in sorted(dgram.frags):
            if off > captured:
                break  # a fragment the snap length cut leaves a hole here
            captured = max(captured, off + len(data))
        return bytes(out), min(captured, total), total, dgram.nxt

    def _expire(self, ts: int) -> None:
        pending = self._pending
        limit = ts - self._timeout
        while pending:
            oldest = next(iter(pending.values()))
            if oldest.first_ts >= limit:
                break
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        _, dgram = self._pending.popitem(last=False)
        self._bytes -= dgram.size
        self.dropped += 1


class PacketDecoder:
    """Decodes captured frames into TCP segments, counting what it skips in :attr:`stats`."""

    def __init__(
        self, stats: DecodeStats | None = None, fragments: FragmentTable | None = None
    ) -> None:
        self.stats = stats if stats is not None else DecodeStats()
        self.fragments = fragments if fragments is not None else FragmentTable()

    def decode(
        self,
        ts: int,
        frame: int | None,
        linktype: int,
        data: bytes | bytearray | memoryview,
        orig_len: int,
    ) -> Segment | None:
        """Decode one frame: ``data`` as captured, ``orig_len`` its length on the wire."""
        if not isinstance(data, bytes):
            data = bytes(data)
        return self.decode_at(ts, frame, linktype, data, 0, len(data), orig_len)

    def finish(self) -> None:
        """The capture ended: count the datagrams whose fragments never all arrived."""
        frags = self.fragments
        self.stats.fragments_incomplete = frags.dropped + len(frags)

    def decode_at(
        self,
        ts: int,
        frame: int | None,
        linktype: int,
        buf: bytes,
        off: int,
        end: int,
        orig_len: int,
    ) -> Segment | None:
        """Like :meth:`decode`, for the frame at ``buf[off:end]`` (no copy of the frame).

        ``buf`` may go on past ``end`` (a reader's buffer holds the next records): every
        read is checked against ``end``.
        """
        if linktype == LINKTYPE_ETHERNET and end - off >= 54:
            # The common case, Ethernet + IPv4 without options + TCP, in one unpack.
            (
                etype,
                vhl,
                total,
                _,
                frag,
                proto,
                src,
                dst,
                sport,
                dport,
                seq,
                ack,
                doff,
                flags,
                win,
            ) = _ETH_IPV4_TCP.unpack_from(buf, off)
            if etype == _ETH_IPV4 and vhl == 0x45 and proto == _PROTO_TCP and not frag & 0x3FFF:
                ip_end = off + 14 + total
                start = off + 34 + ((doff >> 4) << 2)
                if ip_end <= end and start <= ip_end and doff >= 0x50:
                    return _new_tuple(
                        Segment,
                        (
                            ts,
                            frame,
                            src,
                            sport,
                            dst,
                            dport,
                            seq,
                            ack,
                            flags,
                            buf[start:ip_end],
                            0,
                            False,
                            win,
                        ),
                    )
        lost = orig_len - (end - off)  # bytes the snap length cut off the end of the frame
        if lost < 0:
            lost = 0
        if linktype == LINKTYPE_ETHERNET:
            off += 14
            if off > end:
                self.stats.undecodable += 1
                return None
            etype = _U16.unpack_from(buf, off - 2)[0]
        elif linktype == LINKTYPE_LINUX_SLL:
            off += 16
            if off > end:
                self.stats.undecodable += 1
                return None
            etype = _U16.unpack_from(buf, off - 2)[0]
        elif linktype == LINKTYPE_LINUX_SLL2:
            if off + 20 > end:
                self.stats.undecodable += 1
                return None
            etype = _U16.unpack_from(buf, off)[0]
            off += 20
        elif linktype in (LINKTYPE_RAW, LINKTYPE_RAW_BSD12, LINKTYPE_RAW_BSD14):
            if off >= end:
                self.stats.undecodable += 1
                return None
            version = buf[off] >> 4
            etype = _ETH_IPV4 if version == 4 else _ETH_IPV6 if version == 6 else -1
        elif linktype == LINKTYPE_IPV4:
            etype = _ETH_IPV4
        elif linktype == LINKTYPE_IPV6:
            etype = _ETH_IPV6
        elif linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
            off += 4
            if off > end:
                self.stats.undecodable += 1
                return None
            # The family is in the capturing host's byte order (NULL) or network order
            # (LOOP, though some writers got that wrong): accept either.
            family = _U32_LE.unpack_from(buf, off - 4)[0]
            if family > 0xFFFF:
                family = _U32_BE.unpack_from(buf, off - 4)[0]
            etype = _ETH_IPV4 if family == _AF_INET else _ETH_IPV6 if family in _AF_INET6 else -1
        else:
            unsupported = self.stats.unsupported_linktypes
            unsupported[linktype] = unsupported.get(linktype, 0) + 1
            return None
        while etype in _VLAN_TYPES:  # 802.1Q / QinQ tags: TCI, then the next EtherType
            off += 4
            if off > end:
                self.stats.undecodable += 1
                return None
            etype = _U16.unpack_from(buf, off - 2)[0]
        if etype == _ETH_IPV4:
            return self._ipv4(ts, frame, buf, off, end, lost)
        if etype == _ETH_IPV6:
            return self._ipv6(ts, frame, buf, off, end, lost)
        self.stats.non_tcp += 1
        return None

    def _ipv4(
        self, ts: int, frame: int | None, buf: bytes, off: int, end: int, lost: int
    ) -> Segment | None:
        if off + 20 > end:
            self.stats.undecodable += 1
            return None
        vhl, total, ident, frag, proto, src, dst = _IPV4.unpack_from(buf, off)
        ihl = (vhl & 0x0F) << 2
        if vhl >> 4 != 4 or ihl < 20 or (total and total < ihl) or off + ihl > end:
            self.stats.undecodable += 1
            return None
        # The IP total length, not the frame, ends the datagram: that strips Ethernet
        # padding and trailers. It is 0 in segments the NIC was to split (TSO): use the
        # frame then. Bytes past the captured end were on the wire only if the snap length
        # cut the frame (``lost``), never more than it cut.
        wire_end = min(off + total, end + lost) if total else end + lost
        cap_end = min(end, wire_end)
        if frag & 0x3FFF:  # more-fragments flag or a non-zero offset
            if proto != _PROTO_TCP:
                self.stats.non_tcp += 1
                return None
            self.stats.fragments += 1
            body = buf[off + ihl : cap_end]
            done = self.fragments.add(
                (src, dst, ident, proto),
                ts,
                (frag & 0x1FFF) << 3,
                bool(frag & 0x2000),
                body,
                wire_end - off - ihl,
                proto,
            )
            if done is None:
                return None
            self.stats.fragments_reassembled += 1
            data, captured, length, _ = done
            return self._tcp(ts, frame, src, dst, data, 0, captured, length)
        if proto != _PROTO_TCP:
            self.stats.non_tcp += 1
            return None
        return self._tcp(ts, frame, src, dst, buf, off + ihl, cap_end, wire_end)

    def _ipv6(
        self, ts: int, frame: int | None, buf: bytes, off: int, end: int, lost: int
    ) -> Segment | None:
        if off + 40 > end or buf[off] >> 4 != 6:
            self.stats.undecodable += 1
            return None
        plen, nxt, src, dst = _IPV6.unpack_from(buf, off)
        off += 40
        # A payload length of 0 is a jumbogram or a segment the NIC was to split: use the frame.
        wire_end = min(off + plen, end + lost) if plen else end + lost
        cap_end = min(end, wire_end)
        reassembled = False
        while nxt != _PROTO_TCP:
            if nxt in _IPV6_EXT or nxt == _IPV6_AH:
                if off + 2 > cap_end:
                    self.stats.undecodable += 1
                    return None
                nh, hlen = _EXT.unpack_from(buf, off)
                off += (hlen + 2) << 2 if nxt == _IPV6_AH else (hlen + 1) << 3
            elif nxt == _IPV6_FRAGMENT and not reassembled:
                if off + 8 > cap_end:
                    self.stats.undecodable += 1
                    return None
                nh, offmf, ident = _IPV6_FRAG.unpack_from(buf, off)
                off += 8
                if offmf & 0xFFF9:  # a real fragment, not an "atomic" one (RFC 6946)
                    self.stats.fragments += 1
                    body = buf[off:cap_end]
                    done = self.fragments.add(
                        (src, dst, ident),
                        ts,
                        offmf & 0xFFF8,
                        bool(offmf & 1),
                        body,
                        wire_end - off,
                        nh,
                    )
                    if done is None:
                        return None
                    self.stats.fragments_reassembled += 1
                    # Go on with the headers after the fragment header, in the rebuilt payload.
                    buf, cap_end, wire_end, nh = done
                    off = 0
                    reassembled = True
            else:
                self.stats.non_tcp += 1  # UDP, ICMPv6, ESP, "no next header", ...
                return None
            nxt = nh
        return self._tcp(ts, frame, src, dst, buf, off, cap_end, wire_end)

    def _tcp(
        self,
        ts: int,
        frame: int | None,
        src: bytes,
        dst: bytes,
        buf: bytes,
        off: int,
        cap_end: int,
        wire_end: int,
    ) -> Segment | None:
        """The TCP segment at ``buf[off:cap_end]``, which was ``buf[off:wire_end]`` on the wire."""
        if off + 20 > cap_end:
            self.stats.undecodable += 1  # includes a TCP header the snap length cut
            return None
        sport, dport, seq, ack, doff, flags, win = _TCP.unpack_from(buf, off)
        start = off + ((doff >> 4) << 2)
        if start < off + 20 or start > wire_end:
            self.stats.undecodable += 1  # a data offset that is impossible
            return None
        if start > cap_end:
            # The snap length cut the TCP options: what counts (ports, numbers, flags, and
            # how much payload there was) is still known.
            missing = wire_end - start
            start = cap_end
        else:
            missing = wire_end - cap_end
        if missing > 0:
            self.stats.snaplen_cut += 1
        else:
            missing = 0
        return _new_tuple(
            Segment,
            (
                ts,
                frame,
                src,
                sport,
                dst,
                dport,
                seq,
                ack,
                flags,
                buf[start:cap_end],
                missing,
                False,  # injected: a capture cannot tell
                win,
            ),
        )
