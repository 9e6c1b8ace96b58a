"""``cleartext-credentials``: a password where anyone on the path can read it."""

from __future__ import annotations

from collections.abc import Iterator

from analyzer.model import Finding, Severity
from dissectors.pdu import UserIdentityType, user_identity_type_text

from .facts import Facts, cap

#: Identity types whose primary field is itself the secret (no separate passcode).
_TOKENS = (UserIdentityType.KERBEROS, UserIdentityType.SAML, UserIdentityType.JWT)


def cleartext_credentials(f: Facts) -> Iterator[Finding]:
    info = f.a.requestor_info
    if info is None or info.user_identity_type is None:
        return
    answer = f.a.acceptor_info
    if (
        info.user_identity_response_requested
        and answer is not None
        and not f.a.ac_missing
        and not answer.user_identity_response
    ):
        yield f.finding(
            "user-identity-unconfirmed",
            Severity.INFO,
            "User identity not confirmed",
            f"{cap(f.party(True))} asked the acceptor to confirm its user identity, but the "
            "A-ASSOCIATE-AC carries no User Identity answer (sub-item 0x59): the acceptor does "
            "not support user identity negotiation, or ignored it.",
            "If access control by user matters, check that the acceptor enforces it at all.",
            frames=(f.a.ac_frame,),
            ts=f.a.ac_ts,
            requestor_sent=False,
        )
    if not info.user_identity_has_passcode and info.user_identity_type not in _TOKENS:
        return
    kind = user_identity_type_text(info.user_identity_type)
    user = f" for user '{info.user_identity_username}'" if info.user_identity_username else ""
    yield f.finding(
        "cleartext-credentials",
        Severity.WARNING,
        "Credentials sent in clear text",
        f"{cap(f.party(True))} sent a user identity ({kind}){user} in the "
        "A-ASSOCIATE-RQ over plain TCP: anyone who can capture this traffic can read it (this "
        "capture could). The secret itself is not shown here.",
        "Use DICOM over TLS for associations that carry user identities, and change the exposed "
        "password or token.",
        frames=(f.a.rq_frame,),
        ts=f.a.rq_ts,
        requestor_sent=True,
    )
