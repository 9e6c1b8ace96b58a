"""The installed version, and the generator name reports carry.

Looked up when first asked for: reading the package metadata costs more than the rest of
``dicomtap --help``.
"""

from __future__ import annotations

from functools import cache


@cache
def version() -> str:
    """dicomtap's version, as installed ("0.0.0" when run from a source tree)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("dicomtap")
    except PackageNotFoundError:
        return "0.0.0"


def generator() -> str:
    """What reports name as their generator: ``dicomtap VERSION``."""
    return f"dicomtap {version()}"
