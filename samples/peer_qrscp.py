#!/usr/bin/env python3
"""A pynetdicom C-MOVE SCP (Study Root, STUDY level), for dicomtap's workflow samples.

Usage: python3 samples/peer_qrscp.py HOST PORT DEST... -- FILE...

AE title PYQRSCP.  It holds the objects in FILE... and answers a C-MOVE of a study with
C-STOREs on a new association to the destination.  DEST is AE=HOST:PORT[:CALLED]: a C-MOVE
to AE opens the sub-association to HOST:PORT with the called AE title CALLED (default AE,
as a careful configuration would have it).  A destination it does not know is answered
0xA801.  pynetdicom's own behaviour shows in the captures: the C-STORE-RQs name the SCP's
own AE title as Move Originator AE Title, and a destination that rejects the
sub-association is answered 0xA801 too.  Runs until SIGTERM/SIGINT (or 120 s).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pydicom
from peerlib import serve
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
)
from pynetdicom import AE, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
)

MAX_RUN = 120.0


def say(msg: str) -> None:
    print(f"peer_qrscp: {msg}", flush=True)


def main(argv: list[str]) -> int:
    if "--" not in argv or len(argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    cut = argv.index("--")
    host, port = argv[1], int(argv[2])
    destinations: dict[str, tuple[str, int, str]] = {}
    for spec in argv[3:cut]:
        ae_title, _, where = spec.partition("=")
        parts = where.split(":")
        destinations[ae_title] = (parts[0], int(parts[1]), parts[2] if len(parts) > 2 else ae_title)
    held = [pydicom.dcmread(f) for f in argv[cut + 1 :]]

    ae = AE(ae_title="PYQRSCP")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    # movescu proposes FIND next to MOVE: accepted (never used) so that nothing else fails
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelMove)
    for sop in (CTImageStorage, MRImageStorage):
        ae.add_requested_context(sop, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])

    def on_move(event: evt.Event) -> Iterator[Any]:
        query = event.identifier
        raw = event.move_destination
        dest = (raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)).strip()
        found = destinations.get(dest)
        say(f"C-MOVE of study {query.get('StudyInstanceUID')} to '{dest}': {found}")
        if found is None:
            yield None, None  # pynetdicom answers 0xA801
            return
        addr, dport, called = found
        yield addr, dport, {"ae_title": called}
        matches = [ds for ds in held if ds.StudyInstanceUID == query.get("StudyInstanceUID")]
        yield len(matches)
        for ds in matches:
            if event.is_cancelled:
                yield 0xFE00, None
                return
            yield 0xFF00, ds

    server = ae.start_server((host, port), block=False, evt_handlers=[(evt.EVT_C_MOVE, on_move)])
    say(f"C-MOVE SCP PYQRSCP on {host}:{port}, {len(held)} object(s), destinations {destinations}")
    serve(server, MAX_RUN, say)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
