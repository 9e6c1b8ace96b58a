"""What ``bench/fuzz.py`` fuzzes: one function per target that takes the fuzzer's bytes.

Each target turns arbitrary bytes into calls on a stable entry point of dicomtap and checks
its invariants. A target returns normally when dicomtap behaved (a documented error, such
as :class:`~analyzer.errors.InputError` for a file that is not a capture, counts as
behaving); anything else propagates: an undocumented exception, or
:class:`InvariantBroken` when a checked property failed.

Targets (:data:`TARGETS`):

* ``observer``: :class:`~dissectors.AssociationObserver` fed two directions of bytes,
  gaps, closes and anomalies (the input encodes the calls, see :func:`observer_calls`);
  it must never raise and must end with exactly one terminal event that counts every
  byte it was given;
* ``flows``: :class:`~dissectors.FlowTable` fed crafted TCP segments of up to four
  connections (see :func:`flow_segments`); no connection's analysis may fail;
* ``pdu``: :func:`~dissectors.pdu.decode_control_pdu` and friends on one PDU (header
  included); what was decoded must encode again (the proxy re-encodes what it decoded);
* ``dimse``: :func:`~dissectors.dimse.decode_command_set`, or a data set head collected,
  sniffed, decoded with pydicom and rendered as the TUI renders it;
* ``pcap``: :class:`~analyzer.sources.pcap.CaptureFile` on a crafted file: a clean
  :class:`~analyzer.errors.InputError` (one line) or segments, a truncation note at most;
* ``pipeline``: :func:`~analyzer.pipeline.analyze_files` with the diagnosis rules, then every
  report writer (text, JSON Lines, CSV, diagnosis text and JSON): no exception, no analysis
  error, JSON that parses, CSV that parses, no control character in human text.

Seeds (:func:`seeds`) come from sample captures: TCP payload streams for the observer, the
segments for the flow table, the PDUs, command sets and data set heads found in them, and
the whole files for the reader and the pipeline.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import struct
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from analyzer.errors import InputError
from analyzer.findings import Diagnosis
from analyzer.pipeline import analyze_files
from analyzer.reports import csvout, diagnosis, jsonl, text
from analyzer.reports.common import in_start_order
from analyzer.sources.pcap import CaptureFile
from analyzer.store import Store
from dissectors import (
    AnalysisError,
    AssociationEnded,
    AssociationObserver,
    CloseKind,
    ConnectionWithoutDicom,
    DissectorEvent,
    Endpoint,
    FlowTable,
    Segment,
)
from dissectors.dimse import decode_command_set
from dissectors.dimse.dataset import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    DataSetCollector,
    sniff_transfer_syntax,
)
from dissectors.pdu import PduType, decode_control_pdu, decode_p_data, decode_pdu
from tui.dataset import items as dataset_items
from tui.dataset import label as dataset_label

MS = 1_000_000
"""Nanoseconds in a millisecond: the time step of the crafted calls."""


class InvariantBroken(AssertionError):
    """A property the target checks did not hold: ``name`` says which (stable, for telling
    one defect from another), the message the details."""

    def __init__(self, name: str, what: str) -> None:
        super().__init__(what)
        self.name = name


def check(condition: bool, name: str, what: str) -> None:
    """Raise :class:`InvariantBroken` (``name``, ``what``) unless ``condition``."""
    if not condition:
        raise InvariantBroken(name, what)


# --- observer ------------------------------------------------------------------------------
#
# Input: one options byte, then records until the input ends. Options: bit 0 the handshake
# was seen, bit 1 the server accepted it, bits 2-3 the bytes kept of each data set. Record:
# a tag byte (bit 7: sent by the server; bits 4-6: the operation; bits 0-3: milliseconds
# since the previous record), then its operands:
#   0-3 data: a 2-byte big-endian length and that many bytes (fewer at the end of input);
#   4   repeated data: a 2-byte length, a 2-byte count, and the bytes sent count times in
#       one call (at most REPEAT_LIMIT bytes): what a small input needs to show a defect that
#       takes many small PDUs in one segment (a recursion, a quadratic cost);
#   5   gap: a 2-byte size, times 65536 when bit 0 is set;
#   6   closed: FIN, or RST when bit 0 is set (the side sends nothing after it);
#   7   a TCP anomaly.
# finish() is called at the end.

_KEEP = (64 * 1024, 0, 16, 1024)
_OP_REPEAT, _OP_GAP, _OP_CLOSED, _OP_ANOMALY = 4, 5, 6, 7
REPEAT_LIMIT = 16 * 1024
_ANOMALIES = ("retransmission-differs", "reordered", "zero-window", "")


@dataclass(frozen=True, slots=True)
class Call:
    """One crafted call on the observer: ``op`` is data, gap, closed or anomaly."""

    op: str
    from_client: bool
    ts: int
    payload: bytes = b""
    size: int = 0
    kind: CloseKind = CloseKind.FIN


def observer_calls(data: bytes) -> tuple[int, list[Call]]:
    """Decode an observer input into its options byte and its calls."""
    if not data:
        return 0, []
    options = data[0]
    calls: list[Call] = []
    pos, ts = 1, 0
    closed: set[bool] = set()
    while pos < len(data):
        tag = data[pos]
        pos += 1
        from_client = not tag & 0x80
        op = (tag >> 4) & 7
        ts += (tag & 0x0F) * MS
        if op <= _OP_GAP:
            n = int.from_bytes(data[pos : pos + 2], "big")
            pos += 2
            if op == _OP_GAP:
                call = Call("gap", from_client, ts, size=n * (65536 if tag & 1 else 1))
            elif op == _OP_REPEAT:
                count = int.from_bytes(data[pos : pos + 2], "big")
                unit = data[pos + 2 : pos + 2 + n]
                pos += 2 + n
                count = min(count, REPEAT_LIMIT // max(1, len(unit)))
                call = Call("data", from_client, ts, payload=unit * count)
            else:
                call = Call("data", from_client, ts, payload=data[pos : pos + n])
                pos += n
            if from_client not in closed and (call.payload or call.size):
                calls.append(call)
        elif op == _OP_CLOSED:
            kind = CloseKind.RST if tag & 1 else CloseKind.FIN
            calls.append(Call("closed", from_client, ts, kind=kind))
            closed.add(from_client)
        else:
            calls.append(Call("anomaly", from_client, ts, size=tag & 3))
    return options, calls


def encode_observer_calls(options: int, calls: list[Call]) -> bytes:
    """The input that :func:`observer_calls` decodes to ``calls`` (seeds, minimised cases).

    Data longer than 65535 bytes is split over several records."""
    out = bytearray((options,))
    last = 0
    for call in calls:
        step = min(15, max(0, (call.ts - last) // MS))
        last = call.ts
        side = 0 if call.from_client else 0x80
        if call.op == "data":
            payload = call.payload
            for at in range(0, len(payload), 0xFFFF):
                chunk = payload[at : at + 0xFFFF]
                out += bytes((side | step,)) + len(chunk).to_bytes(2, "big") + chunk
                step = 0
        elif call.op == "gap":
            big = call.size > 0xFFFF
            size = call.size >> 16 if big else call.size
            out += bytes((side | _OP_GAP << 4 | step | big,)) + size.to_bytes(2, "big")
        elif call.op == "closed":
            out += bytes((side | _OP_CLOSED << 4 | step | (call.kind == CloseKind.RST),))
        else:
            out += bytes((side | _OP_ANOMALY << 4 | step,))
    return bytes(out)


CLIENT = Endpoint("192.0.2.1", 49152)
SERVER = Endpoint("192.0.2.2", 104)


def run_observer(data: bytes) -> None:
    """Feed the calls ``data`` encodes to one observer; check it ends with one verdict."""
    options, calls = observer_calls(data)
    events: list[DissectorEvent] = []
    obs = AssociationObserver(
        1,
        CLIENT,
        SERVER,
        events.append,
        ts=0,
        frame=1,
        handshake=bool(options & 1),
        keep=_KEEP[(options >> 2) & 3],
    )
    if options & 2:
        obs.accepted()
    fed = 0
    frame = 1
    for call in calls:
        frame += 1
        if call.op == "data":
            obs.data(call.from_client, call.payload, call.ts, frame)
            fed += len(call.payload)
        elif call.op == "gap":
            obs.gap(call.from_client, call.size, call.ts, frame)
            fed += call.size
        elif call.op == "closed":
            obs.closed(call.from_client, call.kind, call.ts, frame)
        else:
            code = _ANOMALIES[call.size]
            obs.anomaly(call.from_client, code, f"crafted {code}", call.ts, frame, None)
    obs.finish()
    ends = [e for e in events if isinstance(e, AssociationEnded | ConnectionWithoutDicom)]
    check(len(ends) == 1, "one-ending", f"{len(ends)} terminal events, not one")
    check(events[-1] is ends[0], "ending-last", "events after the terminal event")
    end = ends[0]
    if isinstance(end, AssociationEnded):
        counted = end.bytes_from_requestor + end.bytes_from_acceptor
    else:
        counted = end.bytes_from_client + end.bytes_from_server
    check(counted == fed, "bytes-counted", f"{counted} bytes counted, {fed} fed")


# --- flows ---------------------------------------------------------------------------------
#
# Input: records until the input ends. Record: a tag byte (bit 7: sent by the server;
# bits 5-6: which of four connections; bits 0-4: the TCP flags FIN SYN RST PSH ACK), the
# sequence and acknowledgement numbers (4 bytes each, big-endian), milliseconds since the
# previous segment (1 byte), payload bytes the snap length cut (1 byte), a 2-byte payload
# length and the payload.

_FLOW_HEADER = struct.Struct(">BIIBBH")
_FLOW_CLIENTS = tuple(bytes((192, 0, 2, 1 + i)) for i in range(4))
_FLOW_SERVER = bytes((192, 0, 2, 100))
_FLOW_PORTS = ((50000, 104), (50001, 104), (50002, 11112), (50003, 4000))


def flow_segments(data: bytes) -> Iterator[Segment]:
    """Decode a flows input into TCP segments."""
    pos, ts, frame = 0, 0, 0
    view = memoryview(data)
    while pos + _FLOW_HEADER.size <= len(data):
        tag, seq, ack, step, missing, n = _FLOW_HEADER.unpack_from(data, pos)
        pos += _FLOW_HEADER.size
        payload = view[pos : pos + n]
        pos += n
        ts += step * MS
        frame += 1
        conn = (tag >> 5) & 3
        client = (_FLOW_CLIENTS[conn], _FLOW_PORTS[conn][0])
        server = (_FLOW_SERVER, _FLOW_PORTS[conn][1])
        src, dst = (server, client) if tag & 0x80 else (client, server)
        yield Segment(
            ts, frame, src[0], src[1], dst[0], dst[1], seq, ack, tag & 0x1F, payload, missing
        )


def encode_flow_segment(conn: int, from_server: bool, seg: Segment, step: int) -> bytes:
    """One record of a flows input (seeds)."""
    tag = (0x80 if from_server else 0) | (conn & 3) << 5 | (seg.flags & 0x1F)
    payload = bytes(seg.payload[:0xFFFF])
    header = _FLOW_HEADER.pack(
        tag, seg.seq, seg.ack, min(255, step), min(255, seg.missing), len(payload)
    )
    return header + payload


def run_flows(data: bytes) -> None:
    """Feed the segments ``data`` encodes to a flow table; no analysis may fail."""
    failures: list[BaseException] = []

    def emit(event: DissectorEvent) -> None:
        if isinstance(event, AnalysisError):
            # The flow table reports a failed connection from inside its except block: the
            # exception being handled is the one that stopped the analysis.
            exc = sys.exc_info()[1]
            failures.append(
                exc if exc is not None else InvariantBroken("analysis-error", event.text)
            )

    table = FlowTable(emit, reorder_limit=64 * 1024)
    for seg in flow_segments(data):
        table.feed(seg)
    table.finish()
    if failures:
        raise failures[0]


# --- pdu -----------------------------------------------------------------------------------
#
# Input: one PDU as on the wire (the 6-byte header, then the body). The body is what
# follows the header, whatever length the header declares; decode_pdu also gets the whole.

_CONTROL_TYPES = frozenset(int(t) for t in PduType) - {int(PduType.P_DATA_TF)}


def run_pdu(data: bytes) -> None:
    """Decode ``data`` as one PDU; what decodes must encode again."""
    if not data:
        return
    pdu_type, body = data[0], data[6:]
    if pdu_type in _CONTROL_TYPES:
        pdu, defects = decode_control_pdu(pdu_type, body)
        check(all(d.offset >= 0 for d in defects), "defect-offset", "a negative defect offset")
        encoded = pdu.encode()  # the proxy re-encodes what it decoded (rewrites, rejects)
        again, _ = decode_control_pdu(pdu_type, encoded[6:])
        check(again.encode() == encoded, "re-encode", "a decoded PDU does not re-encode to itself")
    elif pdu_type == PduType.P_DATA_TF:
        decode_p_data(body)
    # ValueError is documented: too short, a length that does not match, an undefined type.
    with contextlib.suppress(ValueError):
        decode_pdu(data)


# --- dimse ---------------------------------------------------------------------------------
#
# Input: a selector byte, then the bytes. Selector bit 0 clear: a command set. Set: a data set
# head; bits 1-3 pick the transfer syntax (none: sniffed), bits 4-5 the bytes kept, bit 6
# whether it completed; bit 7 splits the bytes into two PDV fragments at their middle.

SYNTAXES: tuple[str | None, ...] = (
    None,
    IMPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    "1.2.840.10008.1.2.4.50",
    None,
    None,
)
_DATASET_KEEP = (64 * 1024, 16, 1024, 0)


def run_dimse(data: bytes) -> None:
    """Decode a command set, or collect, decode and render a data set head."""
    if not data:
        return
    selector, body = data[0], data[1:]
    if not selector & 1:
        cmd, _ = decode_command_set(body)
        if cmd is not None:
            _ = (cmd.label, cmd.service, cmd.sop_class_uid, cmd.sop_instance_uid, cmd.has_dataset)
        return
    collector = DataSetCollector(SYNTAXES[(selector >> 1) & 7], _DATASET_KEEP[(selector >> 4) & 3])
    if selector & 0x80:
        half = len(body) // 2
        collector.add(memoryview(body[:half]))
        collector.add(memoryview(body[half:]))
    else:
        collector.add(memoryview(body))
    info = collector.finish(complete=bool(selector & 0x40))
    sniff_transfer_syntax(body)
    _ = info.truncated
    _render(info.decode(), depth=0)


def _render(ds: object, depth: int) -> None:
    """Render every element as the TUI's data set tree does, sequences included."""
    for elem in ds:  # type: ignore[attr-defined]
        dataset_label(elem)
        if elem.VR == "SQ" and depth < 8:
            for _name, item in dataset_items(elem):
                _render(item, depth + 1)


