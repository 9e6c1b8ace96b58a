"""Seeds for ``bench/fuzz.py``, made from sample captures.

TCP payload streams for the observer, the segments for the flow table, the PDUs, command
sets and data set heads found in them, and the start of each file for the reader and the
pipeline. The same captures always give the same seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from fuzz_targets import (
    CLIENT,
    DECODER_MAX,
    FILE_MAX,
    FLOWS_MAX,
    MS,
    OBSERVER_MAX,
    SERVER,
    SYNTAXES,
    Call,
    encode_flow_segment,
    encode_observer_calls,
)

from analyzer.errors import InputError
from analyzer.sources.pcap import CaptureFile
from dissectors import (
    AssociationObserver,
    CloseKind,
    DimseMessageObserved,
    DissectorEvent,
    Segment,
)


@dataclass(slots=True)
class _Conversation:
    """The TCP segments of one connection of a sample capture, and its payload in order."""

    client: tuple[bytes, int]
    handshake: bool
    segments: list[tuple[bool, Segment]]
    calls: list[Call]


def conversations(path: Path) -> list[_Conversation]:
    """The TCP connections of a capture, each with its new payload bytes in order
    (retransmissions dropped), in the order they began."""
    convs: dict[frozenset[tuple[bytes, int]], _Conversation] = {}
    nxt: dict[tuple[bytes, int, bytes, int], int] = {}
    try:
        with CaptureFile(path) as capture:
            for seg in capture.segments():
                src, dst = (seg.src, seg.sport), (seg.dst, seg.dport)
                key = frozenset((src, dst))
                conv = convs.get(key)
                if conv is None:
                    syn = bool(seg.flags & 0x02)
                    client = dst if syn and seg.flags & 0x10 else src
                    conv = convs[key] = _Conversation(client, syn, [], [])
                from_client = src == conv.client
                seg = seg._replace(payload=bytes(seg.payload))
                conv.segments.append((not from_client, seg))
                direction = (*src, *dst)
                if seg.flags & 0x02:
                    nxt[direction] = (seg.seq + 1) & 0xFFFFFFFF
                payload = bytes(seg.payload)
                if payload:
                    expected = nxt.get(direction, seg.seq)
                    skip = (expected - seg.seq) & 0xFFFFFFFF
                    if skip < len(payload):
                        payload = payload[skip:]
                        conv.calls.append(Call("data", from_client, seg.ts, payload=payload))
                        nxt[direction] = (seg.seq + skip + len(payload)) & 0xFFFFFFFF
                    elif skip > 0x7FFFFFFF:  # a hole: the capture lost bytes
                        conv.calls.append(Call("gap", from_client, seg.ts, size=-skip & 0xFFFFFFFF))
                        conv.calls.append(Call("data", from_client, seg.ts, payload=payload))
                        nxt[direction] = (seg.seq + len(payload)) & 0xFFFFFFFF
                if seg.flags & 0x05:
                    kind = CloseKind.RST if seg.flags & 0x04 else CloseKind.FIN
                    if not any(
                        c.op == "closed" and c.from_client == from_client for c in conv.calls
                    ):
                        conv.calls.append(Call("closed", from_client, seg.ts, kind=kind))
    except InputError:
        return []
    return list(convs.values())


def _captures(dirs: list[Path]) -> list[Path]:
    found: list[Path] = []
    for d in dirs:
        if d.is_file():
            found.append(d)
        elif d.is_dir():
            found.extend(sorted(p for p in d.iterdir() if ".pcap" in p.name and p.is_file()))
    return found


def _rebase(calls: list[Call]) -> list[Call]:
    base = calls[0].ts if calls else 0
    return [Call(c.op, c.from_client, c.ts - base, c.payload, c.size, c.kind) for c in calls]


def _cut(data: bytes, limit: int) -> bytes:
    return data[:limit]


def observer_seeds(dirs: list[Path]) -> Iterator[tuple[str, bytes]]:
    for path in _captures(dirs):
        for i, conv in enumerate(conversations(path)):
            if conv.calls:
                options = (1 if conv.handshake else 0) | 2
                data = encode_observer_calls(options, _rebase(conv.calls))
                yield f"{path.stem}-{i}", _cut(data, OBSERVER_MAX)


def flow_seeds(dirs: list[Path]) -> Iterator[tuple[str, bytes]]:
    for path in _captures(dirs):
        out = bytearray()
        last: int | None = None
        for i, conv in enumerate(conversations(path)[:4]):
            for from_server, seg in conv.segments:
                step = 0 if last is None else max(0, (seg.ts - last) // MS)
                last = seg.ts
                out += encode_flow_segment(i, from_server, seg, step)
        if out:
            yield path.stem, _cut(bytes(out), FLOWS_MAX)


def _pdus(stream: bytes) -> Iterator[bytes]:
    pos = 0
    while pos + 6 <= len(stream):
        length = int.from_bytes(stream[pos + 2 : pos + 6], "big")
        yield stream[pos : pos + 6 + length]
        pos += 6 + length


def _streams(path: Path) -> Iterator[bytes]:
    for conv in conversations(path):
        for from_client in (True, False):
            data = b"".join(c.payload for c in conv.calls if c.from_client == from_client)
            if data:
                yield data


def pdu_seeds(dirs: list[Path]) -> Iterator[tuple[str, bytes]]:
    seen: set[bytes] = set()
    for path in _captures(dirs):
        for stream in _streams(path):
            for pdu in _pdus(stream):
                pdu = _cut(pdu, DECODER_MAX)
                # Every control PDU; P-DATA-TF only until there are enough of them.
                if (pdu[:1] != b"\x04" or len(seen) < 200) and pdu not in seen:
                    seen.add(pdu)
                    yield f"{path.stem}-{len(seen)}", pdu


def dimse_seeds(dirs: list[Path]) -> Iterator[tuple[str, bytes]]:
    seen: set[bytes] = set()
    for path in _captures(dirs):
        for conv in conversations(path):
            options = (1 if conv.handshake else 0) | 2
            events: list[DissectorEvent] = []
            obs = AssociationObserver(
                1, CLIENT, SERVER, events.append, ts=0, frame=1, handshake=bool(options & 1)
            )
            for call in conv.calls:
                if call.op == "data":
                    obs.data(call.from_client, call.payload, call.ts, None)
                elif call.op == "gap":
                    obs.gap(call.from_client, call.size, call.ts, None)
                elif call.op == "closed":
                    obs.closed(call.from_client, call.kind, call.ts, None)
            obs.finish()
            for event in events:
                if not isinstance(event, DimseMessageObserved):
                    continue
                msg = event.message
                found = [b"\x00" + msg.command.raw]
                if msg.dataset is not None and msg.dataset.kept:
                    ts = msg.dataset.transfer_syntax
                    index = SYNTAXES.index(ts) if ts in SYNTAXES else 0
                    found.append(bytes((1 | index << 1 | 0x40,)) + msg.dataset.kept)
                for seed in found:
                    seed = _cut(seed, DECODER_MAX)
                    if seed not in seen:
                        seen.add(seed)
                        yield f"{path.stem}-{len(seen)}", seed


def file_seeds(dirs: list[Path]) -> Iterator[tuple[str, bytes]]:
    for path in _captures(dirs):
        data = path.read_bytes()
        if len(data) <= FILE_MAX:
            yield path.name, data
        else:  # the start of a large capture: the reader reports the cut
            yield path.name, data[:FILE_MAX]


SEEDS: dict[str, Callable[[list[Path]], Iterator[tuple[str, bytes]]]] = {
    "observer": observer_seeds,
    "flows": flow_seeds,
    "pdu": pdu_seeds,
    "dimse": dimse_seeds,
    "pcap": file_seeds,
    "pipeline": file_seeds,
}


def seeds(target: str, dirs: list[Path], out: Path) -> int:
    """Write ``target``'s seeds from the captures in ``dirs`` to ``out``; return how many."""
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for name, data in SEEDS[target](dirs):
        (out / name).write_bytes(data)
        count += 1
    return count
