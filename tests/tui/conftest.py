"""Fixtures for the terminal UI tests: sample stores, findings made by hand, determinism."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from analyzer.model import Evidence, Finding, Severity
from analyzer.pipeline import analyze_files
from analyzer.store import Store

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Times on screen never depend on the machine's time zone."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def sample_store(*names: str, compact: bool = True) -> Store:
    """A store filled from bundled sample captures, as ``dicomtap tui`` fills it."""
    store = Store(keep_pdus=True, compact_pdus=compact)
    analyze_files([SAMPLES / n for n in names], store)
    return store


def finding(
    association: int,
    code: str,
    severity: Severity = Severity.ERROR,
    *,
    frames: tuple[int, ...] = (),
    ts: int | None = None,
    title: str | None = None,
) -> Finding:
    """A finding made by hand (the rules are tested elsewhere)."""
    return Finding(
        code=code,
        severity=severity,
        title=title or f"{code.replace('-', ' ')} (test)",
        explanation=f"Explanation of {code}.",
        hint=f"Hint for {code}.",
        evidence=Evidence(association=association, frames=frames, ts=ts),
    )


def with_findings(store: Store) -> Store:
    """Add one made-up finding per association with a notable ending (and one info)."""
    for a in store.associations():
        if a.reject is not None:
            store.add_finding(
                finding(a.id, "association-rejected", frames=(a.reject.frame or 0,), ts=a.reject.ts)
            )
        elif a.abort is not None:
            store.add_finding(
                finding(a.id, "association-aborted", frames=(a.abort.frame or 0,), ts=a.abort.ts)
            )
    first = min(store.associations(), key=lambda a: a.id)
    store.add_finding(
        finding(first.id, "slow-response", Severity.WARNING, frames=(first.rq_frame or 0,))
    )
    return store
