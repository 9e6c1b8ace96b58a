#!/usr/bin/env python3
"""pynetdicom SCP with failure modes, for dicomtap's failure samples.

Usage: python3 samples/peer_scp.py HOST PORT AETITLE MODE [ARG]

Runs until SIGTERM/SIGINT (or 120 s at most), prints what it answers.
Transfer syntaxes: Explicit and Implicit VR Little Endian.  The called AE
title is not checked unless said so.

MODE:
  one-assoc       Verification; maximum_associations = 1: a second
                  association while one is open gets A-ASSOCIATE-RJ 2/3/2
                  (transient, service provider (presentation), local limit
                  exceeded)
  ct-only         CT Image Storage only (no Verification, no MR): proposals
                  of anything else get result 3 (abstract syntax not
                  supported)
  statuses        CT Image Storage; the C-STORE handler answers, in order of
                  arrival: 0xA700 (Refused: out of resources) with an Error
                  Comment, 0xB000 (Warning: coercion of data elements),
                  0x0000 (Success), then Success for anything after
  slow-echo SECS  Verification; the C-ECHO handler sleeps SECS seconds
                  before answering Success
  idle-timeout SECS
                  Verification; network_timeout = SECS: after SECS seconds
                  without any PDU from the requestor, pynetdicom aborts the
                  association (A-ABORT, source 0)
  pdu4096         Verification and CT Image Storage, maximum PDU length 4096
  identity        Verification; accepts any User Identity negotiation and
                  prints the identity it got (pynetdicom 3.0 sends no User
                  Identity sub-item in the A-ASSOCIATE-AC for types 1 and 2,
                  even when a positive response is requested)
  async1          Verification; answers an Asynchronous Operations Window
                  negotiation (other than the default 1/1) with 1/1
  verification    Verification only (default settings)
  strict-called   CT and MR Image Storage; require_called_aet: an
                  association called with any AE title but AETITLE is
                  rejected (A-ASSOCIATE-RJ 1/1/7: called AE title not
                  recognized)
"""

from __future__ import annotations

import sys
import threading
import time

from peerlib import serve
from pydicom.dataset import Dataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
)
from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

UNCOMPRESSED = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
MAX_RUN = 120.0


def say(msg: str) -> None:
    print(f"peer_scp: {msg}", flush=True)


def main(argv: list[str]) -> int:
    if len(argv) not in (5, 6):
        print(__doc__, file=sys.stderr)
        return 2
    host, port, aet, mode = argv[1], int(argv[2]), argv[3], argv[4]
    arg = argv[5] if len(argv) == 6 else None

    ae = AE(ae_title=aet)
    ae.acse_timeout = 30
    ae.dimse_timeout = 30
    ae.network_timeout = 30
    handlers: list = []

    def on_echo(event: evt.Event) -> int:
        say(f"C-ECHO-RQ from {event.assoc.requestor.ae_title}: Success")
        return 0x0000

    if mode in ("one-assoc", "verification", "identity", "pdu4096", "idle-timeout", "async1"):
        ae.add_supported_context(Verification, UNCOMPRESSED)
        handlers.append((evt.EVT_C_ECHO, on_echo))
    if mode in ("ct-only", "statuses", "pdu4096", "strict-called"):
        ae.add_supported_context(CTImageStorage, UNCOMPRESSED)
    if mode == "strict-called":
        ae.add_supported_context(MRImageStorage, UNCOMPRESSED)
        ae.require_called_aet = True

    if mode == "one-assoc":
        ae.maximum_associations = 1
    elif mode == "pdu4096":
        ae.maximum_pdu_size = 4096
    elif mode == "idle-timeout":
        ae.network_timeout = float(arg or "3")
    elif mode == "slow-echo":
        delay = float(arg or "4")
        ae.add_supported_context(Verification, UNCOMPRESSED)

        def slow_echo(event: evt.Event) -> int:
            say(f"C-ECHO-RQ received, sleeping {delay:g} s before answering")
            time.sleep(delay)
            say("answering C-ECHO Success (late)")
            return 0x0000

        handlers.append((evt.EVT_C_ECHO, slow_echo))
    elif mode == "identity":

        def on_user_id(event: evt.Event):
            say(
                f"user identity type {event.user_id_type}: "
                f"{event.primary_field!r} / {event.secondary_field!r}"
            )
            return True, None

        handlers.append((evt.EVT_USER_ID, on_user_id))
    elif mode == "async1":

        def on_async_ops(event: evt.Event) -> tuple[int, int]:
            say(
                f"asynchronous operations window proposed: {event.nr_invoked}/"
                f"{event.nr_performed}, granting 1/1"
            )
            return 1, 1  # pynetdicom always answers 1/1 once a handler is bound

        handlers.append((evt.EVT_ASYNC_OPS, on_async_ops))
    elif mode not in ("ct-only", "statuses", "verification", "strict-called"):
        print(__doc__, file=sys.stderr)
        return 2

    def on_store(event: evt.Event) -> int | Dataset:
        say(f"C-STORE-RQ {event.request.AffectedSOPInstanceUID}: Success")
        return 0x0000

    if mode == "statuses":
        answers = [
            (0xA700, "dicomtap sample: out of resources (simulated)"),
            (0xB000, None),
            (0x0000, None),
        ]
        lock = threading.Lock()

        def on_store_statuses(event: evt.Event) -> Dataset:
            with lock:
                status, comment = answers.pop(0) if answers else (0x0000, None)
            rsp = Dataset()
            rsp.Status = status
            if comment:
                rsp.ErrorComment = comment
            say(
                f"C-STORE-RQ {event.request.AffectedSOPInstanceUID}: "
                f"answering 0x{status:04X}{' ' + repr(comment) if comment else ''}"
            )
            return rsp

        handlers.append((evt.EVT_C_STORE, on_store_statuses))
    elif mode in ("ct-only", "pdu4096", "strict-called"):
        handlers.append((evt.EVT_C_STORE, on_store))

    def on_rejected(event: evt.Event) -> None:
        say(f"association from {event.assoc.requestor.ae_title} rejected")

    def on_established(event: evt.Event) -> None:
        acc = event.assoc.accepted_contexts
        say(
            f"association from {event.assoc.requestor.ae_title} accepted, "
            f"{len(acc)} context(s) accepted"
        )

    def on_aborted(event: evt.Event) -> None:
        say("association aborted")

    handlers += [
        (evt.EVT_REJECTED, on_rejected),
        (evt.EVT_ESTABLISHED, on_established),
        (evt.EVT_ABORTED, on_aborted),
    ]

    server = ae.start_server((host, port), block=False, evt_handlers=handlers)
    say(f"pynetdicom SCP {aet} ({mode}) listening on {host}:{port}")

    serve(server, MAX_RUN, say)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
