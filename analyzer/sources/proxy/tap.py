"""Where relayed bytes meet the analyzer: the client leg as TCP segments, into the pcapng and
into the same flow table a capture goes through.

A :class:`ClientTap` gets every byte of the client leg (what the client sent, what the proxy
sent back to it) with the time it was read or written. Its :class:`~.pcapng.TcpLeg` turns
them into segments; each is written to the pcapng and fed to the run's
:class:`~dissectors.tcp.FlowTable`, which opens the connection at the SYN, reassembles it,
and feeds its :class:`~dissectors.observer.AssociationObserver` exactly as for a capture. So
the proxy's records equal those of ``dicomtap analyze`` on its own pcapng, by construction.

The observer's framer tells the tap, through the flow table's payload tap
(:meth:`ClientTap.framed`), where the PDUs of each direction begin and end
(:class:`~.frames.PduStream`): the relay asks it whether a stream is between PDUs, and a PDU
declaring more than the parse limit is relayed whole but the rest of its body (from the next
chunk on) is left out of the record: a hole in the capture, as if its packets were lost,
which the flow table (for the proxy, and for ``dicomtap analyze`` on the pcapng) reports as
a gap.

What the proxy does on its own to the client (the A-ASSOCIATE-RJ or A-ABORT it writes, the
FIN or RST it closes with) is recorded through :meth:`ClientTap.injected` and
:meth:`ClientTap.proxy_closed`, the one place that marks it as the proxy's: in the pcapng,
the packet comment ``written by dicomtap proxy``; what the proxy relays (an upstream's FIN
or RST passed on) is the upstream's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dissectors import CloseKind
from dissectors.framing import FramerRecord
from dissectors.pdu.constants import pdu_name
from dissectors.tcp import Segment

from .frames import PduStream
from .pcapng import INJECTED, TcpLeg

__all__ = ["ClientTap"]


class ClientTap:
    """The client leg of one relayed connection: its segments and its framing."""

    def __init__(
        self,
        leg: TcpLeg,
        feed: Callable[[Segment], None],
        *,
        parse_limit: int,
        warn: Callable[[str], None],
    ) -> None:
        self.leg = leg
        self._feed = feed
        self._parse_limit = parse_limit
        self._warn = warn
        self.streams = (PduStream(parse_limit), PduStream(parse_limit))
        """The framing of what the client sent (0) and of what it was sent (1)."""
        self.streams[1].keep_controls = False
        self.offsets = [0, 0]
        """Bytes of each direction given to the leg so far (recorded or left out)."""
        self._cut_to = [0, 0]  # per direction: bytes up to this offset are left out

    def _record(self, segments: list[Segment]) -> None:
        for seg in segments:
            self._feed(seg)

    def open(self, ts: int) -> None:
        """The client connected (the proxy accepted it)."""
        self._record(self.leg.open(ts))

    def data(
        self, from_client: bool, ts: int, payload: bytes | memoryview, *, comment: str | None = None
    ) -> None:
        """``payload`` went from the client to the proxy (or back) at ``ts``."""
        i = 0 if from_client else 1
        start = self.offsets[i]
        self.offsets[i] = start + len(payload)
        cut_to = self._cut_to[i]
        if start >= cut_to:
            self._record(self.leg.data(from_client, ts, payload, comment))
            return
        skip = min(len(payload), cut_to - start)
        self.leg.skip(from_client, skip)
        if start + skip == cut_to:  # the PDU ends here: its receiver acknowledges it all
            self.acknowledge(not from_client, ts)
        if skip < len(payload):
            self._record(self.leg.data(from_client, ts, memoryview(payload)[skip:], comment))

    def framed(self, from_requestor: bool, records: Sequence[FramerRecord]) -> None:
        """The observer's framer read these records in one direction (the client is the
        requestor)."""
        i = 0 if from_requestor else 1
        stream = self.streams[i]
        seen = len(stream.over_limit)
        stream.consume(records)
        for offset, pdu_type, length in stream.over_limit[seen:]:
            end = offset + 6 + length
            self._cut_to[i] = max(self._cut_to[i], end)
            if offset or not from_requestor:  # the opening's verdict says what the first is
                self._warn(
                    f"{pdu_name(pdu_type)} declares {length} bytes, above the parse limit of "
                    f"{self._parse_limit}: its body is neither captured nor observed"
                )

    def acknowledge(self, by_client: bool, ts: int) -> None:
        """A side acknowledges what it received: bytes left out before are known missing (a
        gap) from here on, rather than when the connection ends."""
        self._record(self.leg.ack(by_client, ts))

    def injected(self, ts: int, pdu: bytes) -> None:
        """The proxy itself wrote ``pdu`` to the client: recorded as such."""
        self.data(False, ts, pdu, comment=INJECTED)

    def proxy_closed(self, kind: CloseKind, ts: int) -> None:
        """The proxy itself closed (FIN) or reset the connection to the client."""
        if kind == CloseKind.FIN:
            self._record(self.leg.fin(False, ts, INJECTED))
        else:
            self._record(self.leg.rst(False, ts, INJECTED))

    def discarded(self, from_client: bool, size: int) -> None:
        """``size`` bytes were read and thrown away unrecorded (after a refusal; then
        :meth:`acknowledge`)."""
        self.offsets[0 if from_client else 1] += size
        self.leg.skip(from_client, size)

    def close(self, from_client: bool, kind: CloseKind, ts: int) -> None:
        """A side of the client leg sent FIN or RST (the client, or the upstream's passed on
        by the proxy)."""
        if kind == CloseKind.FIN:
            self._record(self.leg.fin(from_client, ts))
        else:
            self._record(self.leg.rst(from_client, ts))

    def end(self, ts: int) -> None:
        """The connection is over, however it ended: a leg still open is reset by the proxy
        (which is what closing it without a word does to a peer that still sends)."""
        self.proxy_closed(CloseKind.RST, ts)

    def at_boundary(self, to_client: bool) -> bool:
        """Whether the stream towards the client (or from it) is between PDUs."""
        i = 1 if to_client else 0
        return self.streams[i].at_boundary(self.offsets[i])
