"""What the benchmarks share: running commands, DCMTK's tools, large generated objects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def sh(*argv: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run a command to completion, output captured."""
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)


def dcmtk(name: str) -> str:
    """Absolute path of a DCMTK tool (pynetdicom installs Python apps of the same names)."""
    path = f"/usr/bin/{name}"
    if not os.access(path, os.X_OK):
        sys.exit(f"{path} not found: install DCMTK (apt install dcmtk)")
    return path


def make_objects(directory: Path, total_mb: int, seed: str = "dicomtap-bench") -> list[Path]:
    """Files of 32 MiB of pixel data, listed as often as needed to reach ``total_mb``."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = cols = 4096
    pixels = bytes(range(256)) * (rows * cols * 2 // 256)
    distinct = []
    for i in range(4):
        ds = Dataset()
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[seed, str(i)])
        ds.StudyInstanceUID = generate_uid(entropy_srcs=[seed])
        ds.SeriesInstanceUID = generate_uid(entropy_srcs=[seed, "s"])
        ds.PatientName, ds.PatientID, ds.Modality = "BENCH^MARK", "BENCH", "CT"
        ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, cols, 1
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelData = pixels
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        path = directory / f"bench{i}.dcm"
        ds.save_as(path, enforce_file_format=True)
        distinct.append(path)
    per = distinct[0].stat().st_size
    count = -(-total_mb * 1024 * 1024 // per)
    return [distinct[i % len(distinct)] for i in range(count)]
