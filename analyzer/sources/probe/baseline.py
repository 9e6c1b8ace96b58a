"""Baselines: a scan's matrix saved as JSON, and what changed since.

Only pairs proposed by both scans are compared, so a scan with more transfer syntaxes or a
newer list of SOP classes does not report the additions as changes.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from analyzer.errors import DicomtapError

from .scan import Pair, ScanMatrix

__all__ = ["BASELINE_SCHEMA", "Baseline", "BaselineError", "Drift", "compare", "load", "save"]

BASELINE_SCHEMA = "dicomtap-probe-baseline/1"

#: A baseline is a list of UID pairs; anything much larger is not one.
_MAX_BYTES = 32 << 20


class BaselineError(DicomtapError):
    """A baseline file that cannot be read or written."""

    exit_code = 3


@dataclass(frozen=True, slots=True)
class Baseline:
    """A saved scan: where, when, what was proposed, what was accepted."""

    target: str
    called_ae: str
    created: str
    proposed: frozenset[Pair]
    accepted: frozenset[Pair]


@dataclass(frozen=True, slots=True)
class Drift:
    """Pairs accepted in the baseline and not now (``lost``), and the reverse (``gained``)."""

    baseline: Baseline
    lost: tuple[Pair, ...]
    gained: tuple[Pair, ...]
    compared: int


def _pairs(table: dict[str, list[str]]) -> frozenset[Pair]:
    return frozenset((sop, ts) for sop, syntaxes in table.items() for ts in syntaxes)


def _table(pairs: set[Pair] | frozenset[Pair]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for sop, ts in sorted(pairs):
        out.setdefault(sop, []).append(ts)
    return out


def save(path: Path, scan: ScanMatrix, *, target: str, called_ae: str, created: str) -> None:
    """Write the scan to ``path`` (atomically: a half-written baseline never replaces a good
    one). Pairs whose association was not answered are left out of ``proposed``."""
    answered = {p for p, r in scan.results.items() if r is not None}
    doc = {
        "schema": BASELINE_SCHEMA,
        "target": target,
        "called_ae": called_ae,
        "created": created,
        "proposed": _table(answered),
        "accepted": _table(scan.accepted),
    }
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise BaselineError(f"cannot write the baseline {path}: {exc.strerror}") from None


def load(path: Path) -> Baseline:
    """Read a baseline written by :func:`save`; raises :class:`BaselineError`."""
    try:
        with open(path, "rb") as f:
            raw = f.read(_MAX_BYTES + 1)
    except OSError as exc:
        raise BaselineError(f"cannot read the baseline {path}: {exc.strerror}") from None
    if len(raw) > _MAX_BYTES:
        raise BaselineError(f"{path} is too large to be a baseline")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BaselineError(f"{path} is not a baseline (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("schema") != BASELINE_SCHEMA:
        raise BaselineError(f"{path} is not a baseline (schema is not {BASELINE_SCHEMA})")
    tables = (doc.get("proposed"), doc.get("accepted"))
    for table in tables:
        if not isinstance(table, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(t, str) for t in v)
            for k, v in table.items()
        ):
            raise BaselineError(f"{path} is not a baseline (bad proposed/accepted tables)")
    text = {k: doc.get(k) for k in ("target", "called_ae", "created")}
    return Baseline(
        target=str(text["target"] or ""),
        called_ae=str(text["called_ae"] or ""),
        created=str(text["created"] or ""),
        proposed=_pairs(tables[0]),  # type: ignore[arg-type]
        accepted=_pairs(tables[1]),  # type: ignore[arg-type]
    )


def compare(baseline: Baseline, scan: ScanMatrix) -> Drift:
    """What stopped and started being accepted, among the pairs both scans answered."""
    now_answered = {p for p, r in scan.results.items() if r is not None}
    common = baseline.proposed & now_answered
    accepted = scan.accepted
    lost = sorted(p for p in common if p in baseline.accepted and p not in accepted)
    gained = sorted(p for p in common if p in accepted and p not in baseline.accepted)
    return Drift(baseline, tuple(lost), tuple(gained), len(common))
