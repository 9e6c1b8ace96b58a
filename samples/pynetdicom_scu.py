#!/usr/bin/env python3
"""A minimal pynetdicom SCU used by samples/make_samples.sh.

Usage: python3 samples/pynetdicom_scu.py HOST PORT CALLED_AET FILE...

Opens one association (calling AE title PYSCU) proposing Verification and the
storage SOP classes of FILE... (each with Explicit and Implicit VR Little
Endian, the file's own transfer syntax first), sends a C-ECHO, then one
C-STORE per FILE (message ID 1 each time: pynetdicom's default), then
releases normally.
Exits non-zero if the association is not accepted or any status is not
Success.
"""

from __future__ import annotations

import sys

from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

UNCOMPRESSED = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    host, port, called = argv[1], int(argv[2]), argv[3]
    datasets = [dcmread(path) for path in argv[4:]]

    ae = AE(ae_title="PYSCU")
    ae.acse_timeout = 30
    ae.dimse_timeout = 30
    ae.network_timeout = 30
    ae.add_requested_context(Verification)
    # One context per SOP class, the transfer syntax of its (first) file
    # proposed first.  (pynetdicom's SCP picks by its own order, though: see
    # pynetdicom_scp.py.)
    proposed: dict[str, list[str]] = {}
    for ds in datasets:
        own = ds.file_meta.TransferSyntaxUID
        proposed.setdefault(ds.SOPClassUID, [own, *(ts for ts in UNCOMPRESSED if ts != own)])
    for sop_class, syntaxes in proposed.items():
        ae.add_requested_context(sop_class, syntaxes)

    assoc = ae.associate(host, port, ae_title=called)
    if not assoc.is_established:
        print("association not established", file=sys.stderr)
        return 1
    failures = 0
    status = assoc.send_c_echo()
    print(f"C-ECHO status: 0x{status.Status:04X}" if status else "C-ECHO: no response")
    failures += not status or status.Status != 0
    for ds in datasets:
        status = assoc.send_c_store(ds)
        print(f"C-STORE {ds.SOPClassUID.name}: 0x{status.Status:04X}" if status else "no rsp")
        failures += not status or status.Status != 0
    assoc.release()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
