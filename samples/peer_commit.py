#!/usr/bin/env python3
"""pynetdicom Storage Commitment Push Model peers, for dicomtap's workflow samples and tests.

Usage:
  python3 samples/peer_commit.py scu HOST PORT CALLED LISTEN_PORT [OPTION...] FILE|UID...
  python3 samples/peer_commit.py scp HOST PORT MODE

scu: the modality (AE MODALITY).  Listens on LISTEN_PORT (unless --no-listen) for
reverse associations that carry the report (it accepts Storage Commitment Push Model
with the SCP role for the caller), then asks HOST:PORT (AE CALLED) for commitment of
the objects: a FILE (its SOP Class/Instance UIDs are read) or CLASS_UID/INSTANCE_UID.
It waits for the report (at most --wait seconds, default 15) on the same association
(--same: it keeps the association open until then) or on a reverse one, prints it,
and exits 0 once it has one (1 without).  Options:
  --same            wait for the report on the N-ACTION's association
  --roles           propose SCP/SCU role selection (SCU and SCP) for Storage
                    Commitment; the default is no role selection (default roles)
  --reject-calling  the listener only accepts calling AE title PACS, so it rejects
                    others (A-ASSOCIATE-RJ 1/1/3: calling AE title not recognized); it
                    exits as soon as it has rejected one (status 1: no report)
  --no-listen       nothing listens on LISTEN_PORT (a reverse association is refused)
  --wait SECS       how long to wait for the report
  --aet TITLE       the modality's AE title (default MODALITY)

scp: the archive (AE PYARCHIVE), committing every object it is asked about.  MODE:
  same              sends the N-EVENT-REPORT (event type 1) on the N-ACTION's own
                    association, 0.3 s after the N-ACTION-RSP
  none              answers the N-ACTION with Success and never reports
Runs until SIGTERM/SIGINT (or 120 s).
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pydicom
from peerlib import serve
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import StorageCommitmentPushModel  # type: ignore[attr-defined]

INSTANCE = "1.2.840.10008.1.20.1.1"  # Storage Commitment Push Model SOP Instance (well-known)
MAX_RUN = 120.0


def say(msg: str) -> None:
    print(f"peer_commit: {msg}", flush=True)


def _ae(title: str) -> AE:
    ae = AE(ae_title=title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    return ae


def _reference(arg: str) -> Dataset:
    item = Dataset()
    if Path(arg).is_file():
        ds = pydicom.dcmread(arg, stop_before_pixels=True)
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = (
            ds.SOPClassUID,
            ds.SOPInstanceUID,
        )
    else:
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = arg.split("/", 1)
    return item


def _describe(ds: Dataset) -> str:
    ok = len(ds.get("ReferencedSOPSequence", []))
    failed = [
        f"{i.ReferencedSOPInstanceUID} (reason 0x{int(i.get('FailureReason', 0)):04X})"
        for i in ds.get("FailedSOPSequence", [])
    ]
    return f"{ok} committed, {len(failed)} failed" + (f": {', '.join(failed)}" if failed else "")


def scu(argv: list[str]) -> int:
    host, port, called, listen_port = argv[0], int(argv[1]), argv[2], int(argv[3])
    flags: set[str] = set()
    objects: list[str] = []
    wait = 15.0
    aet = "MODALITY"
    rest = iter(argv[4:])
    for arg in rest:
        if arg == "--wait":
            wait = float(next(rest))
        elif arg == "--aet":
            aet = next(rest)
        elif arg.startswith("--"):
            flags.add(arg)
        else:
            objects.append(arg)
    got = threading.Event()

    rejected = threading.Event()

    def on_rejected(event: evt.Event) -> None:
        say(f"rejected a reverse association from {event.assoc.requestor.ae_title}")
        rejected.set()

    def on_report(event: evt.Event) -> tuple[int, None]:
        ds = event.event_information
        where = "the same association" if event.assoc.is_requestor else "a reverse association"
        say(
            f"N-EVENT-REPORT event type {event.request.EventTypeID} on {where} from "
            f"{event.assoc.requestor.ae_title if not event.assoc.is_requestor else called}: "
            f"Transaction UID {ds.get('TransactionUID')}, {_describe(ds)}"
        )
        got.set()
        return 0x0000, None

    ae = _ae(aet)
    server = None
    if "--no-listen" not in flags:
        ae.add_supported_context(StorageCommitmentPushModel, scu_role=True, scp_role=True)
        if "--reject-calling" in flags:
            ae.require_calling_aet = ["PACS"]
        server = ae.start_server(
            (host, listen_port),
            block=False,
            evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report), (evt.EVT_REJECTED, on_rejected)],
        )
        say(f"listening for reports on {host}:{listen_port}")
    ae.add_requested_context(StorageCommitmentPushModel)
    roles = (
        [build_role(StorageCommitmentPushModel, scu_role=True, scp_role=True)]
        if "--roles" in flags
        else []
    )
    try:
        assoc = ae.associate(
            host,
            port,
            ae_title=called,
            ext_neg=roles,
            evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)],
        )
        if not assoc.is_established:
            say("association not established")
            return 1
        request = Dataset()
        request.TransactionUID = generate_uid()
        request.ReferencedSOPSequence = [_reference(a) for a in objects]
        say(f"N-ACTION (Transaction UID {request.TransactionUID}) for {len(objects)} object(s)")
        status, _ = assoc.send_n_action(request, 1, StorageCommitmentPushModel, INSTANCE)
        say(f"N-ACTION-RSP status 0x{status.Status:04X}" if status else "N-ACTION: no response")
        if "--same" in flags:
            got.wait(wait)
            if assoc.is_established:
                assoc.release()
        else:
            if assoc.is_established:
                assoc.release()
            deadline = time.monotonic() + wait
            while not (got.is_set() or rejected.is_set()) and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        if server is not None:
            server.shutdown()
    if got.is_set():
        say("report received")
    elif rejected.is_set():
        say("no report: the reverse association was rejected")
    else:
        say(f"no report within {wait:g} s")
    return 0 if got.is_set() else 1


def scp(argv: list[str]) -> int:
    host, port, mode = argv[0], int(argv[1]), argv[2]
    if mode not in ("same", "none"):
        print(__doc__, file=sys.stderr)
        return 2
    ae = _ae("PYARCHIVE")
    ae.add_supported_context(StorageCommitmentPushModel, scu_role=True, scp_role=True)

    def on_action(event: evt.Event) -> tuple[int, None]:
        request = event.action_information
        assoc = event.assoc
        say(
            f"N-ACTION from {assoc.requestor.ae_title}: Transaction UID "
            f"{request.TransactionUID}, {len(request.ReferencedSOPSequence)} object(s)"
        )
        if mode == "same":

            def report() -> None:
                time.sleep(0.3)
                ds = Dataset()
                ds.TransactionUID = request.TransactionUID
                ds.ReferencedSOPSequence = list(request.ReferencedSOPSequence)
                say("sending N-EVENT-REPORT (event type 1) on the same association")
                status, _ = assoc.send_n_event_report(ds, 1, StorageCommitmentPushModel, INSTANCE)
                say(f"N-EVENT-REPORT-RSP status {status.Status if status else None}")

            threading.Thread(target=report, daemon=True).start()
        return 0x0000, None

    server = ae.start_server(
        (host, port), block=False, evt_handlers=[(evt.EVT_N_ACTION, on_action)]
    )
    say(f"storage commitment SCP PYARCHIVE ({mode}) listening on {host}:{port}")
    serve(server, MAX_RUN, say)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) >= 6 and argv[1] == "scu":
        return scu(argv[2:])
    if len(argv) == 5 and argv[1] == "scp":
        return scp(argv[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
