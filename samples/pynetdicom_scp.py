#!/usr/bin/env python3
"""A minimal pynetdicom Storage/Verification SCP used by samples/make_samples.sh.

Usage: python3 samples/pynetdicom_scp.py HOST PORT AETITLE OUTDIR

Accepts Verification, CT Image Storage and MR Image Storage with Explicit or
Implicit VR Little Endian (pynetdicom accepts the first transfer syntax of
*its own* list that the requestor proposed: Explicit VR LE first for CT,
Implicit VR LE first for MR, so one capture shows both), requires the called
AE title to be AETITLE, writes every received data set to
OUTDIR/<SOPInstanceUID>.dcm and runs until it gets SIGTERM or SIGINT.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
)
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

UNCOMPRESSED = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    host, port, aet, outdir = argv[1], int(argv[2]), argv[3], Path(argv[4])
    outdir.mkdir(parents=True, exist_ok=True)

    def on_store(event: evt.Event) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        ds.save_as(outdir / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
        return 0x0000

    def on_echo(event: evt.Event) -> int:
        return 0x0000

    ae = AE(ae_title=aet)
    ae.require_called_aet = True
    ae.add_supported_context(Verification, UNCOMPRESSED)
    ae.add_supported_context(CTImageStorage, UNCOMPRESSED)
    ae.add_supported_context(MRImageStorage, UNCOMPRESSED[::-1])

    server = ae.start_server(
        (host, port),
        block=False,
        evt_handlers=[(evt.EVT_C_STORE, on_store), (evt.EVT_C_ECHO, on_echo)],
    )
    print(f"pynetdicom SCP {aet} listening on {host}:{port}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.2):
        pass
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
