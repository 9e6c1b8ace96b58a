"""pynetdicom SCPs that behave in one chosen way, for the probe's tests.

Usage: pynetdicom_scp.py PORT MODE [AE_TITLE [LOG]], MODE one of:
  some       accept Verification, CT Image Storage (Explicit VR Little Endian only) and
             Study Root FIND; reject everything else
  reject     require the called AE title to be AE_TITLE (default PYSCP): others get
             A-ASSOCIATE-RJ 1/1/7
  abort      accept, then A-ABORT when the C-ECHO arrives
  silent     accept the TCP connection but never answer the A-ASSOCIATE-RQ
  echofail   answer C-ECHO with 0x0211 (unrecognized operation)
  slowecho   answer C-ECHO after 1.5 s
  commit     storage: accept C-STORE, then N-ACTION; send the N-EVENT-REPORT (success) on
             the same association
  commitfail as commit, but the N-EVENT-REPORT lists the instance as failed (0x0110)
  identity   accept, and write the user identity it got (type, fields as hex), the role
             selections and the asynchronous window proposed to LOG
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, SecondaryCaptureImageStorage
from pynetdicom import AE, evt

Verification = "1.2.840.10008.1.1"
StorageCommitmentPushModel = "1.2.840.10008.1.20.1"
StudyRootQueryRetrieveInformationModelFind = "1.2.840.10008.5.1.4.1.2.2.1"
COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"


def main() -> None:
    port, mode = int(sys.argv[1]), sys.argv[2]
    title = sys.argv[3] if len(sys.argv) > 3 else "PYSCP"
    ae = AE(ae_title=title)
    ae.network_timeout = 60
    handlers: list[Any] = []
    ae.add_supported_context(Verification)
    if mode == "some":
        ae.add_supported_context(CTImageStorage, [ExplicitVRLittleEndian])
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)

        def on_find(event: Any) -> Any:
            for n in range(3):
                match = Dataset()
                match.QueryRetrieveLevel = "STUDY"
                match.StudyInstanceUID = f"1.2.3.{n}"
                yield 0xFF00, match

        handlers.append((evt.EVT_C_FIND, on_find))
    elif mode == "worklist":
        ae.add_supported_context("1.2.840.10008.5.1.4.31")  # Modality Worklist Information Find

        def on_worklist(event: Any) -> Any:
            query = event.identifier
            station = query.ScheduledProcedureStepSequence[0].get("ScheduledStationAETitle")
            for n in range(2):
                item = Dataset()
                item.ScheduledStationAETitle = station or "CT1"
                item.Modality = "CT"
                match = Dataset()
                match.PatientID = f"WL{n}"
                match.ScheduledProcedureStepSequence = [item]
                yield 0xFF00, match

        handlers.append((evt.EVT_C_FIND, on_worklist))
    elif mode == "reject":
        ae.require_called_aet = True
    elif mode == "abort":

        def on_echo(event: Any) -> int:
            event.assoc.abort()
            return 0x0000

        handlers.append((evt.EVT_C_ECHO, on_echo))
    elif mode == "silent":

        def on_requested(event: Any) -> None:
            time.sleep(3600)  # the A-ASSOCIATE-AC never comes

        handlers.append((evt.EVT_REQUESTED, on_requested))
    elif mode == "slowecho":

        def on_slow_echo(event: Any) -> int:
            time.sleep(1.5)
            return 0x0000

        handlers.append((evt.EVT_C_ECHO, on_slow_echo))
    elif mode == "echofail":
        handlers.append((evt.EVT_C_ECHO, lambda event: 0x0211))
    elif mode in ("commit", "commitfail"):
        ae.add_supported_context(SecondaryCaptureImageStorage)
        ae.add_supported_context(CTImageStorage)
        ae.add_supported_context(StorageCommitmentPushModel)
        handlers.append((evt.EVT_C_STORE, lambda event: 0x0000))

        def report(assoc: Any, request: Dataset) -> None:
            time.sleep(0.2)  # after the N-ACTION-RSP
            info = Dataset()
            info.TransactionUID = request.TransactionUID
            refs = request.ReferencedSOPSequence
            if mode == "commit":
                info.ReferencedSOPSequence = refs
                event_type = 1
            else:
                for ref in refs:
                    ref.FailureReason = 0x0110
                info.FailedSOPSequence = refs
                event_type = 2
            assoc.send_n_event_report(
                info, event_type, StorageCommitmentPushModel, COMMITMENT_INSTANCE
            )

        def on_action(event: Any) -> tuple[int, None]:
            request = event.action_information
            threading.Thread(target=report, args=(event.assoc, request), daemon=True).start()
            return 0x0000, None

        handlers.append((evt.EVT_N_ACTION, on_action))
    elif mode == "identity":
        ae.add_supported_context(CTImageStorage, scp_role=True, scu_role=True)
        log = open(sys.argv[4], "w")  # noqa: SIM115 - lives as long as the server

        def on_identity(event: Any) -> tuple[bool, bytes]:
            secondary = event.secondary_field or b""
            log.write(
                f"identity {event.user_id_type} {event.primary_field.hex()} {secondary.hex()}\n"
            )
            log.flush()
            return True, b"welcome"

        def on_requested(event: Any) -> None:
            for item in event.assoc.requestor.user_information:
                name = type(item).__name__
                if name == "SCP_SCU_RoleSelectionNegotiation":
                    log.write(f"role {item.sop_class_uid} {item.scu_role} {item.scp_role}\n")
                elif name == "AsynchronousOperationsWindowNegotiation":
                    invoked = item.maximum_number_operations_invoked
                    log.write(f"async {invoked} {item.maximum_number_operations_performed}\n")
            log.flush()

        handlers += [(evt.EVT_USER_ID, on_identity), (evt.EVT_REQUESTED, on_requested)]
    else:
        sys.exit(f"unknown mode {mode}")
    ae.start_server(("127.0.0.1", port), block=True, evt_handlers=handlers)


if __name__ == "__main__":
    main()
