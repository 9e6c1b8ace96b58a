"""A pynetdicom SCU that associates and holds the association open until stdin closes.

Prints ``SENT <unix time>`` just before the A-ASSOCIATE-RQ leaves, ``ASSOCIATED`` once it
is accepted (or ``REJECTED``), then waits; when its stdin closes (or after --hold seconds)
it releases, unless --abandon, in which case it just exits, leaving the association as it
was (the test stops the capture first, so that the association is still open in it).

Usage: hold_scu.py HOST PORT [--calling AE] [--called AE] [--echo] [--hold SECONDS]
"""

from __future__ import annotations

import argparse
import sys
import time

from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--calling", default="HOLDSCU")
    parser.add_argument("--called", default="ANY-SCP")
    parser.add_argument("--echo", action="store_true", help="one C-ECHO once associated")
    parser.add_argument("--hold", type=float, default=60.0)
    args = parser.parse_args()
    ae = AE(ae_title=args.calling)
    ae.add_requested_context(Verification)
    ae.acse_timeout = 10
    print(f"SENT {time.time():.6f}", flush=True)
    assoc = ae.associate(args.host, args.port, ae_title=args.called)
    if not assoc.is_established:
        print("REJECTED" if assoc.is_rejected else "FAILED", flush=True)
        return 1
    print("ASSOCIATED", flush=True)
    if args.echo:
        status = assoc.send_c_echo()
        print(f"ECHO 0x{int(status.Status):04X}", flush=True)
    deadline = time.monotonic() + args.hold
    # stdin closing is the signal to release; the test holds it open while it captures
    while time.monotonic() < deadline:
        line = sys.stdin.readline()
        if not line:
            break
    assoc.release()
    print("RELEASED", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
