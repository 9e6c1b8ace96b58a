#!/usr/bin/env python3
"""pynetdicom SCU with failure modes, for dicomtap's failure samples.

Usage: python3 samples/peer_scu.py HOST PORT CALLED_AET MODE [ARG...]

Calling AE title PYSCU.  Every wait is bounded (ACSE/DIMSE/network timeouts
30 s); prints what happens.  Exit status 0 when the scenario went as
described (which, for a failure sample, means: the failure happened).

MODE:
  hold SECS         associate (Verification), send nothing for SECS seconds,
                    then release if the association is still up (used to
                    keep the SCP's only association slot busy, and to stay
                    idle until the SCP's timeout aborts the association)
  identity          associate (Verification) with a User Identity
                    negotiation of type 2 (username "alice" and passcode
                    "s3cret", in clear text), positive response requested;
                    C-ECHO; release
  get-norole STUDY_UID
                    C-GET (Study Root, STUDY level) of STUDY_UID, proposing
                    CT Image Storage but WITHOUT an SCP/SCU Role Selection
                    item, so the peer may not send the C-STORE
                    sub-operations on this association; release
"""

from __future__ import annotations

import sys
import time

from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.pdu_primitives import UserIdentityNegotiation
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelGet,
    Verification,
)

UNCOMPRESSED = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]


def say(msg: str) -> None:
    print(f"peer_scu: {msg}", flush=True)


def make_ae() -> AE:
    ae = AE(ae_title="PYSCU")
    ae.acse_timeout = 30
    ae.dimse_timeout = 30
    ae.network_timeout = 30
    return ae


def mode_hold(host: str, port: int, called: str, secs: str) -> int:
    ae = make_ae()
    ae.add_requested_context(Verification)
    assoc = ae.associate(host, port, ae_title=called)
    if not assoc.is_established:
        say("association not established")
        return 1
    say(f"associated, now silent for {secs} s")
    deadline = time.monotonic() + float(secs)
    while time.monotonic() < deadline and assoc.is_established:
        time.sleep(0.05)
    if assoc.is_established:
        say("still associated: releasing")
        assoc.release()
    elif assoc.is_aborted:
        say(
            f"the peer ended the association (A-ABORT or connection closed) after "
            f"{float(secs) - (deadline - time.monotonic()):.1f} s of silence"
        )
    else:
        say("association ended")
    return 0


def mode_identity(host: str, port: int, called: str) -> int:
    ae = make_ae()
    ae.add_requested_context(Verification)
    ident = UserIdentityNegotiation()
    ident.user_identity_type = 2
    ident.primary_field = b"alice"
    ident.secondary_field = b"s3cret"
    ident.positive_response_requested = True
    assoc = ae.associate(host, port, ae_title=called, ext_neg=[ident])
    if not assoc.is_established:
        say("association not established")
        return 1
    say("associated with user identity type 2 alice / s3cret")
    status = assoc.send_c_echo()
    say(f"C-ECHO status 0x{status.Status:04X}" if status else "C-ECHO: no response")
    assoc.release()
    return 0 if status and status.Status == 0 else 1


def mode_get_norole(host: str, port: int, called: str, study_uid: str) -> int:
    ae = make_ae()
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage, UNCOMPRESSED)

    def on_store(event: evt.Event) -> int:
        say(f"C-STORE-RQ {event.request.AffectedSOPInstanceUID} received")
        return 0x0000

    # No build_role(): CT Image Storage is proposed with the default roles
    # (we are SCU only), so the peer is not allowed to send us C-STOREs.
    assoc = ae.associate(host, port, ae_title=called, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    if not assoc.is_established:
        say("association not established")
        return 1
    say("associated without SCP/SCU Role Selection")
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study_uid
    final = None
    for status, _identifier in assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet):
        if not status:
            say("C-GET: no response / association ended")
            break
        counters = " ".join(
            f"{k}={status.get(k)}"
            for k in (
                "NumberOfRemainingSuboperations",
                "NumberOfCompletedSuboperations",
                "NumberOfFailedSuboperations",
                "NumberOfWarningSuboperations",
            )
            if k in status
        )
        comment = f" {status.ErrorComment!r}" if "ErrorComment" in status else ""
        say(f"C-GET-RSP status 0x{status.Status:04X} {counters}{comment}")
        final = status.Status
    if assoc.is_established:
        assoc.release()
    return 0 if final is not None and final != 0x0000 else 1


MODES = {
    "hold": (mode_hold, 1),
    "identity": (mode_identity, 0),
    "get-norole": (mode_get_norole, 1),
}


def main(argv: list[str]) -> int:
    if len(argv) < 5 or argv[4] not in MODES or len(argv) != 5 + MODES[argv[4]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    func = MODES[argv[4]][0]
    return func(argv[1], int(argv[2]), argv[3], *argv[5:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
