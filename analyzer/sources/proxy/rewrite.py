"""Opt-in rewrites of the association PDUs, re-encoded with the project's own codec.

Only the A-ASSOCIATE-RQ (client → upstream) and A-ASSOCIATE-AC (upstream → client) are ever
touched, and only when a rule asks: the calling and called AE titles (mapped back in the AC,
so the client sees its own titles echoed) and the Maximum Length sub-item (clamped). Only
the changed fields change (see :func:`_apply`); when that cannot be done safely the PDU is
forwarded untouched and the caller says so. The PDUs come whole from the framer
(:class:`~.frames.ControlPdu`), already delimited and decoded by the caller.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from dissectors.pdu import (
    PDU_HEADER,
    AssociateAc,
    AssociateRq,
    MaximumLength,
    UserInformation,
    ae_title_field,
    ae_title_text,
    decode_pdu,
)

from .config import RewriteConfig

__all__ = ["Rewritten", "rewrite_ac", "rewrite_rq"]


@dataclass(frozen=True, slots=True)
class Rewritten:
    """The PDU to send and, for the log, what changed (empty: nothing, ``data`` unchanged).

    ``refused`` explains why a wanted rewrite was not made."""

    data: bytes
    changes: tuple[str, ...] = ()
    refused: str | None = None
    calling_ae: bytes | None = None
    called_ae: bytes | None = None


def _apply(
    pdu: bytes, old: AssociateRq | AssociateAc, new: AssociateRq | AssociateAc
) -> bytes | str:
    """The bytes of ``new``, changing as little of ``pdu`` (which encodes ``old``) as possible.

    Peers fill reserved fields as they like (DCMTK puts 0xFF in one), so the PDU is not
    re-encoded whole: the AE title fields are replaced in place, and the User Information
    item by its re-encoding (with the project's codec) where it sits. The result is decoded
    again and must equal ``new``."""
    out = bytearray(pdu)
    out[10:26] = new.called_ae
    out[26:42] = new.calling_ae
    if new.user_information != old.user_information:
        assert old.user_information is not None and new.user_information is not None
        before = old.user_information.encode()
        at = pdu.rfind(before)
        if at < 74:
            return "its User Information item does not re-encode to its own bytes"
        out[at : at + len(before)] = new.user_information.encode()
        PDU_HEADER.pack_into(out, 0, out[0], out[1], len(out) - PDU_HEADER.size)
    data = bytes(out)
    check, _ = decode_pdu(data)
    if check != new:
        return "the rewritten PDU does not decode to what was intended"
    return data


def _map(raw: bytes, rules: Mapping[str, str]) -> bytes | None:
    title = ae_title_text(raw)
    new = rules.get(title, rules.get("*"))
    if new is None or new == title:
        return None
    return ae_title_field(new)


def _clamp(ui: UserInformation | None, limit: int) -> tuple[UserInformation | None, str | None]:
    if ui is None:
        return None, None
    current = ui.maximum_length
    if current is not None and current != 0 and current <= limit:
        return ui, None
    if current is None:
        items = (MaximumLength(limit), *ui.sub_items)
    else:
        items = tuple(
            MaximumLength(limit) if isinstance(s, MaximumLength) else s for s in ui.sub_items
        )
    was = "unlimited (0)" if current == 0 else ("absent" if current is None else str(current))
    return UserInformation(items), f"max PDU {was} → {limit}"


def _rewritten(
    pdu: bytes,
    old: AssociateRq | AssociateAc,
    new: AssociateRq | AssociateAc,
    changes: list[str],
    max_pdu: int | None,
    calling_ae: bytes | None = None,
    called_ae: bytes | None = None,
) -> Rewritten:
    """``new`` (which ``changes`` describe) with the Maximum Length clamped to ``max_pdu``,
    as the answer for ``pdu``, which encodes ``old``."""
    if max_pdu is not None:
        ui, change = _clamp(old.user_information, max_pdu)
        if change:
            changes.append(f"{old.pdu_type.label} {change}")
            new = dataclasses.replace(new, user_information=ui)
    if not changes:
        return Rewritten(pdu)
    data = _apply(pdu, old, new)
    if isinstance(data, str):
        return Rewritten(pdu, refused=data)
    return Rewritten(data, tuple(changes), calling_ae=calling_ae, called_ae=called_ae)


def rewrite_rq(pdu: bytes, decoded: AssociateRq, rules: RewriteConfig) -> Rewritten:
    """Apply the rules to a whole A-ASSOCIATE-RQ: ``pdu`` (header included) encodes
    ``decoded``."""
    changes: list[str] = []
    new = decoded
    calling = _map(decoded.calling_ae, rules.calling_ae)
    if calling is not None:
        changes.append(f"calling AE {ae_title_text(decoded.calling_ae)} → {ae_title_text(calling)}")
        new = dataclasses.replace(new, calling_ae=calling)
    called = _map(decoded.called_ae, rules.called_ae)
    if called is not None:
        changes.append(f"called AE {ae_title_text(decoded.called_ae)} → {ae_title_text(called)}")
        new = dataclasses.replace(new, called_ae=called)
    return _rewritten(pdu, decoded, new, changes, rules.max_pdu, calling, called)


def rewrite_ac(
    pdu: bytes, decoded: AssociateAc, rules: RewriteConfig, rq: Rewritten, original: AssociateRq
) -> Rewritten:
    """Apply the rules to the upstream's whole A-ASSOCIATE-AC (``pdu`` encodes ``decoded``):
    AE titles the RQ rewrite changed are given back their original fields (the client sees
    its own titles echoed) and the Maximum Length is clamped."""
    changes: list[str] = []
    new = decoded
    if rq.calling_ae is not None and decoded.calling_ae == rq.calling_ae:
        changes.append(
            f"AC calling AE {ae_title_text(rq.calling_ae)} → {ae_title_text(original.calling_ae)}"
        )
        new = dataclasses.replace(new, calling_ae=original.calling_ae)
    if rq.called_ae is not None and decoded.called_ae == rq.called_ae:
        changes.append(
            f"AC called AE {ae_title_text(rq.called_ae)} → {ae_title_text(original.called_ae)}"
        )
        new = dataclasses.replace(new, called_ae=original.called_ae)
    return _rewritten(pdu, decoded, new, changes, rules.max_pdu)
