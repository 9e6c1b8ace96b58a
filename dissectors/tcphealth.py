"""TCP health of one connection: retransmissions, zero windows, silences, resets, round trips.

A :class:`HealthTracker` watches every segment of one connection as the flow table sees it
(in capture order) and keeps a bounded summary per direction. It reports episodes worth a
line on the association's timeline as they end (through a :data:`NoteSink`) and, when the
connection ends, the :class:`TcpSummary` of the whole connection.

The definitions follow Wireshark's ``tcp.analysis`` fields where one exists, so that the two
can be compared:

* a **retransmission** is a segment carrying data that starts below the highest sequence
  number already seen in its direction (Wireshark's ``retransmission``,
  ``fast_retransmission``, ``spurious_retransmission`` and ``out_of_order`` together: seen
  from one capture point they cannot always be told apart); a one-byte segment just below it
  is a **keep-alive** (``keep_alive``), not a retransmission;
* a **zero window** is a segment without SYN, FIN or RST advertising a window of 0
  (``zero_window``); a zero-window episode lasts until the same side advertises room again;
* the **handshake round trip** runs from the client's SYN to its ACK of the SYN+ACK
  (``initial_rtt``); a **data round trip** from the first copy of a segment to the first
  acknowledgement covering it (``ack_rtt``, Karn's rule: not for retransmitted data);
* a **silence** is a stretch of at least :data:`SILENCE_NS` in which neither side sent data,
  SYN, FIN or RST (pure acknowledgements and keep-alives do not break it: they carry nothing
  for the application);
* a **retransmission burst** is a run of at least :data:`BURST_MIN` retransmissions by one
  side without new data from it in between; it is **unanswered** when the connection ended
  before the peer acknowledged it;
* a **reset** is counted for the side that sent it, unless a middlebox that relays the
  connection (``dicomtap proxy``) wrote it itself (an *injected* segment): that one is a
  third party's (:attr:`TcpSummary.third_party_resets`), and neither side reset anything.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .ul_terms import Party

FIN = 0x01
SYN = 0x02
RST = 0x04
ACK = 0x10

#: A stretch without data at least this long is a silence (DICOM peers answer in
#: milliseconds; timeouts are set in seconds).
SILENCE_NS = 2_000_000_000
#: Retransmissions in a row that make a burst worth a line on the timeline.
BURST_MIN = 3
#: A zero-window episode at least this long gets a line on the timeline.
ZERO_WINDOW_NOTE_NS = 200_000_000
#: A reset this soon after the first data following a silence answers that data.
RESET_ANSWER_NS = 2_000_000_000
#: Timeline lines per connection and kind, at most (the counts go on).
MAX_NOTES = 20
#: First copies of segments remembered per direction for round-trip samples.
RTT_PENDING = 256

#: ``(from_client, code, text, ts, frame)``: an episode for the timeline.
NoteSink = Callable[[bool, str, str, int, "int | None"], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpSide:
    """What one side of a connection sent, as TCP saw it."""

    segments: int = 0
    data_segments: int = 0
    retransmissions: int = 0
    retransmitted_bytes: int = 0
    retransmission_bursts: int = 0
    first_retransmission_frame: int | None = None
    zero_windows: int = 0
    """Segments advertising a zero window (this side could not take more data)."""
    zero_window_episodes: int = 0
    zero_window_ns: int = 0
    """Time this side's window stayed at zero, in all."""
    longest_zero_window_ns: int = 0
    longest_zero_window_frame: int | None = None
    """Where the longest zero-window episode began."""
    keepalives: int = 0
    resets: int = 0
    """RST segments this side sent (a middlebox's in its name are not counted here)."""
    rtt_samples: int = 0
    """Round trips measured on this side's data (first copy → the peer's acknowledgement)."""
    rtt_min_ns: int | None = None
    rtt_max_ns: int | None = None
    rtt_mean_ns: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UnansweredBurst:
    """Retransmissions one side was still sending, unacknowledged, when the connection ended."""

    by_requestor: bool
    retransmissions: int
    since_ts: int
    since_frame: int | None
    last_ts: int
    last_frame: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResetInfo:
    """The first RST of the connection.

    ``after_silence_ns``: the RST answered the first data the other side sent after a
    silence that long (None: it did not). ``injected``: a middlebox that relays the
    connection wrote it in ``by_requestor``'s direction; that side did not reset.
    """

    by_requestor: bool
    ts: int
    frame: int | None
    after_silence_ns: int | None
    injected: bool = False

    @property
    def by(self) -> Party:
        """Who reset the connection: a side, or a third party."""
        return Party.sender(self.by_requestor, self.injected)


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpSummary:
    """TCP health of a whole connection (for a connection without DICOM, the requestor is the
    TCP client)."""

    connection: int
    requestor: TcpSide
    acceptor: TcpSide
    handshake_rtt_ns: int | None
    silences: int
    longest_silence_ns: int
    longest_silence_ts: int | None
    """When the longest silence ended."""
    longest_silence_frame: int | None
    reset: ResetInfo | None
    unanswered: UnansweredBurst | None
    third_party_resets: int = 0
    """RST segments a middlebox relaying the connection wrote itself, in either direction."""


