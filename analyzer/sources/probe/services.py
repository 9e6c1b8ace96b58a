"""The service checks, run on an established association with pynetdicom as the SCU.

Each returns a :class:`ServiceRun`: what the client saw (status, matches, how long it took,
why it could not run). Status meanings and latencies come from the observed exchanges
later (:mod:`.result`), the same records a capture gives.
"""

from __future__ import annotations

import queue
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import generate_uid
from pynetdicom import evt

from analyzer.names import status_meaning, uid_name

from .catalog import sop_class_uid
from .options import FindLevel, FindSpec

__all__ = [
    "COMMITMENT_INSTANCE",
    "STORAGE_COMMITMENT",
    "VERIFICATION",
    "CommitReports",
    "ServiceRun",
    "commit",
    "echo",
    "find",
    "find_model",
    "store",
]

VERIFICATION = sop_class_uid("Verification")
STORAGE_COMMITMENT = sop_class_uid("StorageCommitmentPushModel")
_PATIENT_ROOT_FIND = sop_class_uid("PatientRootQueryRetrieveInformationModelFind")
_STUDY_ROOT_FIND = sop_class_uid("StudyRootQueryRetrieveInformationModelFind")
_WORKLIST_FIND = sop_class_uid("ModalityWorklistInformationModelFind")

#: The well-known SOP Instance of the Storage Commitment Push Model (PS3.4 J.3.5).
COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"

_PENDING = (0xFF00, 0xFF01)


@dataclass(frozen=True, slots=True)
class ServiceRun:
    """One service check as the client saw it."""

    name: str
    """``C-ECHO``, ``C-FIND``, ``C-STORE`` or ``commit`` (N-ACTION, then N-EVENT-REPORT)."""
    sop_class: str
    message_id: int
    status: int | None
    """The final status (None: no answer)."""
    elapsed_ns: int
    """From the request to the final answer, as the client waited for it."""
    error: str | None = None
    """Why the check could not run or finish, when it did not."""
    matches: int | None = None
    """C-FIND: the pending responses with a match."""
    cancelled: bool = False
    detail: str = ""
    report_status: int | None = None
    """Commitment: 0 when every instance was committed (N-EVENT-REPORT type 1), else the
    failure reason of the first failed instance (type 2)."""


def _accepted(assoc: Any, sop_class: str) -> bool:
    return any(cx.abstract_syntax == sop_class for cx in assoc.accepted_contexts)


def _status(rsp: Any) -> int | None:
    return int(rsp.Status) if rsp is not None and "Status" in rsp else None


def _not_accepted(name: str, sop_class: str, msg_id: int) -> ServiceRun:
    return ServiceRun(
        name, sop_class, msg_id, None, 0, error=f"{uid_name(sop_class)} was not accepted"
    )


def _answered(name: str, sop_class: str, msg_id: int, t0: int, rsp: Any) -> ServiceRun:
    """A service of one response: sent at ``t0``, answered by ``rsp`` (None: no answer)."""
    elapsed = time.perf_counter_ns() - t0
    status = _status(rsp)
    error = None if status is not None else f"no {name} response"
    return ServiceRun(name, sop_class, msg_id, status, elapsed, error=error)


def echo(assoc: Any, msg_id: int) -> ServiceRun:
    """C-ECHO."""
    if not _accepted(assoc, VERIFICATION):
        return _not_accepted("C-ECHO", VERIFICATION, msg_id)
    t0 = time.perf_counter_ns()
    return _answered("C-ECHO", VERIFICATION, msg_id, t0, assoc.send_c_echo(msg_id=msg_id))


def find_model(level: FindLevel) -> str:
    """The information model a ``--find`` level queries."""
    if level == FindLevel.WORKLIST:
        return _WORKLIST_FIND
    if level == FindLevel.PATIENT:
        return _PATIENT_ROOT_FIND
    return _STUDY_ROOT_FIND


