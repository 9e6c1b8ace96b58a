"""DIMSE: command sets, data sets, message assembly and request/response pairing."""

from .assembly import AssembledMessage, AssemblyProblem, MessageAssembler
from .commands import (
    NO_DATASET,
    PENDING_STATUSES,
    CommandField,
    CommandSet,
    command_label,
    decode_command_set,
    encode_command_set,
    is_response,
    service_label,
)
from .dataset import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    EXPLICIT_VR_BIG_ENDIAN,
    EXPLICIT_VR_LITTLE_ENDIAN,
    IMPLICIT_VR_LITTLE_ENDIAN,
    DataSetInfo,
    decode_dataset,
    sniff_transfer_syntax,
)
from .exchanges import Exchange, ExchangeTracker

__all__ = [
    "DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN",
    "EXPLICIT_VR_BIG_ENDIAN",
    "EXPLICIT_VR_LITTLE_ENDIAN",
    "IMPLICIT_VR_LITTLE_ENDIAN",
    "NO_DATASET",
    "PENDING_STATUSES",
    "AssembledMessage",
    "AssemblyProblem",
    "CommandField",
    "CommandSet",
    "DataSetInfo",
    "Exchange",
    "ExchangeTracker",
    "MessageAssembler",
    "command_label",
    "decode_command_set",
    "decode_dataset",
    "encode_command_set",
    "is_response",
    "service_label",
    "sniff_transfer_syntax",
]
