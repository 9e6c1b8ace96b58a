"""The proxy's pieces without a network: pcapng writing and rotation (read back by
``dicomtap analyze``), PDU boundaries from the framer, the client leg through the flow table
(fail-open, the parse limit as a capture cut) and the AE title / max PDU rewrites."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from pathlib import Path

import pytest

from analyzer.sources.clientwire import FIRST_CONNECTION, ClientWire
from analyzer.sources.pcap import CaptureFile
from analyzer.sources.proxy.config import RewriteConfig
from analyzer.sources.proxy.frames import PduStream, first_header
from analyzer.sources.proxy.pcapng import MAX_PAYLOAD, Interface, PcapngWriter, TcpLeg
from analyzer.sources.proxy.rewrite import rewrite_ac, rewrite_rq
from analyzer.sources.proxy.tap import ClientTap
from analyzer.sources.proxy.transport import ends
from dissectors import AnalysisError, CloseKind, DissectorEvent, FlowTable
from dissectors.framing import PduFramer
from dissectors.pdu import AssociateAc, AssociateRq, decode_pdu
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
        segments = leg.data(from_client, ts, data)
        assert all(len(s.payload) <= MAX_PAYLOAD for s in segments)
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
def test_pdu_stream_follows_the_framer(chunk: int) -> None:
    rq, echo = f.associate_rq(), f.echo_rq()
    framer, frames = PduFramer(), PduStream(limit=1 << 20)

    def feed(data: bytes) -> None:
        for i in range(0, len(data), chunk):
            assert not frames.at_boundary(framer.offset) or i == 0
            frames.consume(framer.receive_data(memoryview(data[i : i + chunk])))

    assert first_header(rq[:5]) is None and first_header(rq) == (1, len(rq) - 6)
    feed(rq)
    assert frames.at_boundary(len(rq)) and frames.first == (1, len(rq) - 6)
    (control,) = frames.controls
    assert (control.pdu_type, control.start, control.end, control.body) == (1, 0, len(rq), rq[6:])
    feed(echo)
    assert frames.at_boundary(len(rq) + len(echo))
    assert not frames.at_boundary(len(rq))  # not where the stream is
    feed(b"\x04\x00\xff\xff\xff\xff" + b"x" * 10)
    assert frames.over_limit == [(len(rq) + len(echo), 4, 0xFFFFFFFF)]
    assert not frames.at_boundary(framer.offset)
    assert frames.current_end == len(rq) + len(echo) + 6 + 0xFFFFFFFF


def test_pdu_stream_after_a_control_pdu_left_out_in_part() -> None:
    """An A-ASSOCIATE-RQ over the parse limit whose rest the record leaves out (a hole): it
    ends where its header said, and the next PDU starts between PDUs."""
    rq, release = f.associate_rq(), f.release_rq()
    framer, frames = PduFramer(), PduStream(limit=40)
    frames.consume(framer.receive_data(memoryview(rq[:30])))
    assert not frames.at_boundary(30)
    frames.consume(framer.gap(len(rq) - 30))
    assert frames.at_boundary(len(rq)) and frames.controls == []
    frames.consume(framer.receive_data(memoryview(release)))
    assert frames.at_boundary(len(rq) + len(release))


def _tap(
    emit: list[DissectorEvent], writer: PcapngWriter | None = None, parse_limit: int = 1 << 20
) -> tuple[ClientTap, list[str]]:
    """A tap on a flow table of its own, told where PDUs are by the observer's framer."""
    warnings: list[str] = []
    leg = TcpLeg(writer, Interface.CLIENT_LEG, ("127.0.0.1", 5000), ("127.0.0.1", 104))
    wire = ClientWire(emit.append)
    tap = ClientTap(leg, wire.feed, parse_limit=parse_limit, warn=warnings.append)
    wire.attach(FIRST_CONNECTION, tap)
    return tap, warnings


def test_tap_fails_open_when_the_observer_breaks() -> None:
    events: list[DissectorEvent] = []

    def broken(event: DissectorEvent) -> None:
        events.append(event)
        if not isinstance(event, AnalysisError):
            raise RuntimeError("model bug")

    leg = TcpLeg(None, Interface.CLIENT_LEG, ("127.0.0.1", 5000), ("127.0.0.1", 104))
    tap = ClientTap(leg, FlowTable(broken).feed, parse_limit=1 << 20, warn=lambda _: None)
    tap.open(time.time_ns())
    tap.data(True, time.time_ns(), f.associate_rq())  # the observer raises inside
    tap.data(False, time.time_ns(), f.associate_ac())
    tap.close(True, CloseKind.FIN, time.time_ns())
    tap.end(time.time_ns())
    (error,) = [e for e in events if isinstance(e, AnalysisError)]
    assert "analysis of this connection stopped" in error.text and "model bug" in error.text


