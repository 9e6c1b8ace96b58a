"""Sample captures analysed once per test session, as ``analyze`` analyses them."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from analyzer.filter import Facts, Filter
from analyzer.findings import Diagnosis
from analyzer.pipeline import analyze_files
from analyzer.store import Store

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
ALL_SAMPLES = sorted(p.name for p in SAMPLES.iterdir() if p.suffix in (".pcap", ".pcapng"))


@cache
def sample(name: str) -> Store:
    """The store ``dicomtap analyze samples/<name>`` builds (do not change it)."""
    store = Store()
    analyze_files([SAMPLES / name], store, rules=Diagnosis())
    return store


def matching(name: str, expression: str) -> list[int]:
    """Ids of the associations of sample ``name`` that ``expression`` selects."""
    store = sample(name)
    flt = Filter.parse(expression)
    return sorted(
        a.id
        for a in store.associations()
        if flt.matches(Facts(a, store.exchanges(a.id), store.findings(a.id)))
    )
