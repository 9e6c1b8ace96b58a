"""Synthetic DICOM objects for the tests (no patient data), written with pydicom."""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)


def write_image(
    path: Path,
    *,
    index: int,
    patient: str = "TEST^PATIENT",
    patient_id: str = "ID0001",
    study: int = 1,
    size: int = 64,
    modality: str = "CT",
    implicit: bool = False,
) -> Path:
    """One image of ``size``×``size`` 16-bit pixels; UIDs derived from the arguments."""
    sop_class = CTImageStorage if modality == "CT" else MRImageStorage
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid(
        entropy_srcs=["dicomtap-tests", patient_id, str(study), str(index)]
    )
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["dicomtap-tests", patient_id, str(study)])
    ds.SeriesInstanceUID = generate_uid(
        entropy_srcs=["dicomtap-tests", patient_id, str(study), "s"]
    )
    ds.PatientName = patient
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyDate = "20260101"
    ds.StudyTime = "120000"
    ds.StudyID = str(study)
    ds.AccessionNumber = f"ACC{study:04d}"
    ds.Modality = modality
    ds.SeriesNumber = 1
    ds.InstanceNumber = index
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = size
    ds.Columns = size
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = bytes((i * 7 + index) % 251 for i in range(size * size * 2))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)
    return path


def write_study(
    directory: Path, count: int, *, patient_id: str = "ID0001", study: int = 1, size: int = 64
) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    return [
        write_image(
            directory / f"{patient_id}_{study}_{i}.dcm",
            index=i,
            patient_id=patient_id,
            study=study,
            size=size,
        )
        for i in range(1, count + 1)
    ]


def big_image(path: Path, size: int, index: int = 1) -> Path:
    """A CT image whose pixel data is ``size`` bytes (pseudo-random, fast to make)."""
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid(entropy_srcs=["dicomtap-proxy", str(size), str(index)])
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["dicomtap-proxy-study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["dicomtap-proxy-series"])
    ds.PatientName = "PROXY^TEST"
    ds.PatientID = "PX0001"
    ds.Modality = "CT"
    ds.Columns = 4096
    ds.Rows = max(1, size // 8192)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    seed = hashlib.sha256(str(index).encode()).digest()
    pixels = ds.Rows * ds.Columns * 2
    ds.PixelData = (seed * (pixels // len(seed) + 1))[:pixels]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)
    return path
