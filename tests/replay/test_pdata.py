"""The replay's P-DATA-TF writer, fed by the project's framer over built PDU streams: the same
PDUs come out, except where renumbering, leaving out, splitting or lost bytes ask for a
change."""

from __future__ import annotations

import itertools
import random
import struct

import pytest

from analyzer.sources.replay.command import (
    MESSAGE_ID,
    MESSAGE_ID_BEING_RESPONDED_TO,
    set_us,
)
from analyzer.sources.replay.pdata import PDataWriter, WriterBrokenError
from dissectors.dimse import CommandField, CommandSet, decode_command_set
from dissectors.framing import PduFramer
from dissectors.pdu import PDU_HEADER, PDataTf, Pdv, decode_pdu

CT = "1.2.840.10008.5.1.4.1.1.2"


def store_rq(mid: int) -> bytes:
    return CommandSet(
        command_field=CommandField.C_STORE_RQ,
        message_id=mid,
        affected_sop_class_uid=CT,
        affected_sop_instance_uid=f"1.2.3.{mid}",
        dataset_type=0x0000,
        priority=0,
    ).encode()


def store_rsp(mid: int, status: int = 0) -> bytes:
    return CommandSet(
        command_field=CommandField.C_STORE_RSP,
        message_id_being_responded_to=mid,
        affected_sop_class_uid=CT,
        affected_sop_instance_uid=f"1.2.3.{mid}",
        status=status,
    ).encode()


def pdu(*pdvs: Pdv) -> bytes:
    return PDataTf(pdvs).encode()


def data(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


class Run:
    """A writer with the framer in front of it, and what it sent."""

    def __init__(self, **kw: object) -> None:
        self.out = bytearray()
        self.notes: list[str] = []
        self.commands: list[bytes] = []
        self.decide = kw.pop("decide", None)
        self.framer = PduFramer()
        self.writer = PDataWriter(
            self.out.extend,
            on_command=self._command,
            note=self.notes.append,
            **kw,  # type: ignore[arg-type]
        )

    def _command(self, context_id: int, raw: bytes) -> tuple[bool, bytes | None]:
        self.commands.append(raw)
        if self.decide is None:
            return False, None
        return self.decide(context_id, raw)  # type: ignore[operator, no-any-return]

    def feed(self, stream: bytes, cuts: list[int] | None = None) -> None:
        points = [0, *(cuts or []), len(stream)]
        for a, b in itertools.pairwise(points):
            self.writer.feed(self.framer.receive_data(memoryview(stream[a:b])))

    def gap(self, size: int) -> None:
        self.writer.feed(self.framer.gap(size))


def pdus(stream: bytes) -> list[PDataTf]:
    """The PDUs of a sent stream, decoded."""
    out = []
    pos = 0
    while pos < len(stream):
        _, _, length = PDU_HEADER.unpack_from(stream, pos)
        decoded, defects = decode_pdu(stream[pos : pos + 6 + length])
        assert not defects and isinstance(decoded, PDataTf)
        out.append(decoded)
        pos += 6 + length
    return out


def messages(stream: bytes) -> list[tuple[int, bool, bytes]]:
    """(context, is command, bytes) of each fragment sequence, joined."""
    result: list[tuple[int, bool, bytes]] = []
    current: bytearray | None = None
    for p in pdus(stream):
        for v in p.pdvs:
            if current is None:
                current = bytearray()
            current += v.data
            if v.is_last:
                result.append((v.context_id, v.is_command, bytes(current)))
                current = None
    return result


STREAM = (
    pdu(Pdv(1, 3, store_rq(1)))
    + pdu(Pdv(1, 0, data(16000, 1)))
    + pdu(Pdv(1, 2, data(7002, 2)))
    + pdu(Pdv(1, 3, store_rq(2)), Pdv(1, 2, data(300, 3)))
)


@pytest.mark.parametrize("seed", range(8))
def test_same_pdus_out_whatever_the_segmentation(seed: int) -> None:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(STREAM)), 25))
    run = Run()
    run.feed(STREAM, cuts)
    run.writer.flush()
    assert bytes(run.out) == STREAM
    assert [decode_command_set(c)[0].message_id for c in run.commands] == [1, 2]  # type: ignore[union-attr]
    assert not run.notes


def test_long_pdus_stream_past_the_hold_limit_unchanged() -> None:
    big = pdu(Pdv(1, 3, store_rq(1))) + pdu(Pdv(1, 2, data(300_000, 4)))
    run = Run(hold_limit=10_000)
    run.feed(big, list(range(1000, len(big), 7001)))
    assert bytes(run.out) == big  # streamed, not held: sent before the PDU ended
    assert run.writer.split == 0


def test_split_to_the_peers_maximum_length() -> None:
    run = Run(max_length=4096, captured_max=16384)
    run.feed(STREAM, [5000, 20000])
    run.writer.flush()
    sent = pdus(bytes(run.out))
    assert all(len(p.encode()) - 6 <= 4096 for p in sent)
    assert len(sent) > 4
    assert messages(bytes(run.out)) == messages(STREAM)
    assert all(len(v.data) % 2 == 0 for p in sent for v in p.pdvs)
    assert run.writer.split == 2  # the two data PDUs; the mixed one fits


def test_split_while_streaming_a_pdu_longer_than_the_hold_limit() -> None:
    big = pdu(Pdv(1, 3, store_rq(1))) + pdu(Pdv(1, 2, data(100_000, 5)))
    run = Run(max_length=16384, hold_limit=20_000)
    run.feed(big, list(range(3000, len(big), 9000)))
    sent = pdus(bytes(run.out))
    assert all(len(p.encode()) - 6 <= 16384 for p in sent)
    assert messages(bytes(run.out)) == messages(big)


