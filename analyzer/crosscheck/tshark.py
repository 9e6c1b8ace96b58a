"""Wireshark's DICOM dissector on a capture, through pyshark (tshark is the engine).

pyshark finds tshark (its ``config.ini``, then ``PATH``), builds the command line (DICOM
decoded on the given ports with ``decode_as``, preferences with ``override_prefs``, a
display filter) and reads tshark's tree. The capture is read twice, with the same options:

1. **Framing**, every frame with a DICOM PDU: PDU types and lengths, each PDV's context ID,
   flags and length, the endpoints, and frames cut by the snap length or out of order.
   tshark's field output carries these in a few bytes a frame; pyshark reads only tree
   formats, so the command line pyshark builds is run with ``-T fields`` added.
2. **Contents**, through pyshark's JSON reader, of only the frames that carry a PDU other
   than P-DATA-TF or a DIMSE command set: a tree keeps each presentation context with its
   syntaxes and each command element with its value. Frames of data set fragments are left
   out: their tree holds every data set byte as hex (three bytes of JSON a byte), which makes
   one pass over all DICOM frames about twice as slow.

Both run at once (the framing read in a child process writing to a temporary file), under
a time limit: a crafted capture can keep tshark's dissector busy for hours, and tshark
reads SIGTERM only between packets, so both are killed (SIGKILL) when the time is up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from analyzer.errors import DicomtapError, ToolMissingError

from .records import FrameRow, PduContent
from .tree import field_options, frame_row, pdu_contents

__all__ = ["INSTALL_HINT", "Tshark", "TsharkError", "TsharkView", "find_tshark"]

INSTALL_HINT = (
    "install Wireshark's command-line tools (Debian/Ubuntu: apt install tshark; "
    "Fedora/RHEL: dnf install wireshark-cli; macOS: brew install wireshark) and make sure "
    "tshark is on PATH"
)

#: Frames read for their contents: a PDU other than P-DATA-TF, or a command set.
CONTENT_FILTER = (
    " or ".join(f"dicom.pdu.type == {t}" for t in (1, 2, 3, 5, 6, 7))
    + " or dicom.tag == 0x00000100"
)
#: Frames read for their framing: DICOM, and frames that explain where tshark cannot follow.
FRAMING_FILTER = "dicom or tcp.analysis.out_of_order or (tcp and frame.cap_len < frame.len)"

_CUT_SHORT = "cut short"


class TsharkError(DicomtapError):
    """tshark could not read a capture that dicomtap read."""


def find_tshark() -> str:
    """The tshark executable, where pyshark finds it. Raises
    :class:`~analyzer.errors.ToolMissingError` (exit status 2) with how to install it."""
    from pyshark.tshark.tshark import TSharkNotFoundException, get_process_path

    try:
        found = str(get_process_path())
    except TSharkNotFoundException:
        found = ""
    if found and os.path.isfile(found) and os.access(found, os.X_OK):
        return found
    raise ToolMissingError(
        f"tshark (Wireshark's dissector, which the cross-check runs) was not found: {INSTALL_HINT}"
    )


@dataclass(frozen=True, slots=True)
class TsharkView:
    """What tshark showed of one capture."""

    rows: dict[int, FrameRow]
    """Frame number -> framing, for frames with DICOM PDUs, cut or out-of-order segments."""
    contents: dict[int, tuple[PduContent, ...]]
    """Frame number -> PDU contents, for frames :data:`CONTENT_FILTER` selects."""
    notes: tuple[str, ...]


class Tshark:
    """tshark at ``executable`` (see :func:`find_tshark`), driven through pyshark."""

    def __init__(self, executable: str) -> None:
        from pyshark.tshark.tshark import get_tshark_version

        self.executable = executable
        try:
            version = get_tshark_version(executable)
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            raise ToolMissingError(f"cannot run {executable}: {exc}; {INSTALL_HINT}") from None
        self._version = version
        self.version = str(version)
        self.can_reorder = tuple(version.release) >= (3, 0)
        """tshark 3.0 and later can reassemble out-of-order segments."""

    def preferences(self, reorder: bool) -> dict[str, str]:
        """The preferences set for both reads (a user's own profile may change defaults)."""
        prefs = {
            "dicom.tag_tree": "TRUE",  # command elements as fields (dicom.tag, its value)
            "dicom.pdv_reassemble": "TRUE",
            "tcp.desegment_tcp_streams": "TRUE",
            "tcp.analyze_sequence_numbers": "TRUE",
        }
        if self.can_reorder:
            prefs["tcp.reassemble_out_of_order"] = "TRUE" if reorder else "FALSE"
        return prefs

    def options(self, ports: Iterable[int], reorder: bool) -> list[str]:
        """The options both reads share, as a person would type them."""
        argv: list[str] = []
        for port in sorted(set(ports)):
            argv += ["-d", f"tcp.port=={port},dicom"]
        for name, value in self.preferences(reorder).items():
            argv += ["-o", f"{name}:{value}"]
        return argv

    def _capture(
        self, path: Path, ports: Iterable[int], reorder: bool, display_filter: str, **kwargs: Any
    ) -> Any:
        import pyshark

        capture = pyshark.FileCapture(
            str(path),
            display_filter=display_filter,
            decode_as={f"tcp.port=={port}": "dicom" for port in sorted(set(ports))},
            override_prefs=self.preferences(reorder),
            tshark_path=self.executable,
            keep_packets=False,
            **kwargs,
        )
        # pyshark asks tshark for its version once per capture object, which costs as much
        # as starting tshark (about 0.7 s); it is the same executable, asked once already.
        if hasattr(capture, "_Capture__tshark_version"):
            capture._Capture__tshark_version = self._version
        return capture

    def read(
        self,
        path: Path,
        ports: Iterable[int],
        *,
        reorder: bool = True,
        timeout: float | None = None,
    ) -> TsharkView:
        """Both reads of ``path`` with DICOM decoded on ``ports``, stopped after ``timeout``
        seconds (None: no limit). Raises :class:`TsharkError` when tshark cannot read the
        capture or runs out of time (a capture cut short is read up to the cut, as dicomtap
        reads it)."""
        ports = tuple(ports)
        framing = self._capture(path, ports, reorder, FRAMING_FILTER)
        argv = [self.executable, "-n", *field_options(), *framing.get_parameters()]
        framing.close()
        contents_read = self._capture(
            path,
            ports,
            reorder,
            CONTENT_FILTER,
            use_json=True,
            # Only the frame (pyshark needs it) and DICOM trees: no TCP payload hex.
            custom_parameters=["-J", "frame dicom"],
        )
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            watchdog = _Watchdog(timeout, proc, contents_read)
            try:
                contents, crash = _contents(contents_read)
                proc.wait()
            finally:
                watchdog.cancel()
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            if watchdog.fired:
                raise TsharkError(
                    f"tshark did not finish reading {path} within {timeout:.0f} s (its DICOM "
                    "dissector can take very long on some crafted captures); "
                    "--tshark-timeout gives it longer"
                )
            problem = _problem(err)
            cut_short = problem is not None and _CUT_SHORT in problem
            if proc.returncode != 0 and not cut_short:
                raise TsharkError(f"tshark could not read {path}: {problem or 'no message'}")
            if crash is not None and not cut_short:
                raise TsharkError(f"tshark could not read {path}: {crash}")
            rows = _rows(out)
        notes = (f"tshark: {problem}",) if cut_short and problem else ()
        return TsharkView(rows=rows, contents=contents, notes=notes)


class _Watchdog:
    """Kills both tshark processes when ``seconds`` have passed. SIGKILL: tshark looks at
    SIGTERM only between packets, and a crafted packet can keep its dissector busy for
    hours."""

    def __init__(self, seconds: float | None, proc: subprocess.Popen[bytes], capture: Any) -> None:
        self.fired = False
        self._proc, self._capture = proc, capture
        self._timer: threading.Timer | None = None
        if seconds is not None:
            self._timer = threading.Timer(seconds, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        self.fired = True
        pids = [self._proc.pid]
        # pyshark's running tshark (an asyncio process, killed here by its PID).
        pids += [p.pid for p in list(self._capture._running_processes)]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


def _contents(capture: Any) -> tuple[dict[int, tuple[PduContent, ...]], str | None]:
    """Frame -> PDU contents through pyshark's JSON reader, and tshark's complaint if it
    failed."""
    from pyshark.capture.capture import TSharkCrashException

    contents: dict[int, tuple[PduContent, ...]] = {}
    crash: str | None = None
    try:
        for packet in capture:
            trees: list[object] = []
            for layer in packet.get_multiple_layers("dicom"):
                # pyshark keeps each layer's JSON object as it came (_all_fields); a
                # frame's further PDUs are its duplicate layers.
                trees.append(layer._all_fields)
                trees.extend(d._all_fields for d in layer.duplicate_layers)
            contents[int(packet.number)] = pdu_contents(trees)
    except TSharkCrashException as exc:
        crash = " ".join(str(exc).split())
    finally:
        try:
            capture.close()
        except TSharkCrashException as exc:
            crash = crash or " ".join(str(exc).split())
            # pyshark keeps a tshark that exited with an error as running, and would
            # raise again when the capture object is collected.
            capture._running_processes.clear()
    return contents, crash


def _problem(err: IO[bytes]) -> str | None:
    """tshark's last complaint on stderr (its root warning aside), on one line."""
    err.seek(0, os.SEEK_END)
    err.seek(max(0, err.tell() - (1 << 16)))  # the last lines say why it stopped
    lines = [
        " ".join(line.split())
        for line in err.read().decode("utf-8", "replace").splitlines()
        if line.strip() and not line.startswith("Running as user")
    ]
    return lines[-1].removeprefix("tshark: ") if lines else None


def _rows(out: IO[bytes]) -> dict[int, FrameRow]:
    out.seek(0)
    rows: dict[int, FrameRow] = {}
    for raw in out:
        row = frame_row(raw.decode("utf-8", "replace"))
        if row is not None:
            rows[row.frame] = row
    return rows
