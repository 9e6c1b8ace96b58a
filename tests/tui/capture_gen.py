"""Write large synthetic captures: many short DICOM associations over TCP, as a pcap file.

Each association is one TCP connection (handshake, A-ASSOCIATE-RQ/AC, C-ECHOs, C-STOREs
whose data set is split over many P-DATA-TF PDUs, A-RELEASE-RQ/RP, FIN both ways), one PDU
per TCP segment. PDUs come from the project's encoders (tests.factories); Ethernet, IPv4,
TCP and pcap headers are plain :mod:`struct`. Checksums are left at zero: the analyzer
does not check them, and Wireshark only warns.

Run as a program to make a capture for a measurement::

    python -m tests.tui.capture_gen /tmp/big.pcap --associations 10000 --stores 2 --fragments 47
"""

from __future__ import annotations

import argparse
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from tests.factories import (
    CT_STORAGE,
    EXPLICIT,
    VERIFICATION,
    associate_ac,
    associate_rq,
    command,
    echo_rq,
    echo_rsp,
    p_data,
    release_rp,
    release_rq,
)

_PCAP_HEADER = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
_ETH = struct.Struct("!6s6sH")
_IP = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")

SYN, FIN, PSH_ACK, ACK, SYN_ACK = 0x02, 0x01, 0x18, 0x10, 0x12
SERVER_PORT = 11112
START_TS_NS = 1_795_549_000_000_000_000  # 2026-11-24, like the samples


@dataclass(frozen=True, slots=True)
class Shape:
    """What each generated association carries."""

    echoes: int = 1
    stores: int = 0
    fragments: int = 4
    """P-DATA-TF PDUs per C-STORE data set."""
    fragment_size: int = 64
    step_ns: int = 200_000
    """Time between two packets of one association."""

    @property
    def pdus_per_association(self) -> int:
        return 2 + 2 * self.echoes + self.stores * (2 + self.fragments) + 2


def _ip(n: int) -> bytes:
    return bytes((10, 1 + (n >> 16) % 200, (n >> 8) & 0xFF, n & 0xFF))


def _dataset(size: int) -> bytes:
    """An Explicit VR LE data set of about ``size`` bytes: a few attributes, then padding
    in a private OB element (so the kept prefix decodes)."""
    head = b"\x08\x00\x60\x00CS\x02\x00CT" + b"\x10\x00\x10\x00PN\x08\x00Doe^John"
    pad = max(0, size - len(head) - 12)
    pad += pad % 2
    return head + b"\x09\x00\x10\x10OB\x00\x00" + pad.to_bytes(4, "little") + bytes(pad)


