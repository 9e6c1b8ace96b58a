"""Where relayed bytes meet the analyzer: the client leg's observer, and its pcapng packets.

A :class:`ClientTap` gets every byte of the client leg (what the client sent, what the proxy
sent back to it) with the time it was read or written. It writes the synthesized packets
(:class:`~.pcapng.TcpLeg`) and feeds the same :class:`~dissectors.observer.AssociationObserver`
the pcap path uses, packet by packet with the packets' frame numbers, the way the TCP flow
table feeds it from a capture: a SYN opens it, FIN and RST close each side, the second FIN
(or a RST) finishes it. So the proxy's records equal those of ``dicomtap analyze`` run on
its own pcapng.

Parsing never affects relaying: the tap is given the bytes after they were forwarded (the
same immutable ``bytes``, sliced by memoryview), an exception in the observer is caught,
logged once, and ends observation of that connection, and a PDU declaring more than the
parse limit ends it too (forwarding goes on).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from dissectors import CloseKind, Endpoint
from dissectors.observer import AssociationObserver, Emit
from dissectors.pdu import PDU_HEADER

from .pcapng import Interface, PcapngWriter, TcpLeg

__all__ = ["ClientTap", "PduBoundary"]


class PduBoundary:
    """Follows the PDU headers of one direction (6 bytes each) to know where PDUs begin.

    The proxy needs no more than this of the stream: whether it is between PDUs (so that an
    A-ABORT it injects is not read as part of a PDU) and what length each PDU declares (to
    enforce the parse limit). Decoding is the observer's job.
    """

    __slots__ = ("_head", "_remaining", "offset")

    def __init__(self) -> None:
        self._head = bytearray()
        self._remaining = 0
        self.offset = 0

    @property
    def at_boundary(self) -> bool:
        """True between two PDUs."""
        return not self._head and self._remaining == 0

    def feed(self, data: bytes | memoryview, limit: int) -> tuple[int, int] | None:
        """Follow ``data``; returns ``(position in data, declared length)`` of the first PDU
        header declaring more than ``limit`` bytes (the position is negative when the header
        began in an earlier chunk)."""
        n = len(data)
        pos = 0
        found: tuple[int, int] | None = None
        while pos < n:
            if self._remaining:
                step = min(self._remaining, n - pos)
                pos += step
                self._remaining -= step
                continue
            take = min(6 - len(self._head), n - pos)
            self._head += data[pos : pos + take]
            pos += take
            if len(self._head) == 6:
                _, _, length = PDU_HEADER.unpack(self._head)
                self._head.clear()
                self._remaining = length
                if length > limit and found is None:
                    found = (pos - 6, length)
        self.offset += n
        return found


class ClientTap:
    """The client leg of one relayed connection: packets and observation."""

    def __init__(
        self,
        connection: int,
        client: tuple[str, int],
        server: tuple[str, int],
        ts: int,
        *,
        emit: Emit,
        pcap: PcapngWriter | None,
        keep: int,
        parse_limit: int,
        warn: Callable[[str], None],
    ) -> None:
        self.leg = TcpLeg(pcap, Interface.CLIENT_LEG, client, server)
        frame = self.leg.open(ts)
        self.boundaries = (PduBoundary(), PduBoundary())
        self._parse_limit = parse_limit
        self._warn = warn
        self._closed = [False, False]
        self._last: tuple[int, int | None] = (ts, frame)
        self.observer: AssociationObserver | None = AssociationObserver(
            connection,
            Endpoint(self.leg.client_ip, client[1]),
            Endpoint(self.leg.server_ip, server[1]),
            emit,
            ts=ts,
            frame=frame,
            handshake=True,
            keep=keep,
        )
        self.observer.accepted()  # the proxy accepted the connection: the SYN was answered

    def _failed(self, exc: Exception) -> None:
        self._warn(
            f"observer failed ({type(exc).__name__}: {exc}); no longer observing, still relaying"
        )
        self._stop_observing()

    def _stop_observing(self) -> None:
        observer, self.observer = self.observer, None
        if observer is not None:
            with contextlib.suppress(Exception):
                observer.finish(*self._last)

    def data(self, from_client: bool, ts: int, payload: bytes) -> None:
        """``payload`` went from the client to the proxy (or back) at ``ts``."""
        packets = self.leg.data(from_client, ts, payload)
        self._last = (ts, packets[-1][0])
        i = 0 if from_client else 1
        n = len(payload)
        big = self.boundaries[i].feed(payload, self._parse_limit)
        observer = self.observer
        if observer is None:
            return
        cut = n
        # The stream's first header is the observer's to judge (DICOM or not); after it, a
        # PDU over the limit ends observation, unless the stream was found not to be DICOM.
        first_header = big is None or self.boundaries[i].offset - n + big[0] <= 0
        if big is not None and not first_header and observer.is_dicom is not False:
            cut = max(big[0], 0)
        try:
            start = 0
            for frame, view in packets:
                end = start + len(view)
                if start >= cut:
                    break
                observer.data(from_client, view if end <= cut else view[: cut - start], ts, frame)
                start = end
        except Exception as exc:
            self._failed(exc)
            return
        if cut < n and big is not None:
            self._warn(
                f"a PDU declares {big[1]} bytes, above the parse limit of {self._parse_limit}: "
                "no longer observing, still relaying"
            )
            self._stop_observing()

    def at_boundary(self, to_client: bool) -> bool:
        """Whether the stream towards the client (or from it) is between PDUs."""
        return self.boundaries[1 if to_client else 0].at_boundary

    def close(self, from_client: bool, kind: CloseKind, ts: int) -> None:
        """A side of the client leg sent FIN or RST."""
        i = 0 if from_client else 1
        if self._closed[i] and kind == CloseKind.FIN:
            return
        self._closed[i] = True
        if kind == CloseKind.FIN:
            frame = self.leg.fin(from_client, ts)
        else:
            frame = self.leg.rst(from_client, ts)
            self._closed = [True, True]
        self._last = (ts, frame)
        observer = self.observer
        if observer is None:
            return
        try:
            observer.closed(from_client, kind, ts, frame)
            if all(self._closed):
                self.observer = None
                observer.finish(ts, frame)
        except Exception as exc:
            self._failed(exc)

    def finish(self) -> None:
        """The connection is over, however it ended: end the observation."""
        self._stop_observing()