class _Side:
    """What one direction sent beyond its segment count: made with the first data, zero
    window, reset, silence or keep-alive of that direction (see :class:`HealthTracker`)."""

    __slots__ = (
        "burst_first_frame",
        "burst_first_ts",
        "burst_frame",
        "burst_n",
        "burst_top",
        "burst_ts",
        "bursts",
        "data_segments",
        "first_retrans_frame",
        "keepalives",
        "max_end",
        "notes",
        "pending",
        "resets",
        "retrans",
        "retrans_bytes",
        "rtt_max",
        "rtt_min",
        "rtt_n",
        "rtt_sum",
        "seen_data",
        "zw_count",
        "zw_episodes",
        "zw_frame",
        "zw_longest",
        "zw_longest_frame",
        "zw_since",
        "zw_total",
    )

    def __init__(self) -> None:
        self.data_segments = 0
        self.max_end = 0
        self.seen_data = False
        self.retrans = 0
        self.retrans_bytes = 0
        self.first_retrans_frame: int | None = None
        self.bursts = 0
        self.burst_n = 0
        self.burst_top = 0
        self.burst_first_ts = 0
        self.burst_first_frame: int | None = None
        self.burst_ts = 0
        self.burst_frame: int | None = None
        self.keepalives = 0
        self.resets = 0
        self.zw_count = 0
        self.zw_episodes = 0
        self.zw_since: int | None = None
        self.zw_frame: int | None = None
        self.zw_total = 0
        self.zw_longest = 0
        self.zw_longest_frame: int | None = None
        # (end offset, ts) of first copies; made with the first data, as most connections
        # of a scan or a flood never carry any and an empty deque costs 600 bytes.
        self.pending: deque[tuple[int, int]] | None = None
        self.rtt_n = 0
        self.rtt_sum = 0
        self.rtt_min: int | None = None
        self.rtt_max: int | None = None
        self.notes = 0

    def summary(self, segments: int) -> TcpSide:
        return TcpSide(
            segments=segments,
            data_segments=self.data_segments,
            retransmissions=self.retrans,
            retransmitted_bytes=self.retrans_bytes,
            retransmission_bursts=self.bursts,
            first_retransmission_frame=self.first_retrans_frame,
            zero_windows=self.zw_count,
            zero_window_episodes=self.zw_episodes,
            zero_window_ns=self.zw_total,
            longest_zero_window_ns=self.zw_longest,
            longest_zero_window_frame=self.zw_longest_frame,
            keepalives=self.keepalives,
            resets=self.resets,
            rtt_samples=self.rtt_n,
            rtt_min_ns=self.rtt_min,
            rtt_max_ns=self.rtt_max,
            rtt_mean_ns=self.rtt_sum // self.rtt_n if self.rtt_n else None,
        )


_QUIET: dict[int, TcpSide] = {}
_QUIET_SHARED = 16


def _quiet(segments: int) -> TcpSide:
    """The summary of a direction that sent ``segments`` segments and nothing else worth
    counting (a SYN, its retries, pure acknowledgements): one shared record for the few
    counts that a scan or a flood repeats by the hundred thousand."""
    if segments >= _QUIET_SHARED:
        return TcpSide(segments=segments)
    found = _QUIET.get(segments)
    if found is None:
        found = _QUIET[segments] = TcpSide(segments=segments)
    return found


def _secs(ns: int) -> str:
    return f"{ns / 1e9:.3f} s" if ns < 10_000_000_000 else f"{ns / 1e9:.1f} s"


def _frames(first: int | None, last: int | None) -> str:
    if first is None:
        return ""
    return f" (frame {first})" if last in (None, first) else f" (frames {first}-{last})"