# --- pcap ----------------------------------------------------------------------------------


class _MemoryFile:
    """A file in memory with a path that ``open`` accepts (``/proc/self/fd/N`` of a memfd)."""

    def __init__(self) -> None:
        self.fd = os.memfd_create("dicomtap-fuzz")
        self.path = f"/proc/self/fd/{self.fd}"

    def write(self, data: bytes) -> str:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)
        return self.path


_memory_file: _MemoryFile | None = None


def _as_file(data: bytes) -> str:
    global _memory_file
    if _memory_file is None:
        _memory_file = _MemoryFile()
    return _memory_file.write(data)


def _one_line(message: str, what: str) -> None:
    check("\n" not in message and "\r" not in message, "one-line", f"{what} spans lines")
    check(
        _no_control(message), "control-characters", f"{what} holds control characters: {message!r}"
    )


def _no_control(text: str, allowed: str = "") -> bool:
    return not any((ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F) and c not in allowed for c in text)


def run_pcap(data: bytes) -> None:
    """Read ``data`` as a capture file: InputError, or segments and at most a note."""
    path = _as_file(data)
    try:
        capture = CaptureFile(path)
    except InputError as exc:
        _one_line(str(exc), "the InputError")
        return
    with capture:
        for seg in capture.segments():
            check(seg.frame is not None, "segment-frame", "a segment without a frame number")
        stats = capture.stats
        if stats.truncated:
            check(stats.truncation is not None, "truncation-note", "truncated without a note")
        if stats.truncation is not None:
            _one_line(stats.truncation, "the truncation note")
        for warning in stats.warnings():
            _one_line(warning, "a reader warning")


