"""dumpcap, Wireshark's capture engine: finding it, listing interfaces, its command line, and
what it says on stderr (errors turned into one clear message with the fix, drop counts).

pyshark finds the executable (it honours pyshark's ``config.ini`` and the usual places);
interfaces are listed with ``dumpcap -D -M`` rather than pyshark's
``get_all_tshark_interfaces_names``, which runs tshark (half a second of dissector loading
against 10 ms), returns names only and throws dumpcap's error message away.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass

from analyzer.errors import DicomtapError, ToolMissingError

__all__ = [
    "CaptureError",
    "DumpcapStats",
    "Interface",
    "capture_argv",
    "explain_failure",
    "find_dumpcap",
    "list_interfaces",
    "parse_stats",
]

INSTALL_HINT = (
    "install Wireshark's capture engine (Debian/Ubuntu: apt install wireshark-common, or "
    "tshark; Fedora/RHEL: dnf install wireshark-cli; macOS: brew install wireshark), or give "
    "its path with --dumpcap PATH"
)
PERMISSION_HINT = (
    "run dicomtap as root, or allow your user to capture: add it to the 'wireshark' group "
    "(sudo usermod -a -G wireshark $USER, then log in again; on Debian/Ubuntu first answer "
    "Yes to: sudo dpkg-reconfigure wireshark-common), or give dumpcap the capabilities "
    "(sudo setcap cap_net_raw,cap_net_admin=eip $(command -v dumpcap))"
)
_LIST_TIMEOUT = 20.0


class CaptureError(DicomtapError):
    """Capturing cannot start or went wrong: no permission, no such interface, bad filter."""


def find_dumpcap(path: str | None = None) -> str:
    """The dumpcap executable: ``path`` if given, else where pyshark finds it.

    Raises :class:`~analyzer.errors.ToolMissingError` (exit status 2) with the fix.
    """
    if path:
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
        why = "does not exist" if not os.path.exists(path) else "is not an executable file"
        raise ToolMissingError(f"dumpcap: {path} {why}; {INSTALL_HINT}")
    from pyshark.tshark.tshark import TSharkNotFoundException, get_process_path

    try:
        found = str(get_process_path(process_name="dumpcap"))
    except TSharkNotFoundException:
        found = ""
    if found and os.access(found, os.X_OK):
        return found
    raise ToolMissingError(f"dumpcap (Wireshark's capture engine) was not found: {INSTALL_HINT}")


@dataclass(frozen=True, slots=True)
class Interface:
    """A capture interface, as ``dumpcap -D -M`` lists it."""

    index: int
    name: str
    description: str
    addresses: tuple[str, ...]
    loopback: bool


def list_interfaces(dumpcap: str) -> list[Interface]:
    """The interfaces dumpcap can capture on. Raises :class:`CaptureError` if it cannot
    list them (the message says why and how to fix it)."""
    try:
        out = subprocess.run(
            [dumpcap, "-D", "-M"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_LIST_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise CaptureError(f"{dumpcap} -D did not answer within {_LIST_TIMEOUT:.0f} s") from None
    except OSError as exc:
        raise ToolMissingError(f"cannot run {dumpcap}: {exc.strerror or exc}") from None
    interfaces = [i for i in map(_interface, out.stdout.splitlines()) if i is not None]
    if out.returncode != 0 and not interfaces:
        raise explain_failure(out.stderr, None)
    return interfaces


def _interface(line: str) -> Interface | None:
    # "3. lo\t\tLoopback\t0\t127.0.0.1,::1\tloopback\t": index. name, vendor description,
    # friendly name, type, addresses, loopback or network (dumpcap's machine-readable form).
    number, _, rest = line.partition(". ")
    if not number.isdigit() or not rest:
        return None
    fields = rest.split("\t")
    fields += [""] * (6 - len(fields))
    name, vendor, friendly, _, addresses, kind = fields[:6]
    return Interface(
        index=int(number),
        name=name,
        description=friendly or vendor,
        addresses=tuple(a for a in addresses.split(",") if a),
        loopback=kind == "loopback",
    )


def interfaces_text(interfaces: list[Interface]) -> str:
    """``eth0, any, lo (Loopback)``: for an error message."""
    return ", ".join(f"{i.name} ({i.description})" if i.description else i.name for i in interfaces)


def capture_argv(
    dumpcap: str, interface: str, bpf: str, *, buffer_mb: int, snaplen: int = 0
) -> list[str]:
    """dumpcap's command line: capture ``interface`` through ``bpf``, pcapng on stdout.

    ``-q``: no packet counts on stderr while capturing (the totals still come at the end).
    """
    argv = [dumpcap, "-i", interface, "-f", bpf, "-w", "-", "-n", "-q", "-B", str(buffer_mb)]
    if snaplen:
        argv += ["-s", str(snaplen)]
    return argv


@dataclass(frozen=True, slots=True)
class DumpcapStats:
    """The counts dumpcap prints when it stops, for one interface."""

    interface: str
    received: int
    dropped: int
    """All drops, the sum of the four below."""
    kernel: int
    """pcap: dropped by the kernel, its capture buffer full (dumpcap did not read fast enough)."""
    dumpcap: int
    """Dropped by dumpcap itself."""
    flushed: int
    """Dropped when the capture buffer was flushed at the end."""
    interface_drops: int
    """ps_ifdrop: dropped by the interface or its driver."""


_STATS = re.compile(
    r"Packets received/dropped on interface '(?P<iface>.*)': (?P<received>\d+)/(?P<dropped>\d+)"
    r"(?: \(pcap:(?P<pcap>\d+)/dumpcap:(?P<dumpcap>\d+)/flushed:(?P<flushed>\d+)"
    r"(?:/ps_ifdrop:(?P<ifdrop>\d+))?\))?"
)


def parse_stats(line: str) -> DumpcapStats | None:
    """The drop counts of dumpcap's last stderr line, e.g. ``Packets received/dropped on
    interface 'lo': 10/0 (pcap:0/dumpcap:0/flushed:0/ps_ifdrop:0) (100.0%)``."""
    m = _STATS.search(line)
    if m is None:
        return None

    def n(name: str) -> int:
        value = m.group(name)
        return int(value) if value else 0

    kernel = n("pcap") if m.group("pcap") else n("dropped")
    return DumpcapStats(
        interface=m.group("iface"),
        received=n("received"),
        dropped=n("dropped"),
        kernel=kernel,
        dumpcap=n("dumpcap"),
        flushed=n("flushed"),
        interface_drops=n("ifdrop"),
    )


def explain_failure(
    stderr: str, interface: str | None, dumpcap: str | None = None, bpf: str | None = None
) -> CaptureError:
    """dumpcap's error output as one clear message with the fix."""
    lines = [ln.strip() for ln in stderr.replace("\r", "\n").splitlines() if ln.strip()]
    text = " ".join(lines)
    where = f" on {interface}" if interface else ""
    if "permission" in text.lower() or "Operation not permitted" in text:
        return CaptureError(f"no permission to capture{where}: {PERMISSION_HINT}")
    if (
        "no device named" in text.lower()
        or "No such device" in text
        or "There is no interface" in text
    ):
        known = ""
        if dumpcap is not None:
            try:
                known = f"; available interfaces: {interfaces_text(list_interfaces(dumpcap))}"
            except DicomtapError:
                known = "; see 'dicomtap interfaces'"
        return CaptureError(f"no capture interface named {interface!r}{known}")
    if "Invalid capture filter" in text:
        reason = ""
        for ln in lines:
            if "isn't a valid capture filter" in ln:
                reason = ln.split("(", 1)[-1].rstrip(").")
        shown = f" {bpf!r}" if bpf else ""
        return CaptureError(
            f"invalid capture filter{shown}{': ' + reason if reason else ''} "
            "(libpcap filter syntax, e.g. 'tcp port 104 or tcp port 11112')"
        )
    messages = [
        ln.removeprefix("dumpcap: ")
        for ln in lines
        if not ln.startswith(("Capturing on", "File:", "Packets"))
    ]
    detail = messages[0] if messages else "it exited without a message"
    return CaptureError(f"dumpcap could not capture{where}: {detail}")