_RETURN_KEYS: dict[FindLevel, tuple[str, ...]] = {
    FindLevel.PATIENT: ("PatientID", "PatientName"),
    FindLevel.STUDY: ("StudyInstanceUID", "StudyDate", "PatientID"),
    FindLevel.SERIES: ("SeriesInstanceUID", "Modality", "StudyInstanceUID"),
    FindLevel.IMAGE: ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"),
    FindLevel.WORKLIST: ("PatientID", "PatientName", "AccessionNumber"),
}


def check_key(keyword: str) -> None:
    """Raises ValueError unless ``keyword`` is a data element keyword pydicom knows and not
    a sequence (a matching key of this minimal query is one value)."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise ValueError(f"unknown data element keyword {keyword!r}")
    if dictionary_VR(tag) == "SQ":
        raise ValueError(f"{keyword} is a sequence: not a matching key --find can set")


def check_query(spec: FindSpec) -> None:
    """Raises ValueError when the query cannot be encoded (a value its VR does not allow)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        buffer = DicomBytesIO()
        buffer.is_implicit_VR = True  # as the query is sent when Implicit VR is accepted
        buffer.is_little_endian = True
        try:
            write_dataset(buffer, identifier(spec))
        except (ValueError, TypeError, UserWarning) as exc:
            raise ValueError(str(exc)) from None


def identifier(spec: FindSpec) -> Dataset:
    """The query: the level's return keys (universal matching), the user's matching keys."""
    ds = Dataset()
    if spec.level != FindLevel.WORKLIST:
        ds.QueryRetrieveLevel = spec.level.value.upper()
    for keyword in _RETURN_KEYS[spec.level]:
        setattr(ds, keyword, "")
    if spec.level == FindLevel.WORKLIST:
        step = Dataset()
        step.Modality = ""
        step.ScheduledProcedureStepStartDate = ""
        step.ScheduledStationAETitle = ""
        ds.ScheduledProcedureStepSequence = [step]
    for keyword, value in spec.keys:
        setattr(ds, keyword, value)
    return ds


def find(assoc: Any, spec: FindSpec, msg_id: int) -> ServiceRun:
    """A C-FIND; after ``spec.limit`` matches it sends C-CANCEL (and stops counting)."""
    model = find_model(spec.level)
    if not _accepted(assoc, model):
        return _not_accepted("C-FIND", model, msg_id)
    context_id = next(
        cx.context_id for cx in assoc.accepted_contexts if cx.abstract_syntax == model
    )
    t0 = time.perf_counter_ns()
    matches = 0
    after_cancel = 0
    cancelled = False
    final: int | None = None
    for rsp, _ in assoc.send_c_find(identifier(spec), model, msg_id=msg_id):
        status = _status(rsp)
        if status is None:
            break  # no answer in time, or the association went away
        if status not in _PENDING:
            final = status
            break
        if cancelled:
            after_cancel += 1
            if after_cancel > spec.limit:  # a peer that ignores the C-CANCEL
                assoc.abort()
                break
            continue
        matches += 1
        if matches >= spec.limit:
            assoc.send_c_cancel(msg_id, context_id)
            cancelled = True
    elapsed = time.perf_counter_ns() - t0
    return ServiceRun(
        "C-FIND",
        model,
        msg_id,
        final,
        elapsed,
        error=None if final is not None else "no final C-FIND response",
        matches=matches,
        cancelled=cancelled,
    )


def store(assoc: Any, source: Path | Dataset, sop_class: str, msg_id: int) -> ServiceRun:
    """A C-STORE of one object (a file is sent from disk in chunks)."""
    if not _accepted(assoc, sop_class):
        return _not_accepted("C-STORE", sop_class, msg_id)
    t0 = time.perf_counter_ns()
    try:
        rsp = assoc.send_c_store(source, msg_id=msg_id)
    except (ValueError, AttributeError) as exc:
        return ServiceRun("C-STORE", sop_class, msg_id, None, 0, error=f"cannot send: {exc}")
    return _answered("C-STORE", sop_class, msg_id, t0, rsp)


