"""What the probe can propose: SOP classes and transfer syntaxes by UID, keyword or name,
the ``--contexts`` presets, and the lists a capability scan goes through.

Names come from pydicom's UID dictionary (``CTImageStorage``, ``CT Image Storage``,
``1.2.840.10008.5.1.4.1.1.2`` are the same thing); the SOP classes a scan proposes are those
pynetdicom knows (its presentation context lists).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

import pydicom.uid
import pynetdicom.presentation as _pc
import pynetdicom.sop_class as _sop
from pydicom.uid import UID

__all__ = [
    "DEFAULT_SYNTAXES",
    "PLAIN_SYNTAXES",
    "SCAN_IMAGE_SYNTAXES",
    "ContextSpec",
    "Preset",
    "RoleSpec",
    "ScanKind",
    "UidError",
    "parse_context",
    "parse_role",
    "preset_contexts",
    "scan_contexts",
    "sop_class_uid",
    "transfer_syntax_uid",
]

IMPLICIT = str(pydicom.uid.ImplicitVRLittleEndian)
EXPLICIT = str(pydicom.uid.ExplicitVRLittleEndian)

#: Proposed when a context names no transfer syntax: the two every SCP should know.
DEFAULT_SYNTAXES: tuple[str, ...] = (EXPLICIT, IMPLICIT)

#: The uncompressed encodings, for SOP classes that carry no pixel data.
PLAIN_SYNTAXES: tuple[str, ...] = (
    IMPLICIT,
    EXPLICIT,
    str(pydicom.uid.DeflatedExplicitVRLittleEndian),
    str(pydicom.uid.ExplicitVRBigEndian),
)

#: A spread of encodings for storage: uncompressed, and the compressions archives meet.
SCAN_IMAGE_SYNTAXES: tuple[str, ...] = (
    IMPLICIT,
    EXPLICIT,
    str(pydicom.uid.DeflatedExplicitVRLittleEndian),
    str(pydicom.uid.JPEGBaseline8Bit),
    str(pydicom.uid.JPEGLosslessSV1),
    str(pydicom.uid.JPEGLSLossless),
    str(pydicom.uid.JPEG2000Lossless),
    str(pydicom.uid.RLELossless),
)


class UidError(ValueError):
    """A SOP class or transfer syntax that is neither a UID nor a name pydicom knows."""


@cache
def _by_name() -> dict[str, UID]:
    """Keywords and names, lower-cased, to UIDs: the transfer syntaxes pydicom exports by
    keyword and the SOP classes pynetdicom does; names from pydicom's dictionary."""
    table: dict[str, UID] = {}
    for module in (pydicom.uid, _sop):
        for attribute, value in vars(module).items():
            if isinstance(value, UID) and value.keyword:
                for key in (attribute, value.keyword, value.name):
                    table.setdefault(key.lower(), UID(str(value)))
    return table


_UID_SYNTAX = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$")


def _lookup(text: str, kind: str) -> str:
    text = text.strip()
    if _UID_SYNTAX.match(text):
        if len(text) > 64:
            raise UidError(f"{text!r} is longer than a UID may be (64 characters)")
        return text
    uid = _by_name().get(text.lower())
    if uid is None:
        raise UidError(f"unknown {kind} {text!r}: give a UID, or a keyword or name pydicom knows")
    if kind == "transfer syntax" and not uid.is_transfer_syntax:
        raise UidError(f"{text!r} is not a transfer syntax")
    if kind == "SOP class" and uid.is_transfer_syntax:
        raise UidError(f"{text!r} is a transfer syntax, not a SOP class")
    return str(uid)


def sop_class_uid(text: str) -> str:
    """The UID of a SOP class given by UID, keyword or name; raises :class:`UidError`."""
    return _lookup(text, "SOP class")


def transfer_syntax_uid(text: str) -> str:
    """The UID of a transfer syntax given by UID, keyword or name; raises :class:`UidError`."""
    return _lookup(text, "transfer syntax")


@dataclass(frozen=True, slots=True)
class ContextSpec:
    """One presentation context to propose."""

    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...] = DEFAULT_SYNTAXES


@dataclass(frozen=True, slots=True)
class RoleSpec:
    """An SCP/SCU role selection item to propose for one SOP class (PS3.7 D.3.3.4)."""

    sop_class: str
    scu: bool
    scp: bool


