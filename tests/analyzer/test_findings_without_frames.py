"""The diagnosis does not depend on frame numbers: bytes observed without a capture (the
proxy, the probe and the replay without --pcap) get the findings a capture of them gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyzer.findings import Diagnosis
from analyzer.pipeline import Pipeline
from analyzer.sources.pcap import CaptureFile
from analyzer.store import Store

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
CAPTURES = sorted(p.name for p in SAMPLES.iterdir() if p.suffix in (".pcap", ".pcapng"))


def finding_codes(path: Path, *, frames: bool) -> list[tuple[int, str, str]]:
    store = Store()
    pipeline = Pipeline(store, rules=Diagnosis())
    with CaptureFile(path) as capture:
        for seg in capture.segments():
            pipeline.feed(seg if frames else seg._replace(frame=None))
    pipeline.finish()
    return sorted((f.evidence.association, f.code, f.severity.label) for f in store.findings())


@pytest.mark.parametrize("name", CAPTURES)
def test_same_findings_without_frame_numbers(name: str) -> None:
    with_frames = finding_codes(SAMPLES / name, frames=True)
    assert finding_codes(SAMPLES / name, frames=False) == with_frames
