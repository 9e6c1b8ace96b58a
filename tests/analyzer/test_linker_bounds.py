"""What the workflow linker keeps while it waits for a C-MOVE is bounded: a proxy or a busy
site's capture sends thousands of storage associations an hour, and none may keep its data
sets' bytes alive."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from analyzer.pipeline import analyze_files
from analyzer.store import Store
from analyzer.workflows import moves
from analyzer.workflows.linker import Linker

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def test_waiting_associations_are_bounded_and_light(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(moves, "MAX_WAITING", 20)
    store = Store()
    analyze_files([str(SAMPLES / "store.pcap")], store)
    a = next(x for x in store.associations() if x.exchanges and x.called_ae_title)
    exchanges = store.exchanges(a.id)
    linker = Linker()
    copy = Store()
    for n in range(200):  # the same storage association, again and again
        again = replace(a, id=1000 + n)
        for e in exchanges:
            request = e.request
            assert request is not None and request.dataset is not None
            heavy = replace(request.dataset, kept=bytes(60_000))  # as a 64 KiB keep holds
            e = replace(e, association=again.id, request=replace(request, dataset=heavy))
            copy.add_exchange(e)
        copy.put_association(again)
        linker.association_ended(copy, again)
    waiting = linker._moves._waiting
    assert 20 <= len(waiting) <= 25
    for sub in waiting:
        kept = [
            len(e.request.dataset.kept)
            for e in sub.plain
            if e.request is not None and e.request.dataset is not None
        ]
        assert len(kept) == len(exchanges)
        assert kept[0] <= 4096 and not any(kept[1:])
