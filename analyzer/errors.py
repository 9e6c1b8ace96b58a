"""User-facing errors. The CLI maps each to one clear line and an exit code."""

from __future__ import annotations


class DicomtapError(Exception):
    """Base of every error a user can cause or fix (bad file, missing tool, busy port)."""

    exit_code = 2


class InputError(DicomtapError):
    """An input file is missing, unreadable, or not a capture."""


class ToolMissingError(DicomtapError):
    """An external program (dumpcap, tshark) is not installed or not allowed to run."""
