"""Naming an implementation from what it says in its A-ASSOCIATE-RQ/AC.

Each DICOM toolkit has an Implementation Class UID under its maker's root and usually a
Version Name that gives the release; products built on a toolkit often send the toolkit's
own (Orthanc 1.10 sends DCMTK's). Only roots this project has seen on real peers or that the
toolkits document are listed; anything else is shown as sent, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from analyzer.model import Association, UserInfo


@dataclass(frozen=True, slots=True)
class Toolkit:
    """A DICOM toolkit known by its Implementation Class UID root."""

    root: str
    name: str
    version: re.Pattern[str] | None
    """Extracts the release from the Version Name (``OFFIS_DCMTK_367`` → 3.6.7)."""
    also: str = ""
    """Products known to send this toolkit's identity."""


TOOLKITS: tuple[Toolkit, ...] = (
    Toolkit(
        "1.2.276.0.7230010.3",
        "DCMTK",
        re.compile(r"OFFIS_DCMTK_(\d)(\d)(\d+)"),
        also="Orthanc and dcmqrscp send it too",
    ),
    Toolkit("1.2.826.0.1.3680043.9.3811", "pynetdicom", re.compile(r"PYNETDICOM_(\d)(\d)(\d+)")),
    Toolkit("1.2.40.0.13.1", "dcm4che", re.compile(r"dcm4che-(\d+)\.(\d+)\.(\d+)")),
    Toolkit("1.3.6.1.4.1.30071.8", "fo-dicom", re.compile(r"fo-dicom (\d+)\.(\d+)\.(\d+)")),
)

DCMTK = TOOLKITS[0]


def toolkit(info: UserInfo | None) -> Toolkit | None:
    """The toolkit whose UID root the Implementation Class UID is under, if known."""
    uid = info.implementation_class_uid if info is not None else None
    if not uid:
        return None
    for kit in TOOLKITS:
        if uid == kit.root or uid.startswith(kit.root + "."):
            return kit
    return None


def describe(info: UserInfo | None) -> str:
    """``OFFIS_DCMTK_367 (1.2.276.0.7230010.3.0.3.6.7: DCMTK 3.6.7; Orthanc and dcmqrscp
    send it too)``, or ``not identified`` when nothing was sent."""
    if info is None or not (info.implementation_class_uid or info.implementation_version_name):
        return "not identified (no A-ASSOCIATE-RQ/AC captured)"
    uid = info.implementation_class_uid or "no class UID"
    version = info.implementation_version_name
    kit = toolkit(info)
    name = ""
    if kit is not None:
        release = ""
        match = kit.version.search(version or "") if kit.version else None
        if match:
            release = " " + ".".join(match.groups())
        name = f": {kit.name}{release}" + (f"; {kit.also}" if kit.also else "")
    head = f"{version} " if version else ""
    return f"{head}({uid}{name})"


def side_info(a: Association, requestor: bool) -> UserInfo | None:
    return a.requestor_info if requestor else a.acceptor_info
