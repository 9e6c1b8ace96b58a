"""Every association of the given captures, its requestor replayed against its own acceptor
replayed: both sides of each association played by ``dicomtap replay`` at once, in one
process (the acceptor in a thread), on 127.0.0.1 (run it inside a network namespace).

Usage: python selfreplay.py OUTDIR PORT TIMEOUT [--allow-incomplete] CAPTURE...

Prints one JSON line per association: what each side's replay found, or why it was refused,
and the pcapng file of the requestor side's own traffic (OUTDIR/<capture>-<n>.pcapng).
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

from analyzer.errors import DicomtapError
from analyzer.pipeline import analyze_files
from analyzer.sources.proxy.pcapng import PcapngWriter
from analyzer.sources.replay import Pace, ReplayOptions, ReplayResult, prepare, replay
from analyzer.store import Store


def summary(result: ReplayResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {
        "exit": result.exit_code,
        "unreachable": result.unreachable,
        "stopped": result.stopped,
        "differences": [[r.topic, r.captured, r.replay] for r in result.differences],
        "notes": list(result.notes),
    }


def one(
    out: Path, capture: str, n: int, port: int, timeout: float, allow_incomplete: bool
) -> dict[str, Any]:
    record: dict[str, Any] = {"capture": Path(capture).name, "association": n}
    common = {
        "capture": capture,
        "association": n,
        "timeout": timeout,
        "pace": Pace.CAPTURED,
        "allow_incomplete": allow_incomplete,
    }
    acceptor_opts = ReplayOptions(listen=("127.0.0.1", port), **common)  # type: ignore[arg-type]
    requestor_opts = ReplayOptions(target=("127.0.0.1", port), **common)  # type: ignore[arg-type]
    try:
        a_captured, a_notes = prepare(acceptor_opts)
        r_captured, r_notes = prepare(requestor_opts)
    except DicomtapError as exc:
        record["refused"] = str(exc)
        return record
    listening = threading.Event()
    acceptor: list[ReplayResult] = []

    def serve() -> None:
        acceptor.append(
            replay(acceptor_opts, a_captured, a_notes, listening=lambda _: listening.set())
        )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    if not listening.wait(timeout):
        record["refused"] = "the acceptor did not listen"
        return record
    pcap_path = out / f"{Path(capture).stem}-{n}.pcapng"
    pcap = PcapngWriter(pcap_path, application="selfreplay")
    try:
        requestor = replay(requestor_opts, r_captured, r_notes, pcap=pcap)
    finally:
        pcap.close()
    thread.join(timeout * 4)
    record["requestor"] = summary(requestor)
    record["acceptor"] = summary(acceptor[0] if acceptor else None)
    record["pcap"] = str(pcap_path)
    return record


def main(argv: list[str]) -> int:
    out, port, timeout = Path(argv[1]), int(argv[2]), float(argv[3])
    captures = argv[4:]
    allow_incomplete = "--allow-incomplete" in captures
    for capture in (c for c in captures if c != "--allow-incomplete"):
        store = Store()
        analyze_files([capture], store)
        for a in sorted(store.associations(), key=lambda a: a.id):
            record = one(out, capture, a.id, port, timeout, allow_incomplete)
            print(json.dumps(record), flush=True)
            port += 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
