"""A pynetdicom SCP (Verification, CT/MR Storage) that writes what it received to a file:
``assoc CALLING CALLED`` per association and ``store SOPInstanceUID`` per C-STORE.

Usage: pynetdicom_scp.py PORT OUTFILE
"""

from __future__ import annotations

import sys
from typing import Any

from pydicom.uid import CTImageStorage, MRImageStorage
from pynetdicom import AE, evt

Verification = "1.2.840.10008.1.1"


def main() -> None:
    port, out = int(sys.argv[1]), sys.argv[2]

    def note(line: str) -> None:
        with open(out, "a") as f:
            f.write(line + "\n")

    def on_requested(event: Any) -> None:
        rq = event.assoc.requestor
        note(f"assoc {rq.ae_title.strip()} {event.assoc.acceptor.ae_title.strip()}")

    def on_store(event: Any) -> int:
        note(f"store {event.request.AffectedSOPInstanceUID}")
        return 0x0000

    ae = AE(ae_title="PYSCP")
    for cx in (Verification, CTImageStorage, MRImageStorage):
        ae.add_supported_context(cx)
    ae.start_server(
        ("127.0.0.1", port),
        block=True,
        evt_handlers=[(evt.EVT_ACCEPTED, on_requested), (evt.EVT_C_STORE, on_store)],
    )


if __name__ == "__main__":
    main()