class CommitReports:
    """Receives N-EVENT-REPORTs on the association (bind :attr:`bindings`).

    A report is handed over once its N-EVENT-REPORT-RSP has been sent: the association is
    then idle again and may be released (releasing while pynetdicom is still answering
    the report makes it abort)."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[int, Dataset | None, int]] = queue.Queue()
        self._answering: list[tuple[int, Dataset | None, int]] = []

    def handler(self, event: Any) -> tuple[int, None]:
        """``EVT_N_EVENT_REPORT``: note it, answer Success (no event reply)."""
        try:
            info: Dataset | None = event.event_information
        except Exception:  # an undecodable data set is the SCP's fault: report it as such
            info = None
        self._answering.append((int(event.request.EventTypeID or 0), info, time.perf_counter_ns()))
        return 0x0000, None

    def sent(self, event: Any) -> None:
        """``EVT_DIMSE_SENT``: the answer to a report went out."""
        if type(event.message).__name__ == "N_EVENT_REPORT_RSP" and self._answering:
            self._queue.put(self._answering.pop(0))

    def wait(self, timeout: float) -> tuple[int, Dataset | None, int] | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    @property
    def bindings(self) -> list[tuple[Any, Any]]:
        return [(evt.EVT_N_EVENT_REPORT, self.handler), (evt.EVT_DIMSE_SENT, self.sent)]


def commit(
    assoc: Any,
    sop_class: str,
    sop_instance: str,
    msg_id: int,
    reports: CommitReports,
    timeout: float,
) -> ServiceRun:
    """Storage commitment: N-ACTION (Request Storage Commitment) for one instance, then
    the N-EVENT-REPORT with the result on the same association, within ``timeout``."""
    if not _accepted(assoc, STORAGE_COMMITMENT):
        return _not_accepted("commit", STORAGE_COMMITMENT, msg_id)
    request = Dataset()
    transaction = generate_uid()
    request.TransactionUID = transaction
    ref = Dataset()
    ref.ReferencedSOPClassUID = sop_class
    ref.ReferencedSOPInstanceUID = sop_instance
    request.ReferencedSOPSequence = [ref]
    t0 = time.perf_counter_ns()
    rsp, _ = assoc.send_n_action(request, 1, STORAGE_COMMITMENT, COMMITMENT_INSTANCE, msg_id=msg_id)
    status = _status(rsp)
    if status is None or status != 0x0000:
        return ServiceRun(
            "commit",
            STORAGE_COMMITMENT,
            msg_id,
            status,
            time.perf_counter_ns() - t0,
            error="no N-ACTION response" if status is None else "N-ACTION refused",
        )
    got = reports.wait(timeout)
    if got is None:
        return ServiceRun(
            "commit",
            STORAGE_COMMITMENT,
            msg_id,
            status,
            time.perf_counter_ns() - t0,
            error=f"no N-EVENT-REPORT on this association within {timeout:g} s",
        )
    event_type, info, at = got
    elapsed = at - t0
    if info is None or info.get("TransactionUID") != transaction:
        return ServiceRun(
            "commit",
            STORAGE_COMMITMENT,
            msg_id,
            status,
            elapsed,
            error="the N-EVENT-REPORT does not answer this transaction",
        )
    committed = {r.get("ReferencedSOPInstanceUID") for r in info.get("ReferencedSOPSequence", [])}
    failed = list(info.get("FailedSOPSequence", []))
    if event_type == 1 and sop_instance in committed:
        return ServiceRun("commit", STORAGE_COMMITMENT, msg_id, status, elapsed, report_status=0)
    reason = next(
        (
            int(f.get("FailureReason", 0))
            for f in failed
            if f.get("ReferencedSOPInstanceUID") == sop_instance
        ),
        None,
    )
    return ServiceRun(
        "commit",
        STORAGE_COMMITMENT,
        msg_id,
        status,
        elapsed,
        error="the SCP did not commit the object"
        + (
            f" (failure reason 0x{reason:04X}: "
            f"{status_meaning(reason, 'N-EVENT-REPORT', STORAGE_COMMITMENT)[1]})"
            if reason is not None
            else ""
        ),
        report_status=reason if reason is not None else -1,
    )
