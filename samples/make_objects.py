#!/usr/bin/env python3
"""Write the synthetic DICOM objects that samples/make_samples.sh sends.

Usage: python3 samples/make_objects.py OUTDIR

Everything is deterministic: UIDs come from pydicom's generate_uid() with a
fixed entropy source (so they live under pydicom's own UID root
1.2.826.0.1.3680043.8.498.), dates and times are fixed and the pixel data are
computed patterns.  Running the script twice gives byte-identical files.
No patient data: names, IDs and images are invented.

Objects written (file name -> content):

  ct1.dcm ct2.dcm ct3.dcm  CT Image Storage, 64x64 16-bit, patient DOE^JOHN,
                           study 1 (3 slices of one series), Explicit VR LE
  mr1.dcm                  MR Image Storage, 64x64 16-bit, patient ROE^JANE,
                           study 2, Implicit VR LE
  big1.dcm                 CT Image Storage, 384x384 16-bit (~290 KiB of
                           pixel data, so its data set spans 19 P-DATA-TF
                           PDUs at the default max PDU of 16384), patient
                           POE^EDGAR, study 3, Explicit VR LE
"""

from __future__ import annotations

import sys
from array import array
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    MRImageStorage,
    generate_uid,
)

# Fixed entropy prefix: change it and every UID changes.
_SEED = "dicomtap-samples-v1"


def uid(*parts: str) -> str:
    """A stable UID under pydicom's root, derived from SEED and *parts*."""
    return str(generate_uid(entropy_srcs=[_SEED, *parts]))


def pixels(rows: int, cols: int, seed: int) -> bytes:
    """A deterministic 16-bit little-endian image: a disc on a gradient."""
    out = array("H")
    cy, cx, r2 = rows / 2, cols / 2, (min(rows, cols) / 3) ** 2
    for y in range(rows):
        for x in range(cols):
            v = (x * 7 + y * 3 + seed * 101) % 1024
            if (y - cy) ** 2 + (x - cx) ** 2 < r2:
                v += 1500
            out.append(v & 0x0FFF)  # BitsStored 12
    if sys.byteorder != "little":
        out.byteswap()
    return out.tobytes()


def make_image(
    *,
    sop_class: str,
    modality: str,
    patient: tuple[str, str, str, str],
    study: int,
    series: int,
    instance: int,
    rows: int,
    cols: int,
    transfer_syntax: str,
    description: str,
) -> Dataset:
    name, pid, birth, sex = patient
    sop_uid = uid("instance", str(study), str(series), str(instance))

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = transfer_syntax
    # Fixed implementation identity so the files do not depend on the
    # installed pydicom version.
    meta.ImplementationClassUID = uid("implementation")
    meta.ImplementationVersionName = "DICOMTAP_SAMPLES"

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = "20240102"
    ds.SeriesDate = "20240102"
    ds.ContentDate = "20240102"
    ds.StudyTime = f"{9 + study:02d}0000"
    ds.SeriesTime = f"{9 + study:02d}0500"
    ds.ContentTime = f"{9 + study:02d}05{instance:02d}"
    ds.AccessionNumber = f"ACC{study:04d}"
    ds.Modality = modality
    ds.Manufacturer = "dicomtap synthetic"
    ds.InstitutionName = "Nowhere General (synthetic)"
    ds.ReferringPhysicianName = "NOBODY^REFERRING"
    ds.StudyDescription = description
    ds.SeriesDescription = f"{description} series {series}"
    ds.PatientName = name
    ds.PatientID = pid
    ds.PatientBirthDate = birth
    ds.PatientSex = sex
    ds.StudyInstanceUID = uid("study", str(study))
    ds.SeriesInstanceUID = uid("series", str(study), str(series))
    ds.StudyID = str(study)
    ds.SeriesNumber = series
    ds.InstanceNumber = instance
    ds.FrameOfReferenceUID = uid("for", str(study))
    ds.PositionReferenceIndicator = ""
    ds.ImagePositionPatient = [-100.0, -100.0, float(instance * 5)]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.SliceThickness = 5.0
    ds.SliceLocation = float(instance * 5)
    ds.PixelSpacing = [round(200.0 / rows, 4), round(200.0 / cols, 4)]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    if modality == "CT":
        ds.KVP = 120
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.WindowCenter = 40
        ds.WindowWidth = 400
    else:
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.EchoTime = 20
        ds.RepetitionTime = 500
        ds.MagneticFieldStrength = 1.5
    ds.PixelData = pixels(rows, cols, study * 10 + instance)
    ds["PixelData"].VR = "OW"
    return ds


PATIENTS = {
    1: ("DOE^JOHN", "DT0001", "19700101", "M"),
    2: ("ROE^JANE", "DT0002", "19800202", "F"),
    3: ("POE^EDGAR", "DT0003", "19090119", "M"),
}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)

    objects: dict[str, Dataset] = {}
    for i in (1, 2, 3):
        objects[f"ct{i}.dcm"] = make_image(
            sop_class=CTImageStorage,
            modality="CT",
            patient=PATIENTS[1],
            study=1,
            series=1,
            instance=i,
            rows=64,
            cols=64,
            transfer_syntax=ExplicitVRLittleEndian,
            description="CT HEAD",
        )
    objects["mr1.dcm"] = make_image(
        sop_class=MRImageStorage,
        modality="MR",
        patient=PATIENTS[2],
        study=2,
        series=1,
        instance=1,
        rows=64,
        cols=64,
        transfer_syntax=ImplicitVRLittleEndian,
        description="MR KNEE",
    )
    objects["big1.dcm"] = make_image(
        sop_class=CTImageStorage,
        modality="CT",
        patient=PATIENTS[3],
        study=3,
        series=1,
        instance=1,
        rows=384,
        cols=384,
        transfer_syntax=ExplicitVRLittleEndian,
        description="CT CHEST",
    )

    for name, ds in objects.items():
        ts = ds.file_meta.TransferSyntaxUID
        ds.save_as(
            out / name,
            enforce_file_format=True,
            implicit_vr=ts == ImplicitVRLittleEndian,
            little_endian=True,
        )
        print(f"{out / name}: {ds.SOPClassUID.name}, {ts.name}, {ds.PatientName}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
