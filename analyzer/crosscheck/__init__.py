"""``dicomtap crosscheck``: dicomtap's records against Wireshark's DICOM dissector.

:func:`check_capture` analyses a capture as ``dicomtap analyze`` does, runs tshark (through
pyshark) on the same file with DICOM decoded on the ports dicomtap found, and lines up the
two views per association (:mod:`.compare`): agreements, disagreements, and where tshark
cannot follow (lost bytes, a capture that starts mid-association, a PDU the capture ends
inside, a PDU type tshark does not decode) named with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from analyzer.pipeline import analyze_files
from analyzer.store import Store

from .compare import compare
from .records import (
    AssociationCheck,
    CaptureCheck,
    Difference,
    Reason,
    Tally,
    Unfollowed,
)
from .tshark import INSTALL_HINT, Tshark, TsharkError, find_tshark

__all__ = [
    "INSTALL_HINT",
    "AssociationCheck",
    "CaptureCheck",
    "Difference",
    "Reason",
    "Tally",
    "Tshark",
    "TsharkError",
    "Unfollowed",
    "check_capture",
    "default_timeout",
    "find_tshark",
]


def default_timeout(path: str | os.PathLike[str]) -> float:
    """How long tshark may take to read a capture: 2 minutes, and 10 s per MB (tshark
    needed 755 s of its own for a 1.2 GB capture of MTU-sized segments; a crafted capture
    of 0.8 MB can keep it busy for hours)."""
    try:
        size = os.path.getsize(path)
    except OSError:
        size = 0
    return 120.0 + 10.0 * size / 1e6


def check_capture(
    path: str | os.PathLike[str],
    tshark: Tshark,
    *,
    ports: Iterable[int] = (),
    reorder: bool | None = None,
    timeout: float | None = None,
) -> CaptureCheck:
    """Cross-check one capture file.

    ``ports`` are further ports to treat (and have tshark decode) as DICOM. ``reorder``
    turns tshark's reassembly of out-of-order segments on or off (off is Wireshark's
    default); None chooses: on, unless the capture lost bytes, since with it on tshark
    waits for the lost bytes and follows nothing more on that side. ``timeout`` bounds
    tshark's reads in seconds (None: :func:`default_timeout`; 0: no limit). Raises
    :class:`~analyzer.errors.InputError` for a file that is not a capture, and
    :class:`TsharkError` when tshark cannot read it.
    """
    path = Path(path)
    extra = tuple(ports)
    store = Store(keep_pdus=True)
    analyze_files([path], store, ports=extra)
    found = {
        a.server.port
        for a in store.associations()
        if a.requestor_pdus.total or a.acceptor_pdus.total
    }
    decode = tuple(sorted(found | set(extra)))
    if reorder is None:
        reorder = not any(a.gaps for a in store.associations())
    check = CaptureCheck(
        path=str(path),
        tshark_version=tshark.version,
        ports=decode,
        tshark_options=tuple(tshark.options(decode, reorder)),
        reorder=reorder,
    )
    check.notes.extend(store.source.truncated)
    # With no port to decode, tshark's own heuristic still gets its say.
    if timeout is None:
        timeout = default_timeout(path)
    view = tshark.read(path, decode, reorder=reorder, timeout=timeout or None)
    check.notes.extend(view.notes)
    check.associations = compare(store, view, reorder=reorder)
    return check