def parse_context(text: str) -> ContextSpec:
    """``SOP[=TS,TS...]`` (each by UID, keyword or name)."""
    sop, _, syntaxes = text.partition("=")
    uid = sop_class_uid(sop)
    if not syntaxes.strip():
        return ContextSpec(uid)
    listed = tuple(dict.fromkeys(transfer_syntax_uid(t) for t in syntaxes.split(",")))
    return ContextSpec(uid, listed)


def parse_role(text: str) -> RoleSpec:
    """``SOP=scu``, ``SOP=scp`` or ``SOP=scu,scp``: the roles the probe asks to play."""
    sop, sep, roles = text.partition("=")
    wanted = {r.strip().lower() for r in roles.split(",") if r.strip()}
    if not sep or not wanted or not wanted <= {"scu", "scp"}:
        raise UidError(f"bad role {text!r}: expected SOP=scu, SOP=scp or SOP=scu,scp")
    return RoleSpec(sop_class_uid(sop), "scu" in wanted, "scp" in wanted)


class Preset(StrEnum):
    """``--contexts`` presets."""

    VERIFICATION = "verification"
    STORAGE = "storage"
    QUERY_RETRIEVE = "query-retrieve"
    WORKLIST = "worklist"
    COMMITMENT = "commitment"


#: The storage SOP classes a modality-to-archive route usually carries.
_COMMON_STORAGE = (
    "ComputedRadiographyImageStorage",
    "DigitalXRayImageStorageForPresentation",
    "DigitalMammographyXRayImageStorageForPresentation",
    "CTImageStorage",
    "EnhancedCTImageStorage",
    "MRImageStorage",
    "EnhancedMRImageStorage",
    "UltrasoundImageStorage",
    "UltrasoundMultiFrameImageStorage",
    "SecondaryCaptureImageStorage",
    "XRayAngiographicImageStorage",
    "NuclearMedicineImageStorage",
    "PositronEmissionTomographyImageStorage",
    "GrayscaleSoftcopyPresentationStateStorage",
    "XRayRadiationDoseSRStorage",
    "EncapsulatedPDFStorage",
)

_PRESETS: dict[Preset, tuple[str, ...]] = {
    Preset.VERIFICATION: ("Verification",),
    Preset.STORAGE: _COMMON_STORAGE,
    Preset.QUERY_RETRIEVE: (
        "PatientRootQueryRetrieveInformationModelFind",
        "PatientRootQueryRetrieveInformationModelMove",
        "PatientRootQueryRetrieveInformationModelGet",
        "StudyRootQueryRetrieveInformationModelFind",
        "StudyRootQueryRetrieveInformationModelMove",
        "StudyRootQueryRetrieveInformationModelGet",
    ),
    Preset.WORKLIST: ("ModalityWorklistInformationFind",),
    Preset.COMMITMENT: ("StorageCommitmentPushModel",),
}


def preset_contexts(preset: Preset) -> list[ContextSpec]:
    """The contexts of a preset, each with :data:`DEFAULT_SYNTAXES`."""
    return [ContextSpec(sop_class_uid(k)) for k in _PRESETS[preset]]


class ScanKind(StrEnum):
    """What ``--scan`` goes through."""

    STORAGE = "storage"
    ALL = "all"


def _storage_classes() -> list[str]:
    return [str(c.abstract_syntax) for c in _pc.AllStoragePresentationContexts]


def _all_classes() -> list[str]:
    seen: dict[str, None] = {}
    for name in sorted(vars(_pc)):
        if name.endswith("PresentationContexts") and name != "StoragePresentationContexts":
            for c in getattr(_pc, name):
                seen.setdefault(str(c.abstract_syntax), None)
    return list(seen)


def scan_contexts(
    kind: ScanKind, image_syntaxes: Iterable[str] = SCAN_IMAGE_SYNTAXES
) -> list[ContextSpec]:
    """One context per (SOP class, transfer syntax) pair, so each pair gets its own answer.

    Storage SOP classes are proposed with ``image_syntaxes``; others (``all``) with
    :data:`PLAIN_SYNTAXES` only, as they carry no pixel data.
    """
    storage = _storage_classes()
    image = tuple(image_syntaxes)
    out = [ContextSpec(sop, (ts,)) for sop in storage for ts in image]
    if kind == ScanKind.ALL:
        stored = set(storage)
        for sop in _all_classes():
            if sop not in stored:
                out += [ContextSpec(sop, (ts,)) for ts in PLAIN_SYNTAXES]
    return out
