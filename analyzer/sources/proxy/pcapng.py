"""What the proxy relayed, as TCP segments and a pcapng file that Wireshark, tshark and
``dicomtap analyze`` read.

The proxy sees byte streams, not packets, so it synthesizes them: a :class:`TcpLeg` turns one
relayed connection into :class:`~dissectors.tcp.Segment` s with consistent sequence and
acknowledgement numbers (a three-way handshake when it opens, FIN or RST when it closes,
payloads cut at :data:`MAX_PAYLOAD` bytes). The same segments go to the pcapng file and, for
the client leg, to the flow table that observes it, so what the proxy reports is what
``dicomtap analyze`` reports on its file.

Packets and the file are built with dpkt (Ethernet, IPv4 or IPv6, TCP; ``dpkt.pcapng.Writer``).
Two interfaces: IDB 0 is the *client leg* (client ↔ the proxy's listen address), IDB 1 the
*upstream leg* (the proxy's upstream socket ↔ the upstream). Timestamps are the real times
the bytes were read or written, in nanoseconds (``if_tsresol`` = 9). Bytes the proxy wrote
itself (an A-ASSOCIATE-RJ or A-ABORT it sent) carry an ``opt_comment`` saying so.

:class:`PcapngWriter` streams through a :class:`~.writer.BackgroundWriter`: it numbers the
frames at once and leaves packing and writing to the writer thread. With ``max_size`` it
rotates: ``relay.pcapng``, then ``relay.1.pcapng``, ``relay.2.pcapng`` ... keeping the newest
``keep`` files. Frame numbers continue across files, as ``dicomtap analyze`` numbers them
when it reads the files in order.
"""

from __future__ import annotations

import ipaddress
import os
import random
from collections.abc import Callable
from enum import IntEnum
from pathlib import Path
from typing import BinaryIO

import dpkt

from analyzer.sources.pcap import INJECTED_COMMENT
from dissectors.tcp import ACK, FIN, RST, SYN, Segment

from .writer import BackgroundWriter, Batch

__all__ = ["INJECTED", "MAX_PAYLOAD", "Interface", "PcapngWriter", "TcpLeg"]

#: Payload bytes per synthesized packet (an IPv4 datagram holds at most 65,515).
MAX_PAYLOAD = 65_000
#: The comment on packets whose bytes the proxy wrote itself.
INJECTED = INJECTED_COMMENT  # read back by the pcapng reader: a third party's bytes

PSH = 0x08
Comment = str | tuple[str, ...] | None
"""A packet's comment, or its comments (one ``opt_comment`` each)."""
_MAC_CLIENT = bytes.fromhex("020000000001")
_MAC_SERVER = bytes.fromhex("020000000002")


class Interface(IntEnum):
    """The two interfaces of the file."""

    CLIENT_LEG = 0
    UPSTREAM_LEG = 1


def _option(code: int, value: bytes | str) -> dpkt.pcapng.PcapngOptionLE:
    if code == dpkt.pcapng.PCAPNG_OPT_COMMENT:  # dpkt encodes comments from ``text``
        return dpkt.pcapng.PcapngOptionLE(code=code, text=value)
    data = value.encode() if isinstance(value, str) else value
    return dpkt.pcapng.PcapngOptionLE(code=code, data=data)


_END = (dpkt.pcapng.PCAPNG_OPT_ENDOFOPT, b"")


def _options(*items: tuple[int, bytes | str]) -> list[dpkt.pcapng.PcapngOptionLE]:
    return [_option(code, value) for code, value in (*items, _END)]


