"""The File Meta Information group (PS3.10 §7.1) that heads each exported file.

Built with pydicom (:func:`pydicom.filewriter.write_file_meta_info`): preamble, ``DICM``, and
group 0002 in Explicit VR Little Endian with its group length.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version

from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import RE_VALID_UID, UID


def _version() -> str:
    try:
        return version("dicomtap")
    except PackageNotFoundError:  # running from a source tree
        return "0.0.0"


#: dicomtap's Implementation Class UID: a 2.25 UID (PS3.5 Annex B.2) of a name-based UUID.
IMPLEMENTATION_CLASS_UID = "2.25.118469991236413485299221323208156805628"
#: Implementation Version Name: at most 16 characters (SH).
IMPLEMENTATION_VERSION_NAME = f"DICOMTAP_{_version()}"[:16]


def valid_uid(value: str | None) -> bool:
    """Whether ``value`` is a UID as PS3.5 §9.1 has it: digits and dots, no leading zero,
    at most 64 characters (and nothing else: no path, no newline)."""
    return (
        value is not None and 0 < len(value) <= 64 and re.fullmatch(RE_VALID_UID, value) is not None
    )


def file_meta(
    *,
    sop_class: str | None,
    sop_instance: str | None,
    transfer_syntax: str,
    source_ae: str | None = None,
) -> bytes:
    """Preamble, ``DICM`` and the File Meta Information group of one file.

    A SOP class or instance that is not a valid UID is left out rather than written wrong
    (a reader then says it is missing)."""
    meta = FileMetaDataset()
    meta.FileMetaInformationGroupLength = 0  # the writer puts the group's length there
    meta.FileMetaInformationVersion = b"\x00\x01"
    if sop_class is not None and valid_uid(sop_class):
        meta.MediaStorageSOPClassUID = UID(sop_class)
    if sop_instance is not None and valid_uid(sop_instance):
        meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = UID(transfer_syntax)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    ae = (source_ae or "").strip()
    if ae and all(32 <= ord(c) < 127 and c != "\\" for c in ae) and len(ae) <= 16:
        meta.SourceApplicationEntityTitle = ae
    out = DicomBytesIO()
    out.is_little_endian = True
    out.is_implicit_VR = False
    out.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(out, meta, enforce_standard=False)
    return out.getvalue()
