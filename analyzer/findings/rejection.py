"""``association-rejected``: the acceptor said no (A-ASSOCIATE-RJ, PS3.8 §9.3.4)."""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.model import Finding, Outcome, Severity
from dissectors.pdu import (
    DICOM_APPLICATION_CONTEXT,
    RejectResult,
    RejectSource,
    reject_reason_text,
    reject_result_text,
    reject_source_text,
)

from .facts import Facts, ae_exact, cap

_USER = RejectSource.SERVICE_USER
_ACSE = RejectSource.SERVICE_PROVIDER_ACSE
_PRESENTATION = RejectSource.SERVICE_PROVIDER_PRESENTATION

CASE_AND_SPACES = (
    "AE titles are compared byte for byte: upper and lower case differ, and so do leading spaces."
)


def association_rejected(f: Facts) -> Iterator[Finding]:
    a = f.a
    rj = a.reject
    if a.outcome != Outcome.REJECTED or rj is None:
        return
    codes = (
        f"A-ASSOCIATE-RJ result {rj.result} ({reject_result_text(rj.result)}), source {rj.source} "
        f"({reject_source_text(rj.source)}), reason {rj.reason} "
        f"({reject_reason_text(rj.source, rj.reason)})."
    )
    requestor = f.party(True)
    # The AC never came, so the acceptor's own AE title is unknown: name it by address.
    acceptor = f.party(False, by_title=False)
    retry = (
        " The rejection is transient: the same request may succeed later."
        if rj.result == RejectResult.REJECTED_TRANSIENT
        else " The rejection is permanent: retrying unchanged will fail the same way."
    )
    title: str
    why: str
    hint: str
    if rj.source == _USER and rj.reason == 7:
        title = "Called AE title not recognised"
        why = (
            f"{cap(acceptor)} refused the association because it does not answer to the "
            f"called AE title {ae_exact(a.called_ae)} that {requestor} asked for."
        )
        hint = (
            f"On the requesting device ({a.client.ip}), set the called AE title to the AE title "
            f"the application at {a.server} is configured with; or add "
            f"{ae_exact(a.called_ae)} to the titles it accepts. {CASE_AND_SPACES}"
        )
    elif rj.source == _USER and rj.reason == 3:
        title = "Calling AE title not recognised"
        why = (
            f"{cap(acceptor)} refused the association because it does not know the "
            f"calling AE title {ae_exact(a.calling_ae)} of {requestor}."
        )
        hint = (
            f"Register the requesting device on the application at {a.server}: AE title "
            f"{ae_exact(a.calling_ae)}, IP address {a.client.ip} (and its port, if the acceptor "
            f"will also connect back). {CASE_AND_SPACES} If the device is registered, compare "
            "the title there byte for byte with the one sent."
        )
    elif rj.source == _USER and rj.reason == 2:
        title = "Application context not supported"
        why = (
            f"{cap(acceptor)} refused the application context "
            f"'{a.application_context}'; DICOM defines only {DICOM_APPLICATION_CONTEXT}."
        )
        hint = (
            "Fix the application context name on the requesting side; it must be "
            f"{DICOM_APPLICATION_CONTEXT}."
        )
    elif rj.source == _ACSE and rj.reason == 2:
        title = "Protocol version not supported"
        why = (
            f"{cap(acceptor)} refused the protocol version "
            f"{a.protocol_version if a.protocol_version is not None else '?'} of the "
            "A-ASSOCIATE-RQ; "
            "DICOM uses version 1."
        )
        hint = (
            "The requesting software sends a wrong protocol version field (bytes 7-8 of the "
            "A-ASSOCIATE-RQ)."
        )
    elif rj.source == _PRESENTATION and rj.reason == 2:
        title = "Association limit reached on the acceptor"
        busy = _concurrent(f)
        why = (
            f"{cap(acceptor)} refused the association because it already serves as many "
            f"associations as it allows (local limit exceeded).{busy}"
        )
        hint = (
            "Raise the maximum number of simultaneous associations on the acceptor, or make the "
            "requestors open fewer at once. Associations that are never released (left open by "
            "a client) also use up the limit: look for long-lived associations to the same server."
        )
    elif rj.source == _PRESENTATION and rj.reason == 1:
        title = "Acceptor temporarily congested"
        why = f"{cap(acceptor)} refused the association because it is temporarily congested."
        hint = "Retry later; if it persists, check the load on the acceptor."
    else:
        title = "Association rejected"
        why = (
            f"{cap(acceptor)} refused the association without a specific reason "
            f"(the codes say: {reject_reason_text(rj.source, rj.reason)})."
        )
        hint = (
            "The reason is a local policy of the acceptor: its log and its conformance statement "
            "say which (unknown calling AE or IP address, a device not allowed to store, ...). "
            f"Check that {requestor} is registered there."
        )
    yield f.finding(
        "association-rejected",
        Severity.ERROR,
        title,
        f"{why}{retry} {codes}",
        hint,
        frames=(a.rq_frame, rj.frame),
        ts=rj.ts,
        requestor_sent=False,
        detail=f"result={rj.result} source={rj.source} reason={rj.reason}",
    )


def _concurrent(f: Facts) -> str:
    """How many other associations to the same server were open at the time."""
    rj = f.a.reject
    assert rj is not None
    others = [
        o
        for o in f.store.iter_associations()
        if o.id != f.a.id
        and o.server == f.a.server
        and o.start_ts <= rj.ts
        and (o.end_ts is None or o.end_ts >= rj.ts)
        and o.outcome != Outcome.NEVER_ASSOCIATED
    ]
    if not others:
        return " No other association to this server is open in the capture at that moment."
    ids = ", ".join(f"#{o.id}" for o in others[:10])
    return f" {len(others)} other association(s) to this server were open at that moment ({ids})."
