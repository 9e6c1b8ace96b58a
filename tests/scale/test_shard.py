"""A share of a capture's connections read from the file (``CaptureFile.segments(shard)``):
the segments of its connections, no others, with the stats of the whole capture; and the
pickling that carries a job's events to the merging process."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer.scale import pickling
from analyzer.sources.pcap import CaptureFile, CaptureStats, Shard, shard_of
from dissectors import DissectorEvent, FlowTable, Segment
from tests.analyzer.test_pcap_source import VARIANTS
from tests.scale.captures import SAMPLES


def read(path: Path, shard: Shard | None) -> tuple[list[Segment], CaptureStats]:
    with CaptureFile(path) as capture:
        return list(capture.segments(shard)), capture.stats


@pytest.mark.parametrize("count", [2, 3])
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_the_shares_of_every_link_layer_and_format(name: str, count: int, tmp_path: Path) -> None:
    """Ethernet (tagged or not), Linux cooked, BSD loopback, raw IP, IPv6, IP options,
    fragments, snap lengths, pcapng: each share is the segments of its connections, in
    order, and the stats are those of the whole capture."""
    path = VARIANTS[name](tmp_path / f"{name}.cap")
    whole, stats = read(path, None)
    assert whole
    for index in range(count):
        shard = Shard(index, count)
        mine, share_stats = read(path, shard)
        assert mine == [s for s in whole if shard_of(s, count) == index]
        assert share_stats == stats
        others = [s for s in whole if shard_of(s, count) != index]
        assert shard.last == ((others[-1].ts, others[-1].frame) if others else None)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_the_shares_of_every_sample(sample: Path) -> None:
    whole, stats = read(sample, None)
    shares = [read(sample, Shard(index, 2)) for index in range(2)]
    for _, share_stats in shares:
        assert share_stats == stats
    got = sorted(shares[0][0] + shares[1][0], key=lambda s: s.frame or 0)
    assert got == whole


def events(path: Path) -> list[DissectorEvent]:
    out: list[DissectorEvent] = []
    table = FlowTable(out.append, server_ports=frozenset({104}))
    with CaptureFile(path) as capture:
        for seg in capture.segments():
            table.feed(seg)
    table.finish()
    return out


def test_events_of_every_sample_come_back_equal() -> None:
    pickling.register("dissectors")
    sent = [e for sample in SAMPLES for e in events(sample)]
    kinds = {type(e) for e in sent}
    assert len(kinds) >= 8
    back = pickling.loads(pickling.dumps(("items", sent)))
    assert back == ("items", sent)
    assert [type(e) for e in back[1]] == [type(e) for e in sent]


def test_other_objects_are_pickled_as_pickle_does() -> None:
    stats = CaptureStats(file_size=3)  # a dataclass without slots of its own fields
    stats.link_types.add(1)
    message = ("done", stats, {"a": [1, 2.5, None, b"x"]}, frozenset({"y"}))
    assert pickling.loads(pickling.dumps(message)) == message
