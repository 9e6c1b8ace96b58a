"""The DICOM health check and capability scan (``dicomtap probe``): an active tool.

pynetdicom speaks DICOM for it, over a connection the probe owns (:mod:`.wire`,
:mod:`.client`), so every byte it sends and receives goes through the same observer, model
and findings as a capture, and can be written as pcapng with the proxy's writer.

Modules: :mod:`.options` (what to do), :mod:`.catalog` (SOP classes and transfer syntaxes
by name, presets, scan lists), :mod:`.association` (one association), :mod:`.services`
(C-ECHO, C-FIND, C-STORE, storage commitment), :mod:`.scan` (the capability matrix),
:mod:`.baseline` (saved scans and drift), :mod:`.runner` (one probe), :mod:`.result`
(monitoring state and its reasons), :mod:`.text`, :mod:`.jsonout`, :mod:`.openmetrics`
(outputs), :mod:`.watch` and :mod:`.monitor` (repeating, printing changes).
"""

from .monitor import OutputFormat, run
from .options import FindLevel, FindSpec, Health, Identity, IdentityType, ProbeOptions
from .result import ProbeResult
from .runner import ProbeError, Session, probe

__all__ = [
    "FindLevel",
    "FindSpec",
    "Health",
    "Identity",
    "IdentityType",
    "OutputFormat",
    "ProbeError",
    "ProbeOptions",
    "ProbeResult",
    "Session",
    "probe",
    "run",
]
