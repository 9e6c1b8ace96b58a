"""The proxy's pieces without a network: pcapng writing and rotation (read back by
``dicomtap analyze``), PDU boundary tracking, the observer tap's fail-open behaviour and
the AE title / max PDU rewrites."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from analyzer.sources.pcap import CaptureFile
from analyzer.sources.proxy.config import RewriteConfig
from analyzer.sources.proxy.pcapng import MAX_PAYLOAD, Interface, PcapngWriter, TcpLeg
from analyzer.sources.proxy.rewrite import rewrite_ac, rewrite_rq
from analyzer.sources.proxy.tap import ClientTap, PduBoundary
from dissectors import CloseKind, DissectorEvent
from dissectors.pdu import AssociateRq, decode_pdu
from tests import factories as f
from tests.peers import analyze

from .harness import leg_records


def _echo_leg(
    writer: PcapngWriter, interface: Interface, port: int, calling: str, ts: int = 0
) -> None:
    leg = TcpLeg(writer, interface, ("10.1.1.1", 40000 + port), ("10.1.1.2", port))
    ts = ts or time.time_ns()
    leg.open(ts)
    big = f.message(
        1,
        f.command(
            command_field=0x0001,
            message_id=1,
            affected_sop_class_uid=f.CT_STORAGE,
            affected_sop_instance_uid="1.2.3",
            priority=0,
            dataset_type=0,
        ),
        bytes(200_000),
        fragment=150_000,
    )
    for from_client, data in [
        (True, f.associate_rq(((1, f.CT_STORAGE, (f.IMPLICIT,)),), calling=calling)),
        (False, f.associate_ac()),
        (True, big),
        (
            False,
            f.message(
                1,
                f.command(
                    command_field=0x8001,
                    message_id_being_responded_to=1,
                    affected_sop_class_uid=f.CT_STORAGE,
                    status=0,
                ),
            ),
        ),
        (True, f.release_rq()),
        (False, f.release_rp()),
    ]:
        ts += 1_000_000
        packets = leg.data(from_client, ts, data)
        assert all(len(view) <= MAX_PAYLOAD for _, view in packets)
    leg.fin(True, ts + 1)
    leg.fin(False, ts + 2)


def test_pcapng_legs_read_back(tmp_path: Path) -> None:
    path = tmp_path / "x.pcapng"
    writer = PcapngWriter(path)
    _echo_leg(writer, Interface.CLIENT_LEG, 11112, "LEG0")
    _echo_leg(writer, Interface.UPSTREAM_LEG, 104, "LEG1")
    writer.close()
    with CaptureFile(path) as capture:
        segments = list(capture.segments())
    assert len(segments) == writer.frames
    recs = analyze([path])
    assocs = [r for r in recs if r["type"] == "association"]
    assert [(a["calling_ae"], a["outcome"], a["server"]["port"]) for a in assocs] == [
        ("LEG0", "released", 11112),
        ("LEG1", "released", 104),
    ]
    assert all(a["gaps"]["count"] == 0 and a["violations"] == 0 for a in assocs)
    assert [r["request_dataset_bytes"] for r in recs if r["type"] == "exchange"] == [200_000] * 2


def test_pcapng_rotation_keeps_frames_continuous(tmp_path: Path) -> None:
    whole = PcapngWriter(tmp_path / "whole.pcapng")
    rotated = PcapngWriter(tmp_path / "ring.pcapng", max_size=60_000, keep=100)
    start = time.time_ns()
    for w in (whole, rotated):
        for n in range(3):
            _echo_leg(w, Interface.CLIENT_LEG, 11112, f"AE{n}", start + n * 10**9)
        w.close()
    assert len(rotated.files) > 3
    assert rotated.files[1].name == "ring.1.pcapng"
    assert leg_records(analyze(rotated.files)) == leg_records(analyze([tmp_path / "whole.pcapng"]))


@pytest.mark.parametrize("chunk", [1, 5, 7, 1000])
def test_pdu_boundary(chunk: int) -> None:
    stream = f.associate_rq() + f.echo_rq() + b"\x04\x00\xff\xff\xff\xff" + b"x" * 10
    tracker = PduBoundary()
    found = []
    for i in range(0, len(stream), chunk):
        hit = tracker.feed(stream[i : i + chunk], limit=1 << 20)
        if hit:
            found.append((i + hit[0], hit[1]))
    assert found == [(len(f.associate_rq()) + len(f.echo_rq()), 0xFFFFFFFF)]
    assert not tracker.at_boundary
    start = PduBoundary()
    start.feed(f.associate_rq(), limit=1 << 20)
    assert start.at_boundary


def test_tap_fails_open_when_the_observer_breaks() -> None:
    warnings: list[str] = []

    def broken(event: DissectorEvent) -> None:
        raise RuntimeError("model bug")

    tap = ClientTap(
        1,
        ("127.0.0.1", 5000),
        ("127.0.0.1", 104),
        time.time_ns(),
        emit=broken,
        pcap=None,
        keep=0,
        parse_limit=1 << 20,
        warn=warnings.append,
    )
    tap.data(True, time.time_ns(), f.associate_rq())  # the observer raises inside
    tap.data(False, time.time_ns(), f.associate_ac())
    tap.close(True, CloseKind.FIN, time.time_ns())
    tap.finish()
    assert tap.observer is None
    assert len(warnings) == 1 and "no longer observing, still relaying" in warnings[0]


def test_rewrite_changes_only_what_is_asked() -> None:
    rq = f.associate_rq(calling="MODALITY", called="FRONT", max_length=0)
    rules = RewriteConfig(
        calling_ae={"MODALITY": "GATEWAY"}, called_ae={"*": "ARCHIVE"}, max_pdu=16384
    )
    done = rewrite_rq(rq, rules)
    assert len(done.changes) == 3 and done.refused is None
    assert len(done.data) == len(rq)
    differing = [i for i, (a, b) in enumerate(zip(rq, done.data, strict=True)) if a != b]
    assert min(differing) >= 10 and max(differing) < len(rq)
    pdu, _ = decode_pdu(done.data)
    assert isinstance(pdu, AssociateRq)
    assert pdu.calling_ae == b"GATEWAY         " and pdu.called_ae == b"ARCHIVE         "
    assert pdu.user_information is not None and pdu.user_information.maximum_length == 16384
    original, _ = decode_pdu(rq)
    assert isinstance(original, AssociateRq)
    ac = f.associate_ac(calling="GATEWAY", called="ARCHIVE", max_length=65536)
    back = rewrite_ac(ac, rules, done, original)
    pdu_ac, _ = decode_pdu(back.data)
    assert pdu_ac.calling_ae == b"MODALITY        " and pdu_ac.called_ae == b"FRONT           "  # type: ignore[union-attr]
    assert rewrite_rq(rq, RewriteConfig()).data is rq  # nothing asked: untouched
