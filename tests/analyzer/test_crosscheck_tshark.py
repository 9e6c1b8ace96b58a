"""Cross-check against Wireshark's own DICOM dissector (tshark) on the same captures.

Per frame, every PDU field both tools decode must agree: PDU type and length, AE titles,
presentation context IDs and results, abstract and transfer syntaxes, Maximum Length,
implementation class UID and version name, reject and abort codes, and each PDV's context
ID, flags and length.
"""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from analyzer.pipeline import analyze_files
from analyzer.sources.pcap import CaptureFile
from analyzer.store import Store
from dissectors import DissectorEvent, FlowTable, PduObserved, StreamGap
from dissectors.pdu import Abort, AssociateAc, AssociateRj, AssociateRq
from tests.pcapgen import read_classic, write_pcap
from tests.peers import tool

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = sorted(
    [p for p in (ROOT / "samples").iterdir() if p.suffix in (".pcap", ".pcapng")]
    + list((ROOT / "tests" / "data" / "corpus").glob("*.pcap")),
    key=lambda p: p.name,
)

FIELDS = [
    "frame.number",
    "dicom.pdu.type",
    "dicom.pdu.len",
    "dicom.assoc.ae.calling",
    "dicom.assoc.ae.called",
    "dicom.pctx.id",
    "dicom.pctx.result",
    "dicom.pctx.abss.syntax",
    "dicom.pctx.xfer.syntax",
    "dicom.max_pdu_len",
    "dicom.userinfo.uid",
    "dicom.userinfo.version",
    "dicom.assoc.reject.result",
    "dicom.assoc.reject.source",
    "dicom.assoc.reject.reason",
    "dicom.assoc.abort.source",
    "dicom.assoc.abort.reason",
    "dicom.pdv.ctx",
    "dicom.pdv.flags",
    "dicom.pdv.len",
]

Row = dict[str, list[str]]


def ours(path: Path) -> tuple[dict[int, Row], set[int], set[int]]:
    """Our PDUs, flattened per frame in tshark's field shapes; the DICOM server ports; and
    the frames of PDUs tshark cannot show: a PDU that never completed, a PDU type PS3.8
    does not define, or a PDU after bytes the capture lost (tshark stops reassembling a
    stream at a hole; dicomtap reports the hole and picks the stream up again)."""
    events: list[DissectorEvent] = []
    table = FlowTable(events.append)
    with CaptureFile(path) as capture:
        for seg in capture.segments():
            table.feed(seg)
    table.finish()
    rows: dict[int, Row] = defaultdict(lambda: defaultdict(list))
    beyond: set[int] = set()
    gap_after: dict[int, int] = {}
    for e in events:
        if isinstance(e, StreamGap) and e.frame is not None:
            gap_after.setdefault(e.connection, e.frame)
        if not isinstance(e, PduObserved):
            continue
        assert e.end_frame is not None
        lost = e.connection in gap_after and e.end_frame >= gap_after[e.connection]
        if not e.complete or not 1 <= e.pdu_type <= 7 or lost:
            beyond.add(e.end_frame)
            continue
        r = rows[e.end_frame]
        r["dicom.pdu.type"].append(str(e.pdu_type))
        r["dicom.pdu.len"].append(str(e.length))
        pdu = e.pdu
        if isinstance(pdu, AssociateRq | AssociateAc):
            r["dicom.assoc.ae.calling"].append(pdu.calling_ae.decode("latin-1").strip())
            r["dicom.assoc.ae.called"].append(pdu.called_ae.decode("latin-1").strip())
            ui = pdu.user_information
            if ui is not None:
                if ui.maximum_length is not None:
                    r["dicom.max_pdu_len"].append(str(ui.maximum_length))
                if ui.implementation_class_uid:
                    r["dicom.userinfo.uid"].append(ui.implementation_class_uid)
                if ui.implementation_version_name:
                    r["dicom.userinfo.version"].append(ui.implementation_version_name)
        if isinstance(pdu, AssociateRq):
            for c in pdu.presentation_contexts:
                r["dicom.pctx.id"].append(str(c.context_id))
                if c.abstract_syntax:
                    r["dicom.pctx.abss.syntax"].append(c.abstract_syntax)
                r["dicom.pctx.xfer.syntax"].extend(c.transfer_syntaxes)
        if isinstance(pdu, AssociateAc):
            for ac in pdu.presentation_contexts:
                r["dicom.pctx.id"].append(str(ac.context_id))
                r["dicom.pctx.result"].append(str(ac.result))
                if ac.transfer_syntax:
                    r["dicom.pctx.xfer.syntax"].append(ac.transfer_syntax)
        if isinstance(pdu, AssociateRj):
            r["dicom.assoc.reject.result"].append(str(pdu.result))
            r["dicom.assoc.reject.source"].append(str(pdu.source))
            r["dicom.assoc.reject.reason"].append(str(pdu.reason))
        if isinstance(pdu, Abort):
            r["dicom.assoc.abort.source"].append(str(pdu.source))
            r["dicom.assoc.abort.reason"].append(str(pdu.reason))
        for ctx, control, length in e.pdvs:
            r["dicom.pdv.ctx"].append(str(ctx))
            r["dicom.pdv.flags"].append(str(control & 0x03))
            r["dicom.pdv.len"].append(str(length))
    store = Store()
    analyze_files([path], store)
    ports = {a.server.port for a in store.associations() if a.outcome != "never-associated"}
    return {k: dict(v) for k, v in rows.items()}, ports, beyond


