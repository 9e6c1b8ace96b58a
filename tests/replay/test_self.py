"""Every association of every sample, both sides replayed at once: the requestor's replay
against the acceptor's replay. Neither finds a difference, and the requestor's own traffic
(its --pcap) gives the records and findings of the original association: a replay is the
original, when the other side behaves the same."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.peers import Net, analyze

from .harness import ROOT, SAMPLES, SCRIPTS, alone, env_with_root, json_lines, normalized

pytestmark = pytest.mark.peers

CAPTURES = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".pcap", ".pcapng"))

#: The associations that cannot be replayed, and why (by the words of the refusal).
REFUSED = {
    ("fail_capture_gap.pcap", 1): "the capture lost 1448 B of what the requestor sent",
    ("fail_commitment_reverse_refused.pcap", 2): "carried no DICOM",
    ("fail_get_partial.pcap", 1): "the capture began after its A-ASSOCIATE-RQ",
    ("fail_move_dest_down_dcmqrscp.pcap", 2): "carried no DICOM",
    ("fail_move_dest_down_orthanc.pcap", 2): "carried no DICOM",
    ("fail_never_associated.pcap", 1): "carried no DICOM",
    ("fail_never_associated.pcap", 2): "carried no DICOM",
    ("fail_partial_association.pcap", 1): "the capture began after its A-ASSOCIATE-RQ",
    ("fail_plain_client_to_tls.pcap", 1): "its A-ASSOCIATE-AC (or -RJ) was not captured",
    ("fail_snaplen.pcap", 1): "its A-ASSOCIATE-RQ was not captured whole",
    ("fail_snaplen.pcap", 2): "its A-ASSOCIATE-RQ was not captured whole",
    ("fail_tls_client_to_plain.pcap", 1): "carried no DICOM",
}


def self_replay(net: Net, tmp: Path, *args: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        net.wrap(
            [sys.executable, str(SCRIPTS / "selfreplay.py"), str(tmp), str(net.port(12000)), "10"]
        )
        + list(args),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env=env_with_root(),
    )
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    return json_lines(out.stdout)


CHUNKS = 3  # the samples in three parts, which the test runner may run side by side


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_every_sample_association_replays_as_captured(net: Net, tmp_path: Path, chunk: int) -> None:
    captures = CAPTURES[chunk::CHUNKS]
    results = self_replay(net, tmp_path, *map(str, captures))
    seen = {(r["capture"], r["association"]) for r in results}
    expected = {
        (c.name, a["id"]) for c in captures for a in analyze([c]) if a["type"] == "association"
    }
    assert seen == expected
    refused = {(r["capture"], r["association"]): r["refused"] for r in results if "refused" in r}
    assert set(refused) == {k for k in REFUSED if k[0] in {c.name for c in captures}}
    for key, words in refused.items():
        assert REFUSED[key] in words, words
    played = [r for r in results if "refused" not in r]
    assert len(played) >= 15
    for r in played:
        where = f"{r['capture']} association {r['association']}"
        for side in ("requestor", "acceptor"):
            assert r[side]["exit"] == 0, (where, side, r[side])
            assert not r[side]["differences"] and not r[side]["stopped"], (where, side, r[side])
        original = alone(SAMPLES / r["capture"], r["association"], tmp_path / "alone.pcap")
        assert normalized(analyze([Path(r["pcap"])]), 1) == normalized(analyze([original]), 1), (
            where
        )


def test_bytes_the_capture_lost_are_replayed_as_zeros(net: Net, tmp_path: Path) -> None:
    (r,) = self_replay(net, tmp_path, "--allow-incomplete", str(SAMPLES / "fail_capture_gap.pcap"))
    assert r["requestor"]["exit"] == 0 and r["acceptor"]["exit"] == 0, r
    assert any("zeros are sent in their place" in n for n in r["requestor"]["notes"])
    original = normalized(
        analyze([alone(SAMPLES / "fail_capture_gap.pcap", 1, tmp_path / "a.pcap")]), 1
    )
    replayed = normalized(analyze([Path(r["pcap"])]), 1)
    # What differs is the capture's loss itself: the replay's own capture has none.
    assert original["association"].pop("gaps") == {"count": 1, "bytes": 1448}
    assert replayed["association"].pop("gaps") == {"count": 0, "bytes": 0}
    assert original.pop("findings") == [("capture-gap", "warning")]
    assert replayed.pop("findings") == []
    assert replayed == original
