"""The probe's result as an OpenMetrics text exposition (``--format openmetrics``).

Metric names follow the Prometheus conventions: a ``dicomtap_probe_`` prefix, base units
(``_seconds``), ``_info`` for constant facts carried in labels. Every series carries the
``target`` and ``called_ae`` labels. Label values are escaped as the format requires
(backslash, double quote, newline), whatever bytes the peer sent.
"""

from __future__ import annotations

from collections.abc import Iterable

from analyzer.names import uid_name

from .result import ProbeResult

__all__ = ["exposition"]

_PREFIX = "dicomtap_probe_"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in pairs)
    return "{" + inner + "}"


class _Family:
    def __init__(self, name: str, kind: str, help_text: str, unit: str = "") -> None:
        self.name = _PREFIX + name
        self.kind = kind
        self.help = help_text
        self.unit = unit
        self.samples: list[tuple[str, str, float]] = []

    def add(self, labels: list[tuple[str, str]], value: float, suffix: str = "") -> None:
        self.samples.append((suffix, _labels(labels), value))

    def lines(self) -> list[str]:
        if not self.samples:
            return []
        out = [f"# TYPE {self.name} {self.kind}"]
        if self.unit:
            out.append(f"# UNIT {self.name} {self.unit}")
        out.append(f"# HELP {self.name} {_escape(self.help)}")
        for suffix, labels, value in self.samples:
            number = repr(float(value)) if isinstance(value, float) else str(value)
            out.append(f"{self.name}{suffix}{labels} {number}")
        return out


def exposition(r: ProbeResult) -> str:
    """The exposition, ending with ``# EOF``."""
    opts = r.options
    base = [("target", opts.target), ("called_ae", opts.called_ae)]
    families: list[_Family] = []

    def family(name: str, kind: str, help_text: str, unit: str = "") -> _Family:
        f = _Family(name, kind, help_text, unit)
        families.append(f)
        return f

    family("status", "gauge", "Monitoring state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.").add(
        base, int(r.health)
    )
    family("up", "gauge", "1 when the association was accepted.").add(
        base, 1 if r.established else 0
    )
    seconds = family("duration_seconds", "gauge", "Time each step took.", "seconds")
    for step, ns in (
        ("connect", r.connect_ns),
        ("tls_handshake", r.tls_ns),
        ("association", r.association_ns),
        ("total", r.duration_ns),
    ):
        if ns is not None:
            seconds.add([*base, ("step", step)], ns / 1e9)
    latency = family(
        "service_latency_seconds", "gauge", "Request to final response, per service.", "seconds"
    )
    status = family("service_status", "gauge", "Final DIMSE status per service (-1: none).")
    for s in r.services:
        labels = [*base, ("service", s.name), ("category", s.category)]
        if s.latency_ns is not None:
            latency.add([*base, ("service", s.name)], s.latency_ns / 1e9)
        status.add(labels, s.status if s.status is not None else -1)
    a = r.association
    if a is not None:
        contexts = family(
            "context_accepted", "gauge", "1 when the presentation context was accepted."
        )
        for c in a.contexts:
            contexts.add(
                [
                    *base,
                    ("context_id", str(c.id)),
                    ("abstract_syntax", c.abstract_syntax or ""),
                    ("name", uid_name(c.abstract_syntax) if c.abstract_syntax else ""),
                    ("transfer_syntax", c.accepted_transfer_syntax or ""),
                ],
                1 if c.accepted else 0,
            )
        acc = a.acceptor_info
        if acc is not None:
            family("peer", "info", "What the SCP said about itself in its A-ASSOCIATE-AC.").add(
                [
                    *base,
                    ("implementation_class_uid", acc.implementation_class_uid or ""),
                    ("implementation_version_name", acc.implementation_version_name or ""),
                    ("max_pdu_length", str(acc.max_pdu_length or 0)),
                ],
                1,
                "_info",
            )
    if r.scan is not None:
        scan = family(
            "scan_accepted", "gauge", "1 when the scan's (SOP class, transfer syntax) was accepted."
        )
        for (sop, ts), result in sorted(r.scan.results.items()):
            if result is not None:
                scan.add(
                    [*base, ("abstract_syntax", sop), ("transfer_syntax", ts)],
                    1 if result == 0 else 0,
                )
    if r.drift is not None:
        family(
            "baseline_lost_contexts", "gauge", "Pairs accepted in the baseline, no longer accepted."
        ).add(base, len(r.drift.lost))
        family("baseline_gained_contexts", "gauge", "Pairs accepted now, not in the baseline.").add(
            base, len(r.drift.gained)
        )
    lines: list[str] = []
    for f in families:
        lines += f.lines()
    lines.append("# EOF")
    return "\n".join(lines) + "\n"