# --- pipeline ------------------------------------------------------------------------------


def run_pipeline(data: bytes) -> None:
    """Analyse ``data`` as a capture and write every report."""
    path = _as_file(data)
    store = Store()
    try:
        analyze_files([path], store, rules=Diagnosis())
    except InputError as exc:
        _one_line(str(exc), "the InputError")
        return
    for note in (*store.source.truncated, *store.source.warnings):
        _one_line(note, "a note on stderr")
    for finding in store.findings():
        if finding.code == "analysis-error":
            # "... stopped at frame N: RecursionError: maximum recursion depth ..."
            match = re.search(r": (\w+): ", finding.explanation)
            raise InvariantBroken(
                f"analysis-error:{match.group(1) if match else '?'}", finding.explanation
            )

    # Every writer runs before the control-character checks fail, so that an escaping
    # defect (a finding of its own) does not hide a writer that raises.
    human: list[tuple[str, str]] = []
    out = io.StringIO()
    text.write(store, out)
    human.append(("the text report", out.getvalue()))
    out = io.StringIO()
    diagnosis.write(store, out)
    human.append(("the diagnosis", out.getvalue()))
    human.append(("the verdict", diagnosis.verdict(store)))
    human.append(("the summary line", text.summary_line(store)))
    diagnosis.exit_status(store)

    out = io.StringIO()
    jsonl.write(store, out, "dicomtap fuzz")
    for line in out.getvalue().split("\n")[:-1]:  # JSON Lines end at a newline only
        json.loads(line)
    for a in in_start_order(store):  # diagnose --format json
        json.loads(jsonl.json_line(jsonl.association_record(a)))
        for f in store.findings(a.id):
            json.loads(jsonl.json_line(jsonl.finding_record(f)))

    out = io.StringIO()
    csvout.write(store, out)
    list(csv.reader(io.StringIO(out.getvalue())))

    for what, value in human:
        if not _no_control(value, "\n"):
            # split("\n"), not splitlines(): that also splits at \x1c-\x1e, \x85, \u2028 ...
            line = next(x for x in value.split("\n") if not _no_control(x))
            raise InvariantBroken(
                "control-characters", f"control characters in {what}: {line.strip()[:200]!r}"
            )


# --- the table of targets ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """A fuzz target: its entry point and the largest input worth trying."""

    name: str
    run: Callable[[bytes], None]
    max_len: int
    doc: str


# The largest inputs tried. Enough for a negotiation, a few DIMSE messages and ~1000 small
# PDUs in one segment (what it takes to find a recursion); more only slows the search.
OBSERVER_MAX = 8 * 1024
FLOWS_MAX = 8 * 1024
DECODER_MAX = 4 * 1024
FILE_MAX = 16 * 1024

TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("observer", run_observer, OBSERVER_MAX, "AssociationObserver"),
        Target("flows", run_flows, FLOWS_MAX, "FlowTable (TCP reassembly)"),
        Target("pdu", run_pdu, DECODER_MAX, "PDU decoders and encoders"),
        Target("dimse", run_dimse, DECODER_MAX, "DIMSE command/data set decoders"),
        Target("pcap", run_pcap, FILE_MAX, "pcap/pcapng reader (CaptureFile)"),
        Target("pipeline", run_pipeline, FILE_MAX, "analyze_files + every report"),
    )
}