class HealthTracker:
    """TCP health of one connection, fed by the flow table segment by segment.

    A direction's counters beyond its segment count are made with the first thing worth
    counting that it sends (data, a zero window, a reset, a keep-alive): a connection that
    never gets past its SYN costs a few slots, not two sets of thirty counters."""

    __slots__ = (
        "_client",
        "_client_segments",
        "_handshake_rtt",
        "_last_active",
        "_longest",
        "_longest_frame",
        "_longest_ts",
        "_note",
        "_reset",
        "_resumed",
        "_server",
        "_server_segments",
        "_silences",
        "_syn_ts",
        "_synack_seen",
        "_third_party_resets",
        "connection",
    )

    def __init__(self, connection: int, note: NoteSink) -> None:
        self.connection = connection
        self._note = note
        self._client: _Side | None = None
        self._server: _Side | None = None
        self._client_segments = 0
        self._server_segments = 0
        self._syn_ts: int | None = None
        self._synack_seen = False
        self._handshake_rtt: int | None = None
        self._last_active: int | None = None
        self._silences = 0
        self._longest = 0
        self._longest_ts: int | None = None
        self._longest_frame: int | None = None
        self._resumed: tuple[bool, int, int] | None = None  # (from_client, ts, silence)
        self._reset: tuple[bool, int, int | None, int | None, bool] | None = None
        self._third_party_resets = 0

    def _side(self, from_client: bool) -> _Side:
        """A direction's counters, made on first use."""
        if from_client:
            if self._client is None:
                self._client = _Side()
            return self._client
        if self._server is None:
            self._server = _Side()
        return self._server

    def _say(
        self, side: _Side, from_client: bool, code: str, text: str, ts: int, frame: int | None
    ) -> None:
        side.notes += 1
        if side.notes <= MAX_NOTES:
            self._note(from_client, code, text, ts, frame)

    # --- input -----------------------------------------------------------------------

    def packet(
        self,
        from_client: bool,
        flags: int,
        window: int,
        size: int,
        ts: int,
        frame: int | None,
        injected: bool = False,
    ) -> None:
        """Every segment, before its data (``size`` bytes on the wire) is looked at;
        ``injected``: a middlebox wrote it in ``from_client``'s direction, not that side."""
        if from_client:
            self._client_segments += 1
        else:
            self._server_segments += 1
        if flags & SYN:
            if not flags & ACK:
                if self._syn_ts is None:
                    self._syn_ts = ts
            elif not from_client:
                self._synack_seen = True
        elif (
            from_client
            and flags & ACK
            and self._synack_seen
            and self._syn_ts is not None
            and self._handshake_rtt is None
        ):
            self._handshake_rtt = ts - self._syn_ts
        if window >= 0 and not flags & (SYN | FIN | RST):
            if window == 0:
                side = self._side(from_client)
                side.zw_count += 1
                if side.zw_since is None:
                    side.zw_since = ts
                    side.zw_frame = frame
            else:
                open_side = self._client if from_client else self._server
                if open_side is not None and open_side.zw_since is not None:
                    self._zero_window_over(open_side, from_client, ts, frame)
        if flags & RST:
            if injected:
                self._third_party_resets += 1
            else:
                self._side(from_client).resets += 1
            if self._reset is None:
                after = None
                resumed = self._resumed
                if (
                    resumed is not None
                    and resumed[0] != from_client
                    and ts - resumed[1] <= RESET_ANSWER_NS
                ):
                    after = resumed[2]
                self._reset = (from_client, ts, frame, after, injected)
        if size or flags & (SYN | FIN | RST):
            self._active(from_client, ts, frame, size)

    def _active(self, from_client: bool, ts: int, frame: int | None, size: int) -> None:
        last = self._last_active
        self._last_active = ts
        if last is None:
            return
        silence = ts - last
        if silence < SILENCE_NS:
            return
        self._silences += 1
        if silence > self._longest:
            self._longest = silence
            self._longest_ts = ts
            self._longest_frame = frame
        if size:
            self._resumed = (from_client, ts, silence)
        side = self._side(from_client)
        self._say(
            side,
            from_client,
            "tcp-silence",
            f"nothing was sent for {_secs(silence)} before this segment{_frames(frame, None)}",
            ts,
            frame,
        )

    def _zero_window_over(self, side: _Side, from_client: bool, ts: int, frame: int | None) -> None:
        since = side.zw_since
        assert since is not None
        span = ts - since
        side.zw_since = None
        side.zw_episodes += 1
        side.zw_total += span
        if span > side.zw_longest or side.zw_longest_frame is None:
            side.zw_longest = span
            side.zw_longest_frame = side.zw_frame
        if span >= ZERO_WINDOW_NOTE_NS:
            self._say(
                side,
                from_client,
                "tcp-zero-window",
                f"TCP zero window for {_secs(span)}{_frames(side.zw_frame, frame)}: this side "
                "stopped reading what its peer sent",
                since,
                side.zw_frame,
            )

    def sent(self, from_client: bool, offset: int, size: int, ts: int, frame: int | None) -> None:
        """``size`` bytes of data at stream ``offset`` (``size`` > 0)."""
        side = self._side(from_client)
        side.data_segments += 1
        end = offset + size
        if size == 1 and offset == side.max_end - 1:
            side.keepalives += 1
            return
        if side.seen_data and offset < side.max_end:
            side.retrans += 1
            if side.first_retrans_frame is None:
                side.first_retrans_frame = frame
            side.retrans_bytes += min(end, side.max_end) - offset
            if side.pending:
                side.pending.clear()  # Karn: no round trip from data sent more than once
            if side.burst_n == 0:
                side.burst_first_ts = ts
                side.burst_first_frame = frame
            side.burst_n += 1
            side.burst_top = max(side.burst_top, end)
            side.burst_ts = ts
            side.burst_frame = frame
        else:
            self._burst_over(side, from_client)
            pending = side.pending
            if pending is None:
                pending = side.pending = deque()
            pending.append((end, ts))
            if len(pending) > RTT_PENDING:
                pending.popleft()
        if end > side.max_end or not side.seen_data:
            side.max_end = end
        side.seen_data = True

    def empty(self, from_client: bool, offset: int) -> None:
        """A segment without data, SYN, FIN or RST at stream ``offset``: a pure acknowledgement,
        or a keep-alive (or zero-window probe) when it sits just below the data sent."""
        side = self._client if from_client else self._server
        if offset == (side.max_end if side is not None else 0) - 1:
            self._side(from_client).keepalives += 1

    def acked(self, from_client: bool, offset: int, ts: int) -> None:
        """The other side acknowledged everything below stream ``offset`` of ``from_client``'s
        direction."""
        side = self._client if from_client else self._server
        if side is None:
            return  # nothing sent that an acknowledgement could answer
        pending = side.pending
        sample = None
        while pending and pending[0][0] <= offset:
            sample = pending.popleft()[1]
        if sample is not None:
            rtt = ts - sample
            side.rtt_n += 1
            side.rtt_sum += rtt
            side.rtt_min = rtt if side.rtt_min is None else min(side.rtt_min, rtt)
            side.rtt_max = rtt if side.rtt_max is None else max(side.rtt_max, rtt)
        if side.burst_n and offset >= side.burst_top:
            self._burst_over(side, from_client)

    def _burst_over(self, side: _Side, from_client: bool) -> None:
        n = side.burst_n
        if not n:
            return
        side.burst_n = 0
        side.burst_top = 0
        if n < BURST_MIN:
            return
        side.bursts += 1
        self._say(
            side,
            from_client,
            "tcp-retransmissions",
            f"{n} TCP retransmissions in a row over "
            f"{_secs(side.burst_ts - side.burst_first_ts)}"
            f"{_frames(side.burst_first_frame, side.burst_frame)}: packets were lost",
            side.burst_first_ts,
            side.burst_first_frame,
        )

    def finish(self, ts: int, frame: int | None, *, swapped: bool = False) -> TcpSummary:
        """The connection ended: close the open episodes and summarise (``swapped``: the TCP
        server is the association requestor)."""
        unanswered = None
        for from_client, side in ((True, self._client), (False, self._server)):
            if side is None:
                continue
            if side.zw_since is not None:
                self._zero_window_over(side, from_client, ts, frame)
            if side.burst_n >= BURST_MIN and unanswered is None:
                unanswered = UnansweredBurst(
                    by_requestor=from_client != swapped,
                    retransmissions=side.burst_n,
                    since_ts=side.burst_first_ts,
                    since_frame=side.burst_first_frame,
                    last_ts=side.burst_ts,
                    last_frame=side.burst_frame,
                )
            self._burst_over(side, from_client)
        reset = None
        if self._reset is not None:
            by_client, rst_ts, rst_frame, after, injected = self._reset
            reset = ResetInfo(
                by_requestor=by_client != swapped,
                ts=rst_ts,
                frame=rst_frame,
                after_silence_ns=after,
                injected=injected,
            )
        c, s = self._client, self._server
        n_c, n_s = self._client_segments, self._server_segments
        client = c.summary(n_c) if c is not None else _quiet(n_c)
        server = s.summary(n_s) if s is not None else _quiet(n_s)
        return TcpSummary(
            connection=self.connection,
            requestor=server if swapped else client,
            acceptor=client if swapped else server,
            handshake_rtt_ns=self._handshake_rtt,
            silences=self._silences,
            longest_silence_ns=self._longest,
            longest_silence_ts=self._longest_ts,
            longest_silence_frame=self._longest_frame,
            reset=reset,
            unanswered=unanswered,
            third_party_resets=self._third_party_resets,
        )