def test_a_pdu_already_too_long_for_the_captured_peer_is_kept() -> None:
    """The defect being reproduced (fail_pdu_too_long) is not repaired."""
    one = pdu(Pdv(1, 3, store_rq(1)), Pdv(1, 2, data(9000, 6)))
    run = Run(max_length=4096, captured_max=4096)
    run.feed(one)
    assert bytes(run.out) == one
    framed = Run(max_length=4096, captured_max=16384, keep_framing=True)
    framed.feed(one)
    assert bytes(framed.out) == one


def test_response_renumbered_in_place_across_two_fragments() -> None:
    rsp = store_rsp(7, 0xB000)
    cut = 20
    stream = pdu(Pdv(3, 1, rsp[:cut])) + pdu(Pdv(3, 3, rsp[cut:]))

    def renumber(ctx: int, raw: bytes) -> tuple[bool, bytes | None]:
        return False, set_us(raw, MESSAGE_ID_BEING_RESPONDED_TO, 41)

    run = Run(decide=renumber)
    run.feed(stream, [9, 30])
    run.writer.flush()
    ((ctx, is_command, raw),) = messages(bytes(run.out))
    cmd, defects = decode_command_set(raw)
    assert ctx == 3 and is_command and not defects and cmd is not None
    assert cmd.message_id_being_responded_to == 41 and cmd.status == 0xB000
    assert len(run.out) == len(stream)  # same lengths: only the value changed


def test_a_message_left_out_also_where_it_shares_a_pdu() -> None:
    stream = (
        pdu(Pdv(1, 3, store_rq(1)))
        + pdu(Pdv(1, 2, data(500, 7)), Pdv(3, 3, store_rq(2)))
        + pdu(Pdv(3, 2, data(600, 8)))
        + pdu(Pdv(1, 3, store_rq(3)), Pdv(1, 2, data(10, 9)))
    )

    def drop_context_3(ctx: int, raw: bytes) -> tuple[bool, bytes | None]:
        return ctx == 3, None

    run = Run(decide=drop_context_3)
    run.feed(stream, [13, 300, 1100])
    run.writer.flush()
    kept = messages(bytes(run.out))
    assert [(c, cmd) for c, cmd, _ in kept] == [(1, True), (1, False), (1, True), (1, False)]
    assert kept[1][2] == data(500, 7)


def test_lost_bytes_inside_a_pdv_are_sent_as_zeros() -> None:
    payload = data(20_000, 10)
    stream = pdu(Pdv(1, 2, payload))
    run = Run()
    run.feed(stream[:5000])
    run.gap(1448)
    run.feed(stream[5000 + 1448 :])
    run.writer.flush()
    ((_, _, sent),) = messages(bytes(run.out))
    assert sent == payload[: 5000 - 12] + bytes(1448) + payload[5000 - 12 + 1448 :]
    assert run.writer.zero_filled == 1448


def test_lost_framing_drops_the_held_pdu_and_the_rest_of_its_message() -> None:
    stream = pdu(Pdv(1, 3, store_rq(1))) + pdu(Pdv(1, 0, data(3000, 11)))
    after = pdu(Pdv(1, 2, data(100, 12))) + pdu(Pdv(1, 3, store_rq(2)))
    run = Run()
    run.feed(stream[:-10])
    run.gap(10 + 6)  # the end of the data PDU and the next PDU's header
    run.feed(after[6:] + after)  # the framer scans, then finds PDUs again
    run.writer.flush()
    sent = [(v.context_id, v.control, len(v.data)) for p in pdus(bytes(run.out)) for v in p.pdvs]
    # The command of message 1, then what the framer found again (the 3000-byte fragment the
    # gap cut is not sent): a command set, a last data fragment, a command set.
    assert sent == [(1, 3, 102), (1, 3, 102), (1, 2, 100), (1, 3, 102)]
    assert run.notes == [
        "a P-DATA-TF the capture lost part of was not sent, nor the rest of its message"
    ]


def test_lost_framing_inside_a_streamed_pdu_cannot_go_on() -> None:
    big = pdu(Pdv(1, 2, data(50_000, 13)))
    run = Run(hold_limit=1000)
    run.feed(big[:20_000])
    with pytest.raises(WriterBrokenError):
        run.writer.feed(run.framer.gap(40_000))


def test_flush_commits_a_pdu_being_read() -> None:
    run = Run()
    run.feed(STREAM[:9000])
    run.writer.flush()
    assert run.writer.in_pdu
    assert bytes(run.out) == STREAM[: len(run.out)]
    run.feed(STREAM[9000:])
    run.writer.flush()
    assert bytes(run.out) == STREAM


def test_set_us_changes_only_the_value() -> None:
    raw = store_rsp(5)
    out = set_us(raw, MESSAGE_ID_BEING_RESPONDED_TO, 0x1234)
    assert out is not None and len(out) == len(raw)
    assert decode_command_set(out)[0].message_id_being_responded_to == 0x1234  # type: ignore[union-attr]
    assert sum(a != b for a, b in zip(raw, out, strict=True)) <= 2
    assert set_us(raw, MESSAGE_ID, 3) is None  # a response has no Message ID
    # An element before it declares a length past the end: the walk stops, nothing is set.
    broken = raw[:12] + struct.pack("<HHI", 0, 2, 1000) + raw[12:]
    assert set_us(broken, MESSAGE_ID_BEING_RESPONDED_TO, 3) is None
    assert set_us(b"\x00\x00\x00\x00\xff\xff\xff\xff", MESSAGE_ID, 1) is None
