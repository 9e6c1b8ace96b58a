"""A store with a retention (the proxy's and live capture's, which run for days) forgets old
ended associations, and nothing it writes changes: the stream of records and the totals are
those of a store that keeps everything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from analyzer.pipeline import analyze_files
from analyzer.reports.jsonl import change_record, summary_record
from analyzer.store import Change, Retention, Store

SAMPLES = sorted(str(p) for p in (Path(__file__).resolve().parents[2] / "samples").glob("*.pcap"))


def stream(store: Store) -> list[dict[str, Any]]:
    """What a live JSON Lines sink writes while ``store`` fills, then the summary."""
    out: list[dict[str, Any]] = []

    def changed(change: Change) -> None:
        record = change_record(change, store)
        if record is not None:
            out.append(record)

    store.subscribe(changed)
    analyze_files(SAMPLES, store)
    out.append(summary_record(store))
    return out


@pytest.mark.parametrize(
    "retention",
    [Retention(associations=3), Retention(associations=1), Retention(kept_bytes=4 << 10)],
    ids=["3 associations", "1 association", "4 KiB of data sets"],
)
def test_same_records_and_totals(retention: Retention) -> None:
    everything = Store()
    bounded = Store(retention=retention)
    expected = stream(everything)
    got = stream(bounded)
    assert got == expected
    total = len(everything.associations())
    assert bounded.forgotten.associations > 0
    assert len(bounded.associations()) + bounded.forgotten.associations == total
    ended = [a for a in bounded.associations() if a.end_ts is not None]
    assert len(ended) <= retention.associations
    weights = [
        sum(
            len(m.dataset.kept)
            for e in bounded.exchanges(a.id)
            for m in (e.request, e.final)
            if m is not None and m.dataset is not None
        )
        for a in ended
    ]
    # Within the bound, but for the association that just ended (never forgotten at once).
    assert sum(weights) <= retention.kept_bytes + max(weights)
    # Nothing of a forgotten association is left behind in the ordered lists either.
    live = {a.id for a in bounded.associations()}
    assert all(e.association in live for e in bounded.exchanges())
    assert len(bounded.exchanges()) < len(everything.exchanges())


def test_unbounded_by_default() -> None:
    store = Store()
    analyze_files(SAMPLES[:5], store)
    assert store.forgotten.associations == 0
