"""Names and meanings for what the wire carries as numbers or UIDs.

UID names come from pydicom's UID dictionary; DIMSE status meanings from pynetdicom's
status tables (PS3.7 Annex C and the service classes of PS3.4), chosen by the SOP class's
service class and the command.
"""

from __future__ import annotations

from functools import lru_cache

from pydicom import config
from pydicom.uid import UID
from pynetdicom import status as _status
from pynetdicom.sop_class import uid_to_service_class

# Re-exported (explicitly, ``as``) so that the presentation layer gets the standard's words
# for these codes without importing dissectors.
from dissectors.pdu import context_result_text as context_result_text
from dissectors.pdu import pdu_name as pdu_name
from dissectors.pdu import user_identity_type_text as user_identity_type_text

_SUCCESS, _WARNING, _FAILURE, _CANCEL, _PENDING = (
    _status.STATUS_SUCCESS,
    _status.STATUS_WARNING,
    _status.STATUS_FAILURE,
    _status.STATUS_CANCEL,
    _status.STATUS_PENDING,
)

# pynetdicom's QueryRetrieveServiceClass picks its table by the SOP class; the command is
# the simpler key and gives the same table.
_QR_TABLES = {
    "C-FIND": _status.QR_FIND_SERVICE_CLASS_STATUS,
    "C-GET": _status.QR_GET_SERVICE_CLASS_STATUS,
    "C-MOVE": _status.QR_MOVE_SERVICE_CLASS_STATUS,
}


@lru_cache(maxsize=4096)
def uid_name(uid: str | None) -> str:
    """The dictionary name of a UID (``CT Image Storage``), or the UID itself if unknown."""
    if not uid:
        return "(none)"
    name = str(_uid(uid).name)
    return name or uid


def uid_valid(uid: str) -> bool:
    """True when ``uid`` is a UID as PS3.5 §9.1 allows (digits and dots, no leading zero in a
    component, at most 64 characters)."""
    return bool(_uid(uid).is_valid)


def _uid(text: str) -> UID:
    """A UID from the wire, for a dictionary look-up: not validated here (pydicom would warn
    on stderr); the dissectors report an invalid UID as a violation where it was sent."""
    return UID(text, validation_mode=config.IGNORE)


@lru_cache(maxsize=1024)
def uid_short(uid: str | None) -> str:
    """A name short enough for a table column: the dictionary name, or its keyword when the
    name is long (``JPEGLosslessSV1`` for Process 14 SV1)."""
    name = uid_name(uid)
    if len(name) > 36 and uid:
        keyword = str(_uid(uid).keyword)
        if keyword:
            return keyword
    return name


@lru_cache(maxsize=4096)
def status_meaning(status: int | None, service: str, sop_class: str | None) -> tuple[str, str]:
    """``(category, meaning)`` of a DIMSE status.

    ``category`` is one of Success, Warning, Failure, Cancel, Pending (pynetdicom's words),
    or Unknown. ``service`` is the DIMSE service (``C-STORE``); ``sop_class`` the affected
    SOP class UID, which selects the service class's table.
    """
    if status is None:
        return "Unknown", "no status"
    table = _status.GENERAL_STATUS
    try:
        service_class = uid_to_service_class(sop_class) if sop_class else None
    except Exception:
        service_class = None
    if (
        service in _QR_TABLES
        and service_class is not None
        and "QueryRetrieve" in service_class.__name__
    ):
        table = _QR_TABLES[service]
    elif service_class is not None and isinstance(getattr(service_class, "statuses", None), dict):
        table = service_class.statuses
    entry = table.get(status) or _status.GENERAL_STATUS.get(status)
    if entry is not None:
        category, meaning = entry
        return str(category), str(meaning) if meaning else str(category)
    category = str(_status.code_to_category(status))
    return category, _range_meaning(status, category)


def _range_meaning(status: int, category: str) -> str:
    """Meanings PS3.7 gives to whole ranges rather than to single values."""
    if 0xA700 <= status <= 0xA7FF:
        return "Refused: Out of resources"
    if 0xA900 <= status <= 0xA9FF:
        return "Error: Data Set does not match SOP Class"
    if 0xC000 <= status <= 0xCFFF:
        return "Error: Cannot understand"
    if category == "Unknown":
        return "status not defined by the standard (vendor-specific)"
    return category