def association_script(n: int, shape: Shape) -> list[tuple[bool, bytes]]:
    """The PDUs of association ``n`` as ``(from_client, bytes)``, one PDU per step."""
    out: list[tuple[bool, bytes]] = [
        (
            True,
            associate_rq(
                ((1, VERIFICATION, (EXPLICIT,)), (3, CT_STORAGE, (EXPLICIT,))),
                called="PACS",
                calling=f"MOD{n % 50:02d}",
            ),
        ),
        (
            False,
            associate_ac(
                ((1, 0, EXPLICIT), (3, 0, EXPLICIT)), called="PACS", calling=f"MOD{n % 50:02d}"
            ),
        ),
    ]
    mid = 0
    for _ in range(shape.echoes):
        mid += 1
        out += [(True, echo_rq(mid, 1)), (False, echo_rsp(mid, 1))]
    data = _dataset(shape.fragments * shape.fragment_size)
    size = -(-len(data) // shape.fragments)
    for _ in range(shape.stores):
        mid += 1
        cmd = command(
            command_field=0x0001,
            message_id=mid,
            affected_sop_class_uid=CT_STORAGE,
            affected_sop_instance_uid=f"1.2.3.{n}.{mid}",
            priority=0,
            dataset_type=0x0000,
        )
        out.append((True, p_data(3, cmd, is_command=True)))
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        for i, chunk in enumerate(chunks):
            out.append((True, p_data(3, chunk, is_command=False, last=i == len(chunks) - 1)))
        rsp = command(
            command_field=0x8001,
            message_id_being_responded_to=mid,
            affected_sop_class_uid=CT_STORAGE,
            affected_sop_instance_uid=f"1.2.3.{n}.{mid}",
            status=0,
        )
        out.append((False, p_data(3, rsp, is_command=True)))
    out += [(True, release_rq()), (False, release_rp())]
    return out


def _packets(n: int, shape: Shape, ts: int) -> Iterator[tuple[int, bytes]]:
    """The frames of association ``n``, starting at ``ts``: (ts_ns, Ethernet frame)."""
    cip, sip = _ip(n), b"\x0a\x00\x00\x01"
    cport = 1024 + n % 60000
    seq = {True: 1000, False: 5000}

    def frame(from_client: bool, flags: int, payload: bytes = b"") -> bytes:
        src, dst = (cip, sip) if from_client else (sip, cip)
        sport, dport = (cport, SERVER_PORT) if from_client else (SERVER_PORT, cport)
        tcp = _TCP.pack(
            sport, dport, seq[from_client], seq[not from_client], 5 << 4, flags, 65535, 0, 0
        )
        seq[from_client] += len(payload) + (1 if flags & (SYN | FIN) else 0)
        ip = _IP.pack(0x45, 0, 20 + len(tcp) + len(payload), n & 0xFFFF, 0x4000, 64, 6, 0, src, dst)
        return _ETH.pack(b"\x02" * 6, b"\x04" * 6, 0x0800) + ip + tcp + payload

    yield ts, frame(True, SYN)
    yield ts + 50_000, frame(False, SYN_ACK)
    yield ts + 100_000, frame(True, ACK)
    t = ts + 100_000
    for from_client, pdu in association_script(n, shape):
        t += shape.step_ns
        yield t, frame(from_client, PSH_ACK, pdu)
    yield t + 50_000, frame(True, FIN | ACK)
    yield t + 100_000, frame(False, FIN | ACK)
    yield t + 150_000, frame(True, ACK)


def _ts(head: tuple[int, bytes] | None) -> int:
    return head[0] if head is not None else 1 << 62


def write_capture(
    out: BinaryIO, associations: int, shape: Shape = Shape(), *, overlap: int = 4
) -> int:
    """Write ``associations`` associations to ``out`` as a pcap (microseconds, Ethernet).

    ``overlap`` associations run at once (their packets interleave, in time order), as on
    a busy PACS. Returns the number of PDUs written.
    """
    out.write(_PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
    duration = (shape.pdus_per_association + 6) * shape.step_ns
    spacing = max(1, duration // max(overlap, 1))
    pending: list[Iterator[tuple[int, bytes]]] = []
    heads: list[tuple[int, bytes] | None] = []
    started = 0
    while started < associations or pending:
        # start the next association when the earliest pending packet is past its start time
        next_start = START_TS_NS + started * spacing
        live = [h for h in heads if h is not None]
        earliest = min((h[0] for h in live), default=None)
        if started < associations and (earliest is None or next_start <= earliest):
            it = _packets(started + 1, shape, next_start)
            pending.append(it)
            heads.append(next(it, None))
            started += 1
            continue
        i = min(range(len(heads)), key=lambda k: _ts(heads[k]))
        head = heads[i]
        assert head is not None
        ts, data = head
        out.write(
            _RECORD.pack(ts // 1_000_000_000, ts % 1_000_000_000 // 1000, len(data), len(data))
        )
        out.write(data)
        heads[i] = next(pending[i], None)
        if heads[i] is None:
            del heads[i], pending[i]
    return associations * shape.pdus_per_association


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--associations", type=int, default=1000)
    parser.add_argument("--echoes", type=int, default=1)
    parser.add_argument("--stores", type=int, default=0)
    parser.add_argument("--fragments", type=int, default=4)
    args = parser.parse_args()
    shape = Shape(echoes=args.echoes, stores=args.stores, fragments=args.fragments)
    with open(args.path, "wb") as f:
        pdus = write_capture(f, args.associations, shape)
    print(f"{args.path}: {args.associations} associations, {pdus} PDUs")


if __name__ == "__main__":
    main()
