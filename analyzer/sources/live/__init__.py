"""Live capture from a network interface: dumpcap's pcapng stream through the same reader
and pipeline as ``dicomtap analyze`` (:mod:`.capture`), with its own capture-wide findings,
event log, capture files and monitoring of drops and lag."""

from .capture import CaptureError, LiveCapture, LiveOptions, LiveResult, run_live

__all__ = ["CaptureError", "LiveCapture", "LiveOptions", "LiveResult", "run_live"]
