"""The dumpcap subprocess of a live capture: started, watched, stopped by its PID.

dumpcap writes pcapng on stdout, a pipe enlarged to absorb bursts; its stderr is drained by
a thread all along (so that it never blocks on it) and kept for its error messages and its
final drop counts. It runs in a session of its own, so that a terminal's Ctrl-C reaches
dicomtap only, which then stops dumpcap itself (SIGINT: dumpcap writes what it captured and
its Interface Statistics Block, then exits); and with a parent-death signal, so that it
does not outlive a dicomtap that was killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Sequence
from typing import BinaryIO, cast

from .dumpcap import CaptureError, explain_failure

__all__ = ["DumpcapProcess", "pending_bytes"]

PIPE_SIZE = 16 << 20
"""Pipe capacity asked for: room for bursts while the analysis catches up (an unprivileged
user gets at most /proc/sys/fs/pipe-max-size, 1 MiB by default)."""

_F_SETPIPE_SZ = 1031  # Linux fcntl commands
_F_GETPIPE_SZ = 1032
_PR_SET_PDEATHSIG = 1
_INT = struct.Struct("i")
_STDERR_LINES = 200

_prctl: Callable[..., int] = (
    ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else lambda *a: 0
)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    # dumpcap gets SIGTERM when dicomtap dies (killed, crashed) instead of capturing on until
    # its next write to the orphaned pipe fails, which on an idle link may be never. Only a
    # prebound C function runs here: nothing that could wait for a lock another thread held.
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def pending_bytes(fd: int) -> int:
    """Bytes waiting to be read in a pipe."""
    try:
        return int(_INT.unpack(fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])
    except OSError:
        return 0


class DumpcapProcess:
    """dumpcap started with ``argv`` (pcapng on stdout)."""

    def __init__(self, argv: Sequence[str], interface: str, bpf: str) -> None:
        self.argv = list(argv)
        self.interface = interface
        self.bpf = bpf
        self.stderr_lines: list[str] = []
        """dumpcap's stderr, line by line (the last lines only)."""
        self.stop_sent_at: float | None = None
        """When SIGINT was sent (monotonic clock), if it was."""
        try:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                bufsize=0,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            raise CaptureError(f"cannot run {self.argv[0]}: {exc.strerror or exc}") from None
        assert self.popen.stdout is not None and self.popen.stderr is not None
        self.stdout = cast(BinaryIO, self.popen.stdout)
        self.fd = self.stdout.fileno()
        for size in (PIPE_SIZE, 1 << 20):
            with contextlib.suppress(OSError):
                fcntl.fcntl(self.fd, _F_SETPIPE_SZ, size)
                break
        self.pipe_size = 0
        with contextlib.suppress(OSError):
            self.pipe_size = fcntl.fcntl(self.fd, _F_GETPIPE_SZ)
        self._stderr = threading.Thread(
            target=self._drain_stderr,
            args=(self.popen.stderr,),
            name="dumpcap-stderr",
            daemon=True,
        )
        self._stderr.start()

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def wait_capturing(self, timeout: float) -> None:
        """Return once dumpcap captures: the first bytes of its pcapng header are in the pipe
        (it writes them only after the interface is open and the filter set). Raises
        :class:`CaptureError` with dumpcap's reason, made clear, if it ends instead."""
        deadline = time.monotonic() + timeout
        while True:
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                if pending_bytes(self.fd) > 0:
                    return
                break  # readable and empty: the end of the stream, before any byte
            if time.monotonic() > deadline:
                self.kill()
                raise CaptureError(
                    f"dumpcap did not start capturing on {self.interface} within "
                    f"{timeout:.0f} s: {self.stderr_text() or 'no message'}"
                )
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        self.kill()
        self._stderr.join(5)
        raise explain_failure(self.stderr_text(), self.interface, self.argv[0], self.bpf)

    def stop(self) -> None:
        """Ask dumpcap to stop (SIGINT): it writes what it has and exits. Safe from any
        thread and from a signal handler; again is harmless."""
        if self.stop_sent_at is None and self.popen.returncode is None:
            self.stop_sent_at = time.monotonic()
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, signal.SIGINT)

    def kill(self) -> None:
        """SIGKILL, if it still runs, and reap it."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(5)

    def wait(self, timeout: float) -> None:
        """Wait for dumpcap to exit (killed after ``timeout`` s) and for its last words."""
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._stderr.join(5)
        self.stdout.close()

    def stderr_text(self) -> str:
        return "\n".join(self.stderr_lines)

    def _drain_stderr(self, stream: BinaryIO) -> None:
        pending = b""
        while True:
            chunk = stream.read(4096)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.replace(b"\r", b"\n").split(b"\n")
            self.stderr_lines.extend(
                line.decode("utf-8", "replace") for line in lines if line.strip()
            )
            del self.stderr_lines[:-_STDERR_LINES]
        if pending.strip():
            self.stderr_lines.append(pending.decode("utf-8", "replace"))
        stream.close()
