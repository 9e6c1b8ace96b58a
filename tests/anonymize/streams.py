"""P-DATA-TF streams built for the tests, with the PDV records a framer reports for them.

Builds a stream (command set and data set of one message, split into PDVs of at most
``max_pdv`` bytes, one PDV per P-DATA-TF) and gives, for chunks of that stream cut at any
offsets, the calls the payload tap makes: this is construction, not parsing (the test knows
where it put every header)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from tests.factories import command


def encode(ds: Dataset, implicit: bool, little: bool = True) -> bytes:
    buf = DicomBytesIO()
    buf.is_implicit_VR = implicit
    buf.is_little_endian = little
    write_dataset(buf, ds)
    return buf.getvalue()


@dataclass(frozen=True)
class Pdv:
    offset: int  # stream offset of the PDV header
    context_id: int
    control: int
    payload: bytes

    @property
    def data_offset(self) -> int:
        return self.offset + 6


def p_data_stream(
    parts: list[tuple[int, bool, bytes]], max_pdv: int = 100
) -> tuple[bytes, list[Pdv]]:
    """``parts``: (context, is_command, bytes) in order; each is cut into PDVs."""
    out = bytearray()
    pdvs: list[Pdv] = []
    for ctx, is_command, data in parts:
        pieces = [data[i : i + max_pdv] for i in range(0, len(data), max_pdv)] or [b""]
        for n, piece in enumerate(pieces):
            control = (1 if is_command else 0) | (2 if n == len(pieces) - 1 else 0)
            pdu_len = 6 + len(piece)
            out += bytes([4, 0]) + pdu_len.to_bytes(4, "big")
            offset = len(out)
            out += (len(piece) + 2).to_bytes(4, "big") + bytes([ctx, control]) + piece
            pdvs.append(Pdv(offset, ctx, control, piece))
    return bytes(out), pdvs


def store_message(
    ds_bytes: bytes, sop_instance: str, ctx: int = 1
) -> list[tuple[int, bool, bytes]]:
    cmd = command(
        command_field=0x0001,
        message_id=7,
        affected_sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        affected_sop_instance_uid=sop_instance,
        priority=0,
        dataset_type=0x0000,
    )
    return [(ctx, True, cmd), (ctx, False, ds_bytes)]


@dataclass(frozen=True)
class Call:
    kind: str  # start, data, end
    args: tuple[object, ...]


def tap_calls(pdvs: list[Pdv], cuts: list[int]) -> Iterator[Call]:
    """The tap's calls for the PDVs, with each payload cut at the stream offsets ``cuts``
    (TCP segment boundaries)."""
    for pdv in pdvs:
        yield Call("start", (pdv.context_id, pdv.control))
        start, end = pdv.data_offset, pdv.data_offset + len(pdv.payload)
        bounds = sorted({start, end, *(c for c in cuts if start < c < end)})
        for lo, hi in itertools.pairwise(bounds):
            yield Call("data", (memoryview(pdv.payload)[lo - start : hi - start], lo))
        yield Call("end", ())
