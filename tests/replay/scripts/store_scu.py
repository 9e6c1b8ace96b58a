"""A pynetdicom SCU that stores files with the Message IDs it is told (not 1, 2, 3 ...).

Usage: python store_scu.py HOST PORT CALLED_AE FIRST_MESSAGE_ID FILE...

One association (CT Image Storage, Explicit and Implicit VR Little Endian); prints one JSON
line per C-STORE: the Message ID sent, the status received (null: no response), then
releases. A response pynetdicom cannot match to its request is no response.
"""

from __future__ import annotations

import json
import sys

from pydicom import dcmread
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE


def main(argv: list[str]) -> int:
    host, port, called, first = argv[1], int(argv[2]), argv[3], int(argv[4])
    ae = AE(ae_title="STORESCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    ae.add_requested_context(CTImageStorage, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    assoc = ae.associate(host, port, ae_title=called)
    if not assoc.is_established:
        print(json.dumps({"associated": False}), flush=True)
        return 1
    for i, path in enumerate(argv[5:]):
        status = assoc.send_c_store(dcmread(path), msg_id=first + i)
        code = int(status.Status) if status and "Status" in status else None
        print(json.dumps({"message_id": first + i, "status": code}), flush=True)
    assoc.release()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