class PcapngWriter:
    """Streams packets into a pcapng file (with rotation by size). With ``output`` None the
    file is written at once (tests); else on the writer thread."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_size: int | None = None,
        keep: int = 10,
        application: str = "dicomtap proxy",
        output: BackgroundWriter | None = None,
    ) -> None:
        self.path = Path(path)
        self.max_size = max_size
        self.keep = keep
        self.frames = 0
        """Packets written so far (the frame number of the last one)."""
        self.files: list[Path] = []
        self._application = application
        self._output = output
        # The file state below is used on the writer thread only.
        self._index = 0
        self._size = 0
        self._epb = dpkt.pcapng.EnhancedPacketBlockLE()
        self._file, self._writer = self._open(self.path)
        self._batch: Batch[tuple[Interface, int, bytes, Comment]] | None = None
        if output is not None:
            self._batch = Batch(output, self._write_all)

    def _open(self, path: Path) -> tuple[BinaryIO, dpkt.pcapng.Writer]:
        # Captures hold what patients' images and names look like: owner-only permissions.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        f = os.fdopen(fd, "wb", buffering=1 << 20)
        shb = dpkt.pcapng.SectionHeaderBlockLE(
            opts=_options((dpkt.pcapng.PCAPNG_OPT_SHB_USERAPPL, self._application))
        )
        idbs = [
            dpkt.pcapng.InterfaceDescriptionBlockLE(
                linktype=dpkt.pcap.DLT_EN10MB,
                snaplen=0,  # no limit
                opts=_options(
                    (dpkt.pcapng.PCAPNG_OPT_IF_NAME, name),
                    (dpkt.pcapng.PCAPNG_OPT_IF_DESCRIPTION, description),
                    (dpkt.pcapng.PCAPNG_OPT_IF_TSRESOL, b"\x09"),  # nanoseconds
                ),
            )
            for name, description in (
                ("client leg", "client <-> proxy listen address"),
                ("upstream leg", "proxy upstream socket <-> upstream"),
            )
        ]
        writer = dpkt.pcapng.Writer(f, shb=shb, idb=idbs)
        self._size = f.tell()
        self.files.append(path)
        return f, writer

    def _rotate(self) -> None:
        self._file.close()
        self._index += 1
        stem = self.path.name.removesuffix(".pcapng")
        self._file, self._writer = self._open(self.path.with_name(f"{stem}.{self._index}.pcapng"))
        while len(self.files) > self.keep:
            self.files.pop(0).unlink(missing_ok=True)

    def _do(self, job: Callable[[], None], size: int = 0) -> None:
        def named() -> None:  # an error names the file
            try:
                job()
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, str(self.files[-1])) from None

        if self._output is None:
            named()
        else:
            self._output.submit(named, size)

    def _write(self, interface: Interface, ts: int, data: bytes, comment: Comment) -> None:
        if self._file.closed:
            return
        epb = self._epb  # one block object, refilled for each packet (on one thread)
        epb.iface_id = int(interface)
        epb.ts_high = ts >> 32
        epb.ts_low = ts & 0xFFFFFFFF
        epb.pkt_data = data  # dpkt sets both lengths from it
        if not comment:
            epb.opts = []
        else:
            comments = (comment,) if isinstance(comment, str) else comment
            epb.opts = _options(*((dpkt.pcapng.PCAPNG_OPT_COMMENT, c) for c in comments))
        self._writer.writepkt(epb)
        self._size += len(epb)
        if self.max_size is not None and self._size >= self.max_size:
            self._rotate()

    def _write_all(self, packets: list[tuple[Interface, int, bytes, Comment]]) -> None:
        try:
            for packet in packets:
                self._write(*packet)
        except OSError as exc:  # an error names the file
            raise OSError(exc.errno, exc.strerror, str(self.files[-1])) from None

    def packet(self, interface: Interface, ts: int, data: bytes, comment: Comment = None) -> int:
        """Write one packet (with a comment, or several); returns its frame number."""
        self.frames += 1
        if self._batch is None:
            self._do(lambda: self._write(interface, ts, data, comment))
        else:
            self._batch.add((interface, ts, data, comment), len(data))
        return self.frames

    def flush(self) -> None:
        """Push what was written to the operating system."""

        def flush() -> None:
            if not self._file.closed:
                self._file.flush()

        self._do(flush)

    def sync(self) -> list[Path]:
        """Make every packet written so far readable in the files, then return them (oldest
        first): for a reader of the files while the proxy runs. Waits for the writer thread
        (never call it from there)."""
        self.flush()
        if self._output is not None:
            self._output.wait()
        return list(self.files)

    def close(self) -> None:
        """Flush and close the current file (after what is queued)."""

        def close() -> None:
            if not self._file.closed:
                self._file.close()

        self._do(close)


class TcpLeg:
    """One TCP connection as synthesized segments (and packets, with a ``writer``).

    ``client``/``server`` are ``(ip, port)``. Every method returns the segments it made, in
    order; their frame numbers are None when nothing is written. Once the connection is
    closed (a RST, or a FIN from each side) nothing more is made.
    """

    def __init__(
        self,
        writer: PcapngWriter | None,
        interface: Interface,
        client: tuple[str, int],
        server: tuple[str, int],
    ) -> None:
        self.writer = writer
        self.interface = interface
        c_ip = ipaddress.ip_address(client[0])
        s_ip = ipaddress.ip_address(server[0])
        if c_ip.version != s_ip.version:  # e.g. an IPv4-mapped peer: show both as IPv6
            c_ip = ipaddress.IPv6Address(f"::ffff:{c_ip}") if c_ip.version == 4 else c_ip
            s_ip = ipaddress.IPv6Address(f"::ffff:{s_ip}") if s_ip.version == 4 else s_ip
        self._v6 = c_ip.version == 6
        # As a capture reader will print them (no IPv6 scope, mapped form kept).
        self.client_ip = str(ipaddress.ip_address(c_ip.packed))
        self.server_ip = str(ipaddress.ip_address(s_ip.packed))
        self._addr = (c_ip.packed, s_ip.packed)
        self._port = (client[1], server[1])
        self._headers = (
            self._header_objects(0, _MAC_CLIENT, _MAC_SERVER),
            self._header_objects(1, _MAC_SERVER, _MAC_CLIENT),
        )
        self._seq = [random.getrandbits(32), random.getrandbits(32)]  # next seq per side
        self._fin = [False, False]
        self._reset = False
        self._ident = 0

    def _header_objects(
        self, i: int, src_mac: bytes, dst_mac: bytes
    ) -> tuple[dpkt.tcp.TCP, dpkt.Packet, bytes]:
        src, dst = self._addr[i], self._addr[1 - i]
        tcp = dpkt.tcp.TCP(sport=self._port[i], dport=self._port[1 - i])
        ip: dpkt.Packet
        if self._v6:
            ip = dpkt.ip6.IP6(src=src, dst=dst, nxt=dpkt.ip.IP_PROTO_TCP, hlim=64)
            ethertype = dpkt.ethernet.ETH_TYPE_IP6
        else:
            ip = dpkt.ip.IP(src=src, dst=dst, p=dpkt.ip.IP_PROTO_TCP, df=1)
            ethertype = dpkt.ethernet.ETH_TYPE_IP
        eth = dpkt.ethernet.Ethernet(src=src_mac, dst=dst_mac, type=ethertype).pack_hdr()
        return tcp, ip, eth

    @property
    def closed(self) -> bool:
        """A RST was sent, or both sides sent FIN."""
        return self._reset or all(self._fin)

    def _packet(self, seg: Segment, i: int) -> bytes:
        """The Ethernet frame of ``seg``. The header objects of each direction are made once
        and refilled: building them anew costs more than the rest."""
        tcp, ip, eth = self._headers[i]
        tcp.seq = seg.seq
        tcp.ack = seg.ack
        tcp.flags = seg.flags
        head = tcp.pack_hdr()
        if self._v6:
            ip.plen = len(head) + len(seg.payload)
        else:
            self._ident = (self._ident + 1) & 0xFFFF
            ip.id = self._ident
            ip.len = ip.__hdr_len__ + len(head) + len(seg.payload)
            ip.sum = 0
            ip.sum = dpkt.in_cksum(ip.pack_hdr())
        return b"".join((eth, ip.pack_hdr(), head, seg.payload))

    def _segment(
        self,
        from_client: bool,
        ts: int,
        flags: int,
        payload: memoryview | bytes = b"",
        comment: str | None = None,
    ) -> Segment:
        i = 0 if from_client else 1
        seg = Segment(
            ts,
            None,
            self._addr[i],
            self._port[i],
            self._addr[1 - i],
            self._port[1 - i],
            self._seq[i],
            self._seq[1 - i] if flags & ACK else 0,
            flags,
            payload,
            injected=comment == INJECTED,  # the proxy wrote it: a third party's, for the outcome
        )
        if self.writer is not None:
            data = self._packet(seg, i)
            seg = seg._replace(frame=self.writer.packet(self.interface, ts, data, comment))
        return seg

    def attempt(self, ts: int) -> list[Segment]:
        """A SYN alone: a connection attempt (answered by :meth:`open`'s rest, a RST, or
        nothing)."""
        syn = self._segment(True, ts, SYN)
        self._seq[0] = (self._seq[0] + 1) & 0xFFFFFFFF
        return [syn]

    def open(self, ts: int) -> list[Segment]:
        """The three-way handshake."""
        (syn,) = self.attempt(ts)
        syn_ack = self._segment(False, ts, SYN | ACK)
        self._seq[1] = (self._seq[1] + 1) & 0xFFFFFFFF
        return [syn, syn_ack, self._segment(True, ts, ACK)]

    def data(
        self, from_client: bool, ts: int, payload: bytes | memoryview, comment: str | None = None
    ) -> list[Segment]:
        """Segments for ``payload``."""
        i = 0 if from_client else 1
        if self.closed or self._fin[i]:
            return []
        view = memoryview(payload)
        out: list[Segment] = []
        for start in range(0, len(view), MAX_PAYLOAD):
            chunk = view[start : start + MAX_PAYLOAD]
            out.append(self._segment(from_client, ts, PSH | ACK, chunk, comment))
            self._seq[i] = (self._seq[i] + len(chunk)) & 0xFFFFFFFF
        return out

    def skip(self, from_client: bool, size: int) -> None:
        """``size`` bytes a side sent that are left out (neither written nor observed): the
        capture has a hole there, as if its packets were lost, which readers report as a
        gap."""
        i = 0 if from_client else 1
        self._seq[i] = (self._seq[i] + size) & 0xFFFFFFFF

    def ack(self, from_client: bool, ts: int) -> list[Segment]:
        """The side acknowledges what it received (after bytes left out, so that readers
        know at once that they are missing)."""
        if self._reset:
            return []
        return [self._segment(from_client, ts, ACK)]

    def fin(self, from_client: bool, ts: int, comment: str | None = None) -> list[Segment]:
        """The side closes its half (FIN)."""
        i = 0 if from_client else 1
        if self.closed or self._fin[i]:
            return []
        self._fin[i] = True
        seg = self._segment(from_client, ts, FIN | ACK, comment=comment)
        self._seq[i] = (self._seq[i] + 1) & 0xFFFFFFFF
        return [seg]

    def rst(self, from_client: bool, ts: int, comment: str | None = None) -> list[Segment]:
        """The side resets the connection."""
        if self.closed:
            return []
        self._reset = True
        return [self._segment(from_client, ts, RST | ACK, comment=comment)]