_UID = re.compile(r"\(([0-9.]+)\)$")


def _normalise(field: str, value: str) -> str:
    if field in ("dicom.pctx.abss.syntax", "dicom.pctx.xfer.syntax"):
        m = _UID.search(value)
        return m.group(1) if m else value
    if field in (
        "dicom.assoc.ae.calling",
        "dicom.assoc.ae.called",
        "dicom.userinfo.uid",
        "dicom.userinfo.version",
    ):
        return value.strip(" \x00")
    if value.startswith("0x"):
        return str(int(value, 16))
    return value


def _tshark_argv(path: Path, ports: set[int]) -> list[str]:
    """tshark reading ``path``, with ``ports`` decoded as DICOM."""
    argv = [tool("tshark"), "-r", str(path), "-o", "dicom.tag_tree:TRUE"]
    for port in sorted(ports):
        argv += ["-d", f"tcp.port=={port},dicom"]
    return argv


def theirs(path: Path, ports: set[int]) -> dict[int, Row]:
    argv = [
        *_tshark_argv(path, ports),
        "-Y",
        "dicom",
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=\x1f",
        "-E",
        "separator=\x1e",
    ]
    for f in FIELDS:
        argv += ["-e", f]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout
    rows: dict[int, Row] = {}
    for line in out.split("\n"):
        if not line:
            continue
        values = line.split("\x1e")
        frame = int(values[0])
        row: Row = {}
        for name, value in zip(FIELDS[1:], values[1:], strict=True):
            if value:
                row[name] = [_normalise(name, v) for v in value.split("\x1f")]
        rows[frame] = row
    return rows


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_every_pdu_field_agrees_with_tshark(path: Path) -> None:
    mine, ports, beyond = ours(path)
    if not ports:
        # No association at all (a probe, TLS): tshark must not find DICOM either.
        assert theirs(path, {11112, 104, 4242}) == {}
        return
    wireshark = theirs(path, ports)
    # Frames where one PDU completes that tshark cannot show, and another it can, are
    # compared on what tshark shows; frames tshark cannot show at all are not in its list.
    only_ours = set(mine) - set(wireshark)
    assert not only_ours - beyond, "frames holding DICOM PDUs differ"
    assert set(wireshark) <= set(mine) | beyond, "tshark shows PDUs we do not"
    for frame, row in wireshark.items():
        if frame in beyond:
            continue
        assert mine.get(frame, {}) == row, f"frame {frame}"
    if not beyond:
        assert set(mine) == set(wireshark)


def _tshark_frames(path: Path, display_filter: str, ports: set[int]) -> list[int]:
    argv = [*_tshark_argv(path, ports), "-Y", display_filter, "-T", "fields", "-e", "frame.number"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout
    return [int(x) for x in out.split()]


def test_mid_stream_capture_where_tshark_cannot_follow(tmp_path: Path) -> None:
    """Where we are right and tshark is not: a capture that begins after the association
    started (here: inside the third C-STORE of store_mtu1500.pcap).

    * tshark's heuristic dissector needs the A-ASSOCIATE-RQ: without being told the port it
      finds no DICOM in the partial association at all; we find it with no configuration;
    * told the port, tshark frames the PDUs but cannot decode the data sets, because it does
      not know their transfer syntax; we sniff it and decode the data set header.
    """
    source = ROOT / "samples" / "store_mtu1500.pcap"
    # Keep frames 40.. of the classic pcap (past the A-ASSOCIATE-AC and into the third C-STORE).
    _, frames = read_classic(source)
    cut = write_pcap(tmp_path / "mid.pcap", [(ts / 1e9, data) for ts, data, _ in frames[39:]])

    store = Store()
    analyze_files([cut], store)
    first = min(store.associations(), key=lambda a: a.start_ts)
    assert first.partial
    exchanges = store.exchanges(first.id)
    assert exchanges and all(e.status == 0 for e in exchanges)
    # The C-STORE that began after the cut is decoded whole: command, data set, response.
    (complete,) = [e for e in exchanges if e.request is not None and e.final is not None]
    assert complete.message_id == 4
    ds = complete.request.dataset if complete.request else None
    assert ds is not None and ds.sniffed and ds.transfer_syntax == "1.2.840.10008.1.2.1"
    assert ds.decode().PatientName == "POE^EDGAR"
    end = first.end_frame or 0

    heuristic_only = _tshark_frames(cut, "dicom", set())
    assert not [f for f in heuristic_only if f <= end], "tshark found the partial association"
    with_port = _tshark_frames(cut, "dicom.tag == 0x00100010", {11112})
    assert not [f for f in with_port if f <= end], (
        "tshark decoded a data set of the partial association"
    )
    # ... while on the complete capture it decodes the same data sets.
    assert _tshark_frames(source, "dicom.tag == 0x00100010", {11112})
