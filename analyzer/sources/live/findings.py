"""Capture-wide findings of a live capture: packets lost before dicomtap saw them, and an
analyzer that could not keep up with the capture.

They are :class:`~analyzer.model.Finding` records like every rule's, with association ``0``
in their evidence: they are about the capture, not about one association.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from analyzer.builder import Rules
from analyzer.model import CAPTURE_WIDE, Association, Evidence, Exchange, Finding, Severity
from analyzer.reports.common import plural
from analyzer.store import Store

__all__ = [
    "CODES",
    "Drops",
    "LiveRules",
    "capture_drops",
    "capture_lag",
]

CODES = ("capture-drops", "capture-lag")


@dataclass(frozen=True, slots=True)
class Drops:
    """Packets a capture lost, by where they were lost."""

    received: int | None = None
    kernel: int = 0
    """Dropped by the kernel, its capture buffer full: the capture was not read fast enough."""
    dumpcap: int = 0
    """Dropped by the capture tool itself (its own limits, or flushed at the end)."""
    interface: int = 0
    """Dropped by the network interface or its driver."""

    @property
    def total(self) -> int:
        return self.kernel + self.dumpcap + self.interface


def capture_drops(drops: Drops, ts: int | None, behind: bool) -> Finding | None:
    """``capture-drops``: the capture lost packets (None if it lost none)."""
    if drops.total == 0:
        return None
    parts = []
    if drops.kernel:
        parts.append(f"{drops.kernel} by the kernel (its capture buffer was full)")
    if drops.dumpcap:
        parts.append(f"{drops.dumpcap} by dumpcap")
    if drops.interface:
        parts.append(f"{drops.interface} by the network interface")
    of = f" of {drops.received} received" if drops.received else ""
    cause = (
        " dicomtap was falling behind the capture at the time, which is the likely cause."
        if behind
        else ""
    )
    return Finding(
        code="capture-drops",
        severity=Severity.WARNING,
        title="The capture lost packets",
        explanation=(
            f"{plural(drops.total, 'packet')}{of} never reached dicomtap: "
            f"{', '.join(parts)}. Associations that were running then may show gaps, protocol "
            "violations or missing exchanges that did not happen on the wire." + cause
        ),
        hint=(
            "Narrow the capture filter (--port or -f), give the capture a bigger kernel buffer "
            "(--buffer-size), or keep the raw capture with --write/--ring and analyse the "
            "files afterwards with 'dicomtap analyze'."
        ),
        evidence=Evidence(
            association=CAPTURE_WIDE,
            ts=ts,
            detail=(
                f"dropped: kernel {drops.kernel}, dumpcap {drops.dumpcap}, "
                f"interface {drops.interface}" + (f"; received {drops.received}" if of else "")
            ),
        ),
    )


def capture_lag(
    episodes: int, max_lag_ns: int, behind_ns: int, since_ts: int | None
) -> Finding | None:
    """``capture-lag``: the analysis fell behind the capture (None if it never did)."""
    if not episodes:
        return None
    times = "once" if episodes == 1 else f"{episodes} times"
    spent = f", for {behind_ns / 1e9:.1f} s in all" if behind_ns >= 100_000_000 else ""
    how = (
        f"packets waited up to {max_lag_ns / 1e9:.1f} s before they were analysed"
        if max_lag_ns
        else "the pipe from dumpcap filled up, and dumpcap had to wait"
    )
    return Finding(
        code="capture-lag",
        severity=Severity.WARNING,
        title="dicomtap fell behind the capture",
        explanation=(
            f"The analysis could not keep up with the capture {times}{spent}: {how}. Events "
            "were reported late, and a capture that cannot hand its packets over fills the "
            "kernel's buffer and loses packets."
        ),
        hint=(
            "Narrow the capture filter to the DICOM ports (--port), give the capture a bigger "
            "kernel buffer (--buffer-size), or write the capture with --write/--ring and "
            "analyse it afterwards."
        ),
        evidence=Evidence(
            association=CAPTURE_WIDE,
            ts=since_ts,
            detail=f"behind {episodes} time(s); largest delay {max_lag_ns / 1e9:.3f} s",
        ),
    )


class LiveRules:
    """Wraps the findings rules so that the capture-wide findings of a live capture come
    where capture-wide findings belong: when the source ends, after every association was
    closed and before the store is marked done."""

    def __init__(self, rules: Rules | None) -> None:
        self._rules = rules
        self.at_end: list[Finding] = []
        """Findings to add when the source ends (set before :meth:`Pipeline.finish`)."""

    def association_ended(self, store: Store, association: Association) -> Iterable[Finding]:
        if self._rules is None:
            return ()
        return self._rules.association_ended(store, association)

    def exchange_ended(self, store: Store, exchange: Exchange) -> Iterable[Finding]:
        if self._rules is None:
            return ()
        return self._rules.exchange_ended(store, exchange)

    def counted(self, store: Store, association: Association) -> Iterable[Finding]:
        if self._rules is None:
            return ()
        return self._rules.counted(store, association)

    def source_ended(self, store: Store) -> Iterable[Finding]:
        found = list(self._rules.source_ended(store)) if self._rules is not None else []
        return found + self.at_end
