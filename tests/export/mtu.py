"""Captures of real C-STOREs across a veth pair at MTU 1500, with reordering.

Two network namespaces joined by a veth pair (no segmentation offload: one packet per
1500-byte segment, as on Ethernet), DCMTK's ``storescp +B`` (bit-preserving: it writes each
data set exactly as received) in the server namespace, tcpdump on the server's end of the
pair, ``storescu`` in the client namespace. Everything is bounded in time and stopped by
PID; the namespaces are deleted on exit.

Reordering: ``tc netem`` is used when the kernel has it; this machine's kernel has no netem
qdisc, so :func:`reorder` also swaps neighbouring data segments in the capture file itself
(a seeded choice; timestamps stay in order), which is what a capture of reordered traffic
holds: segments whose sequence numbers go backwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.peers import Net, Process, can_use_netns, capture, dcmtk, missing, running

PORT = 11112
CLIENT_IP, SERVER_IP = "10.79.0.1", "10.79.0.2"
_counter = itertools.count()


class _Ns(Net):
    """A namespace that already exists (one end of the pair)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def __enter__(self) -> _Ns:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


@dataclass
class Pair:
    client: Net
    server: Net


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, timeout=20)


@contextlib.contextmanager
def veth_pair(reorder: bool = True) -> Iterator[Pair]:
    """Client and server namespaces joined at MTU 1500 (netem reordering on the client)."""
    if not can_use_netns() or shutil.which("tc") is None:
        missing("network namespaces and tc (root)")
    tag = f"{os.getpid()}x{next(_counter)}"
    names = (f"dtxc{tag}", f"dtxs{tag}")
    try:
        for ns in names:
            _ip("netns", "add", ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip(
            "link",
            "add",
            f"xc{tag}",
            "netns",
            names[0],
            "type",
            "veth",
            "peer",
            f"xs{tag}",
            "netns",
            names[1],
        )
        for ns, dev, addr in ((names[0], f"xc{tag}", CLIENT_IP), (names[1], f"xs{tag}", SERVER_IP)):
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            _ip(
                "-n",
                ns,
                "link",
                "set",
                dev,
                "mtu",
                "1500",
                "gso_max_size",
                "1500",
                "gso_max_segs",
                "1",
                "up",
            )
        if reorder:  # where the kernel has netem (not this one: see reorder())
            subprocess.run(
                [
                    "ip",
                    "netns",
                    "exec",
                    names[0],
                    "tc",
                    "qdisc",
                    "add",
                    "dev",
                    f"xc{tag}",
                    "root",
                    "netem",
                    "delay",
                    "2ms",
                    "reorder",
                    "10%",
                    "50%",
                ],
                capture_output=True,
                timeout=20,
            )
        client, server = _Ns(names[0]), _Ns(names[1])
        server.host = SERVER_IP
        yield Pair(client, server)
    finally:
        for ns in names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)


def iface(pair: Pair) -> str:
    assert pair.server.name is not None
    return "xs" + pair.server.name.removeprefix("dtxs")


def store(
    pair: Pair, tmp: Path, files: Sequence[Path], cap: Path, *scu: str, scp: Sequence[str] = ()
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """storescu FILES → storescp +B across the pair, captured into ``cap``; returns the
    folder where storescp wrote what it received, and storescu's result.

    A capture in which the kernel dropped packets (a loaded machine: tcpdump says so) holds
    less than what was sent, and the tests compare the two: the transfer is made again, at
    most three times, until tcpdump dropped nothing."""
    for _ in range(3):
        received = tmp / "received"
        shutil.rmtree(received, ignore_errors=True)
        received.mkdir()
        argv = [dcmtk("storescp"), "+B", "-od", str(received), *scp, str(PORT)]
        with (
            running(pair.server, argv, tmp / "storescp.log", PORT),
            capture(pair.server, cap, f"tcp port {PORT}", iface=iface(pair)),
        ):
            done = pair.client.run(
                [dcmtk("storescu"), *scu, SERVER_IP, str(PORT), *map(str, files)], timeout=300
            )
        if not _dropped(cap):
            break
    return received, done


def _dropped(cap: Path) -> int:
    """Packets the kernel dropped during the capture, as tcpdump reported at its end."""
    log = cap.with_suffix(".tcpdump.log")
    found = re.search(r"(\d+) packets? dropped by kernel", log.read_text(errors="replace"))
    return int(found.group(1)) if found else 0


def reorder(cap: Path, out: Path, every: int = 7, seed: int = 1) -> int:
    """Copy ``cap`` to ``out`` with about one data segment in ``every`` swapped with the
    next one of the same direction; returns how many were swapped."""
    import random

    import dpkt

    rng = random.Random(seed)
    with cap.open("rb") as f:
        reader = dpkt.pcap.Reader(f)
        linktype = reader.datalink()
        packets = list(reader)
    swapped = 0
    i = 0
    while i + 1 < len(packets):
        a, b = packets[i][1], packets[i + 1][1]
        if len(a) > 200 and len(b) > 200 and a[26:34] == b[26:34] and rng.randrange(every) == 0:
            packets[i], packets[i + 1] = (packets[i][0], b), (packets[i + 1][0], a)
            swapped += 1
            i += 2
        else:
            i += 1
    with out.open("wb") as f:
        writer = dpkt.pcap.Writer(f, snaplen=262144, linktype=linktype, nano=True)
        for ts, data in packets:
            writer.writepkt(data, ts)
    return swapped


def dataset_bytes(path: Path) -> bytes:
    """A Part-10 file's data set bytes (what follows the File Meta group)."""
    data = path.read_bytes()
    assert data[128:132] == b"DICM" and data[132:136] == b"\x02\x00\x00\x00"
    return data[144 + int.from_bytes(data[140:144], "little") :]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


__all__ = ["Pair", "Process", "dataset_bytes", "digest", "store", "veth_pair"]
