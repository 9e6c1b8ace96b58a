"""One anonymization: read the capture (finding the edits), write the copy, check it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from analyzer import redact
from analyzer.errors import InputError
from analyzer.export.tap import Tap
from analyzer.findings import Diagnosis
from analyzer.pipeline import Pipeline, Progress, analyze_files
from analyzer.redact.uids import UidMap
from analyzer.redact.values import replacement
from analyzer.reports.jsonl import records
from analyzer.sources.pcap import CaptureFile, _decompressing, in_time_order, read_packets
from analyzer.store import Store

from .hosts import AddressMap, AeMap
from .locate import Locator, Tally
from .packets import PacketCounts, PcapngOut, Rewriter
from .positions import Positions
from .verify import Translation, differences, leftovers


@dataclass(slots=True)
class AnonymizeResult:
    """What was done, and what the check found."""

    tally: Tally
    packets: PacketCounts
    uids: int
    hosts: int
    differences: list[str] = field(default_factory=list)
    leftovers: list[bytes] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return not self.differences and not self.leftovers


def comment(tally: Tally, counts: PacketCounts, uids: int, hosts: bool, keep_pixels: bool) -> str:
    """The file's comment: what was changed, for whoever opens it."""
    replaced = sum(tally.values.values())
    lines = [
        "De-identified by dicomtap anonymize (PS3.15 Basic Application Level Confidentiality "
        "Profile attributes, replaced in place by values of the same length and VR; every "
        "PDU, PDV and TCP segment keeps its size).",
        f"Values replaced: {replaced} ("
        + ", ".join(f"{k} {v}" for k, v in sorted(tally.values.items()))
        + f"); {uids} distinct UIDs replaced consistently by other valid UIDs.",
        "Pixel data kept." if keep_pixels else f"Pixel data zeroed: {tally.pixel_bytes} bytes.",
        f"Zeroed: {tally.private_or_large_bytes} bytes of large or private values, "
        f"{tally.deflated_datasets} deflated data set(s) ({tally.deflated_bytes} bytes), "
        f"{tally.unparsed_bytes} bytes that could not be parsed (a broken encoding, bytes "
        "skipped while finding PDU boundaries again); the TCP payload of connections "
        "without DICOM and of IP fragments.",
        "Hosts: IP and MAC addresses and AE titles replaced by pseudonyms."
        if hosts
        else "Hosts: addresses and AE titles unchanged.",
        "TCP/IP checksums recomputed on the packets changed; timestamps and sizes unchanged.",
    ]
    return "\n".join(lines)


def anonymize_files(
    paths: Sequence[str | os.PathLike[str]],
    output: str,
    *,
    keep_pixels: bool = False,
    pseudonymize_hosts: bool = False,
    ports: Sequence[int] = (),
    progress: Progress | None = None,
    uids: UidMap | None = None,
) -> AnonymizeResult:
    """De-identify the capture ``paths`` (read as one) into the pcapng file ``output``.

    ``uids`` gives the UID pseudonyms (by default a map with a key drawn for this run)."""
    if any(os.fspath(p) == "-" for p in paths):
        raise InputError("anonymize reads its capture twice: give a file, not standard input")
    uids = uids if uids is not None else UidMap()
    ae = AeMap() if pseudonymize_hosts else None
    addresses = AddressMap() if pseudonymize_hosts else None
    locator = Locator(uids, keep_pixels=keep_pixels, ae_titles=ae)
    tap = Tap(locator)
    store = Store()
    pipeline = Pipeline(store, ports=ports, rules=Diagnosis(), payload=tap)
    positions = Positions(pipeline.flows)

    # 1. Read: where the PHI is, in stream offsets; where each segment is in its stream.
    captures = [CaptureFile(p) for p in paths]
    captures, _ = in_time_order(captures)
    names = [c.path for c in captures]
    truncated: list[str] = []
    base = 0
    total = sum(c.stats.file_size or 0 for c in captures)
    done = 0
    try:
        for capture in captures:
            for seg in capture.segments():
                if base:
                    seg = seg._replace(frame=(seg.frame or 0) + base)
                placed = positions.before(seg)
                pipeline.feed(seg)
                if not placed:
                    positions.after(seg)
            stats, source = capture.stats, store.source
            source.packets += stats.packets
            source.tcp_segments += stats.tcp_segments
            if source.first_ts is None:
                source.first_ts = stats.first_ts
            source.last_ts = stats.last_ts if stats.last_ts is not None else source.last_ts
            base += stats.packets
            done += stats.bytes_read
            if capture.stats.truncated:
                truncated.append(f"{capture.path}: {capture.stats.truncation}")
            capture.close()
            if progress is not None:
                progress(done, total * 3)
        pipeline.finish()
        tap.finish()
    finally:
        for capture in captures:
            capture.close()
    for a in store.associations():
        positions.association(
            a.connection, (a.client.ip, a.client.port), dicom=a.detection is not None
        )

    # 2. Write: every packet, in order, patched.
    rewriter = Rewriter(locator.sorted_edits(), positions.where, addresses)
    text = comment(locator.tally, rewriter.counts, len(uids), pseudonymize_hosts, keep_pixels)
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb", buffering=1 << 20) as out:
        writer = PcapngOut(out, text, "dicomtap anonymize")
        base = 0
        for name in names:
            with open(name, "rb") as raw:
                stream, _ = _decompressing(raw)
                frames = 0
                for ts, frame, linktype, data, orig_len in read_packets(stream):
                    frames = frame
                    new = rewriter.rewrite(frame + base, linktype, data)
                    writer.write(ts, linktype, new, orig_len)
                base += frames
        writer.close()

    # 3. Check: the output analysed like the original; no original value left in it.
    translation = Translation(_pairs(locator, uids, ae, addresses, store))
    again = Store()
    analyze_files([output], again, ports=ports, rules=Diagnosis())
    if progress is not None:
        progress(total * 3, total * 3)
    # The records compared show the values themselves, whatever --redact another command
    # of this process asked for (pseudonyms of both UIDs would never match).
    hidden = redact.phi_redacted()
    redact.redact_phi(False)
    try:
        diff = differences(records(store, "original"), records(again, "anonymized"), translation)
    finally:
        redact.redact_phi(hidden)
    with open(output, "rb") as f:
        left = leftovers(f, locator.originals)
    return AnonymizeResult(
        locator.tally,
        rewriter.counts,
        len(uids),
        len(ae.titles) if ae is not None else 0,
        differences=diff,
        leftovers=left,
        truncated=truncated,
    )


def _pairs(
    locator: Locator,
    uids: UidMap,
    ae: AeMap | None,
    addresses: AddressMap | None,
    store: Store,
) -> dict[str, str]:
    """Every original text an analysis may show, with what the output shows instead."""
    pairs = dict(uids.pairs())
    if ae is not None:
        for title, new in ae.titles.items():
            pairs[title.decode("latin-1")] = new.decode("latin-1")
    for a in store.associations():
        username = a.requestor_info.user_identity_username if a.requestor_info else None
        if username:
            raw = username.encode("utf-8", "replace")
            pairs[username] = replacement("LO", raw, uids).decode("ascii")
        if addresses is not None:
            for endpoint in (a.client, a.server):
                pairs[endpoint.ip] = addresses.ip_text(endpoint.ip)
        if ae is not None:
            for raw_title in (a.calling_ae, a.called_ae):
                if raw_title:
                    new = ae.replace(raw_title)
                    pairs[raw_title.decode("latin-1")] = new.decode("latin-1")
                    pairs[raw_title.decode("latin-1").strip()] = new.decode("latin-1").strip()
    return pairs
