"""A pynetdicom SCU: one association, a C-ECHO, then a C-STORE per file; prints each status.

Usage: pynetdicom_scu.py HOST PORT FILE...
"""

from __future__ import annotations

import sys

from pydicom import dcmread
from pydicom.uid import CTImageStorage
from pynetdicom import AE

Verification = "1.2.840.10008.1.1"


def main() -> None:
    host, port, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    ae = AE(ae_title="PYSCU")
    ae.add_requested_context(Verification)
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate(host, port, ae_title="PYSCP")
    if not assoc.is_established:
        sys.exit("association failed")
    status = assoc.send_c_echo()
    print("echo", f"0x{status.Status:04X}")
    for name in files:
        status = assoc.send_c_store(dcmread(name))
        print("store", f"0x{status.Status:04X}")
    assoc.release()


if __name__ == "__main__":
    main()
