"""The client wire: connections dicomtap itself takes part in, observed as a capture is.

The proxy's client legs, the probe's connections and the replay's all work the same way:
each connection's bytes go to a tap (:class:`~analyzer.sources.proxy.tap.ClientTap`), which
turns them into TCP segments (written to the pcapng, if any) and feeds them to a
:class:`~dissectors.tcp.FlowTable`; that table's observer frames them, and its framer tells
the connection's tap where the PDUs begin and end. :class:`ClientWire` is that flow table
with the taps it tells: the proxy keeps one for all its connections, the probe and the
replay one per connection.

It knows a tap only as something told of framing (:class:`Framed`), so that it depends on
the dissectors alone and every source can use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from dissectors import FlowTable
from dissectors.framing import FramerRecord
from dissectors.observer import DEFAULT_KEEP, Emit
from dissectors.tcp import Segment

__all__ = ["FIRST_CONNECTION", "ClientWire", "Framed"]

#: The number a wire's flow table gives the first connection fed to it (the only one, for a
#: wire of one connection).
FIRST_CONNECTION = 1


class Framed(Protocol):
    """A tap, as the wire tells it where the PDUs of its connection are."""

    def framed(self, from_requestor: bool, records: Sequence[FramerRecord]) -> None:
        """The observer's framer read ``records`` in one direction."""


class ClientWire:
    """A flow table fed by taps, telling each tap where the PDUs of its connection are.

    ``emit`` gets the observer's events; ``keep`` and ``server_ports`` are the flow table's.
    A tap feeds :meth:`feed` and is attached (:meth:`attach`) under the number the flow
    table gives its connection: connections are numbered in the order their SYN is fed,
    from 1.
    """

    def __init__(
        self,
        emit: Emit,
        *,
        keep: int = DEFAULT_KEEP,
        server_ports: frozenset[int] = frozenset(),
    ) -> None:
        self.table = FlowTable(emit, server_ports=server_ports, keep=keep, payload=self._framed)
        self._taps: dict[int, Framed] = {}

    def attach(self, connection: int, tap: Framed) -> None:
        """From now on, ``tap`` is told where the PDUs of connection ``connection`` are."""
        self._taps[connection] = tap

    def detach(self, connection: int) -> None:
        """Connection ``connection`` is over: its tap is told nothing more."""
        self._taps.pop(connection, None)

    def feed(self, seg: Segment) -> None:
        """One segment of a connection, in the order it was sent or received."""
        self.table.feed(seg)

    def finish(self) -> None:
        """End the observation: what is still open is finished as at the end of a capture
        (no tap is told of it)."""
        self._taps.clear()
        self.table.finish()

    def _framed(
        self,
        connection: int,
        from_requestor: bool,
        records: Sequence[FramerRecord],
        ts: int,
        frame: int | None,
    ) -> None:
        tap = self._taps.get(connection)
        if tap is not None:
            tap.framed(from_requestor, records)