def test_tap_cuts_a_pdu_over_the_parse_limit(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcapng"
    writer = PcapngWriter(path)
    events: list[DissectorEvent] = []
    tap, warnings = _tap(events, writer, parse_limit=1000)
    ts = time.time_ns()
    tap.open(ts)
    tap.data(True, ts, f.associate_rq())
    tap.data(False, ts, f.associate_ac())
    big = f.message(1, f.command(command_field=0x0030, message_id=1), bytes(5000))
    tap.data(True, ts, big[:3000])  # the data set's header in here: captured
    tap.data(True, ts, big[3000:])  # the rest of its body: left out
    tap.data(True, ts, f.release_rq())
    tap.data(False, ts, f.release_rp())
    tap.close(True, CloseKind.FIN, ts)
    tap.close(False, CloseKind.FIN, ts)
    writer.close()
    assert warnings == [
        "P-DATA-TF declares 5006 bytes, above the parse limit of 1000: "
        "its body is neither captured nor observed"
    ]
    with CaptureFile(path) as capture:
        captured = sum(len(s.payload) for s in capture.segments())
    sent = sum(map(len, (f.associate_rq(), f.associate_ac(), big, f.release_rq(), f.release_rp())))
    left_out = len(big) - 3000
    assert captured == sent - left_out  # relayed, left out of the capture
    (a,) = [r for r in analyze([path]) if r["type"] == "association"]
    assert a["outcome"] == "released" and a["gaps"]["count"] == 1
    assert a["gaps"]["bytes"] == left_out


def test_rewrite_changes_only_what_is_asked() -> None:
    rq = f.associate_rq(calling="MODALITY", called="FRONT", max_length=0)
    rules = RewriteConfig(
        calling_ae={"MODALITY": "GATEWAY"}, called_ae={"*": "ARCHIVE"}, max_pdu=16384
    )
    decoded, _ = decode_pdu(rq)
    assert isinstance(decoded, AssociateRq)
    done = rewrite_rq(rq, decoded, rules)
    assert len(done.changes) == 3 and done.refused is None
    assert len(done.data) == len(rq)
    differing = [i for i, (a, b) in enumerate(zip(rq, done.data, strict=True)) if a != b]
    assert min(differing) >= 10 and max(differing) < len(rq)
    pdu, _ = decode_pdu(done.data)
    assert isinstance(pdu, AssociateRq)
    assert pdu.calling_ae == b"GATEWAY         " and pdu.called_ae == b"ARCHIVE         "
    assert pdu.user_information is not None and pdu.user_information.maximum_length == 16384
    ac = f.associate_ac(calling="GATEWAY", called="ARCHIVE", max_length=65536)
    decoded_ac, _ = decode_pdu(ac)
    assert isinstance(decoded_ac, AssociateAc)
    back = rewrite_ac(ac, decoded_ac, rules, done, decoded)
    pdu_ac, _ = decode_pdu(back.data)
    assert pdu_ac.calling_ae == b"MODALITY        " and pdu_ac.called_ae == b"FRONT           "  # type: ignore[union-attr]
    assert rewrite_rq(rq, decoded, RewriteConfig()).data is rq  # nothing asked: untouched


def test_an_upstream_reset_as_it_opened_is_a_connection_failure() -> None:
    """asyncio has no peer address for a socket the peer reset before the transport was
    made; the proxy must take that as a failed connection (refused and logged), not fail
    on the missing address."""

    async def made_after_reset() -> None:
        with socket.create_server(("127.0.0.1", 0)) as server:
            client = socket.create_connection(server.getsockname())
            accepted, _ = server.accept()
            accepted.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            accepted.close()  # a reset
            time.sleep(0.05)
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_connection(asyncio.Protocol, sock=client)
            with pytest.raises(ConnectionResetError):
                ends(transport)
            assert transport.is_closing()

    asyncio.run(made_after_reset())

    async def made_whole() -> None:
        with socket.create_server(("127.0.0.1", 0)) as server:
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_connection(asyncio.Protocol, *server.getsockname())
            local, remote = ends(transport)
            assert remote == server.getsockname() and local[0] == "127.0.0.1"
            transport.close()

    asyncio.run(made_whole())
