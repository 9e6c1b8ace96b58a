"""Benchmark: peak memory of ``dicomtap analyze`` against the number of connections, of
violations and the size of a capture.

Makes (in --work, default /tmp/dicomtap-bench, reused when present)

    syn100k       100,000 connections that send one SYN each to port 104 (a port scan, a
                  modality retrying a dead PACS), all at once;
    odd100k       one C-STORE whose data set comes as 100,000 PDVs of one byte (an odd
                  length: 100,000 violations, bounded per association);
    mtu1500xN     the 1 GB MTU-1500 CT capture of ``analyze_bench.py`` (made first with it)
                  repeated N times, each copy later in time than the one before (--repeat:
                  10 makes a 10 GB capture of ~21,000 C-STOREs, its connections reused as a
                  modality reuses its ports),

then runs ``dicomtap analyze --format json --no-progress CAPTURE > /dev/null`` under GNU
``/usr/bin/time -v`` and prints wall time, CPU time (user + system: what to compare on a
shared machine) and peak RSS per capture. --tree runs another
checkout's sources instead (e.g. a ``git archive main`` unpacked), for a before/after
table. This is a benchmark, not a test: it reports figures.

Usage::

    python bench/memory_bench.py [--only syn100k,odd100k,mtu1500] [--repeat 10] [--tree DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import struct
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.factories import associate_ac, associate_rq, command, p_data, release_rp, release_rq
from tests.pcapgen import SYN, Conversation, frame

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
IMPLICIT = "1.2.840.10008.1.2"

_RUN = "import sys; sys.path.insert(0, sys.argv.pop(1)); from analyzer.cli import main; main()"


def write_frames(path: Path, frames: list[tuple[float, bytes]]) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for ts, data in frames:
            sec = int(ts)
            f.write(struct.pack("<IIII", sec, round((ts - sec) * 1e6), len(data), len(data)))
            f.write(data)


def syn_flows(path: Path, n: int = 100_000) -> None:
    """``n`` SYNs from as many client ports and addresses to port 104, 10 µs apart."""
    t0 = 1_700_000_000.0
    frames = [
        (
            t0 + i * 1e-5,
            frame(f"10.1.{(i >> 8) & 255}.{i & 255}", 1024 + i % 60000, "10.0.0.2", 104, i, 0, SYN),
        )
        for i in range(n)
    ]
    write_frames(path, frames)


def odd_pdvs(path: Path, n: int = 100_000) -> None:
    """An association whose one C-STORE-RQ data set is ``n`` one-byte PDVs in one PDU."""
    c = Conversation(("10.0.0.1", 40000), ("10.0.0.2", 104)).handshake()
    c.send(True, associate_rq(((1, CT_IMAGE_STORAGE, (IMPLICIT,)),)))
    c.send(False, associate_ac(((1, 0, IMPLICIT),)))
    rq = command(
        command_field=0x0001,
        message_id=1,
        affected_sop_class_uid=CT_IMAGE_STORAGE,
        affected_sop_instance_uid="1.2.3.4.5",
        priority=0,
    )
    c.send(True, p_data(1, rq, is_command=True))
    pdv = struct.pack(">IBB", 3, 1, 0) + b"\x00"
    last = struct.pack(">IBB", 3, 1, 2) + b"\x00"
    body = pdv * (n - 1) + last
    c.send(True, struct.pack(">BBI", 4, 0, len(body)) + body, mss=60000)
    c.send(True, release_rq()).send(False, release_rp()).close()
    write_frames(path, c.frames)


def repeat(source: Path, out: Path, times: int, server_port: int = 11112) -> None:
    """``source`` (a little-endian microsecond classic pcap of Ethernet/IPv4/TCP, as
    ``analyze_bench.py`` writes) ``times`` over, each copy shifted past the end of the one
    before by a whole number of seconds and its client ports moved by the copy's number,
    so that each copy holds connections of its own (TCP checksums kept right)."""
    with open(source, "rb") as f:
        header = f.read(24)
        first = last = None
        while rec := f.read(16):
            sec, _, caplen, _ = struct.unpack("<IIII", rec)
            first = sec if first is None else first
            last = sec
            f.seek(caplen, os.SEEK_CUR)
    assert first is not None and last is not None
    span = last - first + 10
    tmp = out.with_suffix(".part")
    with open(tmp, "wb") as w:
        w.write(header)
        for k in range(times):
            shift = k * span
            with open(source, "rb", buffering=1 << 20) as f:
                f.seek(24)
                while rec := f.read(16):
                    sec, usec, caplen, orig = struct.unpack("<IIII", rec)
                    w.write(struct.pack("<IIII", sec + shift, usec, caplen, orig))
                    w.write(_moved(f.read(caplen), k, server_port) if k else f.read(caplen))
    tmp.rename(out)


def _moved(packet: bytes, by: int, server_port: int) -> bytes:
    """An Ethernet/IPv4/TCP packet with its client port moved ``by`` (RFC 1624 checksum
    update); other packets unchanged."""
    if len(packet) < 34 or packet[12:14] != b"\x08\x00" or packet[23] != 6:
        return packet
    tcp = 14 + (packet[14] & 0x0F) * 4
    if len(packet) < tcp + 18:
        return packet
    sport, dport = struct.unpack_from("!HH", packet, tcp)
    at = tcp if dport == server_port else tcp + 2
    old = sport if dport == server_port else dport
    new = 1024 + (old - 1024 + by) % (65536 - 1024)
    (checksum,) = struct.unpack_from("!H", packet, tcp + 16)
    total = (~checksum & 0xFFFF) + (~old & 0xFFFF) + new
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    data = bytearray(packet)
    struct.pack_into("!H", data, at, new)
    struct.pack_into("!H", data, tcp + 16, ~total & 0xFFFF)
    return bytes(data)


def measure(argv: list[str]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in KiB) of ``argv``, output to /dev/null."""
    start = time.monotonic()
    run = subprocess.run(
        ["/usr/bin/time", "-v", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    wall = time.monotonic() - start
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr)
    if run.returncode not in (0, 1) or found is None:
        sys.exit(f"{argv} failed ({run.returncode}): {run.stderr[-2000:]}")
    cpu = sum(
        float(m.group(1))
        for m in re.finditer(r"(?:User|System) time \(seconds\): ([\d.]+)", run.stderr)
    )
    return wall, cpu, int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/dicomtap-bench"))
    parser.add_argument("--only", default="syn100k,odd100k,mtu1500")
    parser.add_argument("--repeat", type=int, default=1, help="copies of the 1 GB capture")
    parser.add_argument("--size-mb", type=int, default=1024, help="analyze_bench.py's size")
    parser.add_argument("--tree", type=Path, help="run this checkout's sources instead")
    parser.add_argument("--keep", action="store_true", help="keep a repeated capture")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    captures: dict[str, Path] = {}
    made: list[Path] = []
    for name in args.only.split(","):
        if name == "syn100k":
            path = args.work / "syn100k.pcap"
            if not path.exists():
                syn_flows(path)
        elif name == "odd100k":
            path = args.work / "odd100k.pcap"
            if not path.exists():
                odd_pdvs(path)
        elif name == "mtu1500":
            path = args.work / f"mtu1500_{args.size_mb}MiB.pcap"
            if not path.exists():
                sys.exit(f"{path} missing: make it with bench/analyze_bench.py --only mtu1500")
            if args.repeat > 1:
                source = path
                path = args.work / f"mtu1500_{args.size_mb}MiBx{args.repeat}.pcap"
                if not path.exists():
                    print(f"making {path} ...", flush=True)
                    repeat(source, path, args.repeat)
                    made.append(path)
                name = f"mtu1500x{args.repeat}"
        else:
            sys.exit(f"unknown capture {name}")
        captures[name] = path
    tool = [sys.executable, "-c", _RUN, str(args.tree or Path(__file__).resolve().parents[1])]
    try:
        for name, path in captures.items():
            argv = [*tool, "analyze", "--format", "json", "--no-progress", str(path)]
            wall, cpu, rss = measure(argv)
            size = path.stat().st_size / 1e6
            print(
                f"{name:<14} {size:>9.0f} MB  {wall:>7.1f} s wall  {cpu:>7.1f} s CPU  "
                f"peak RSS {rss / 1024:>6.1f} MiB  (load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    finally:
        if not args.keep:
            for path in made:
                path.unlink()


if __name__ == "__main__":
    main()
