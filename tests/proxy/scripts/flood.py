"""Connections that send nothing: a crowd that holds places without ever associating.

Usage: flood.py HOST PORT COUNT SOURCES SECONDS. Opens COUNT connections to HOST:PORT, from
SOURCES local addresses in turn (127.0.0.1, 127.0.0.2 ...: all on the loopback), prints
``open N`` once they are connected, then watches them for SECONDS and prints ``closed K``:
how many the server closed or reset meanwhile.
"""

from __future__ import annotations

import selectors
import socket
import sys
import time


def main() -> None:
    host, port, count, sources, seconds = (
        sys.argv[1],
        int(sys.argv[2]),
        int(sys.argv[3]),
        int(sys.argv[4]),
        float(sys.argv[5]),
    )
    socks: list[socket.socket] = []
    for n in range(count):
        s = socket.socket()
        s.bind((f"127.0.0.{1 + n % sources}", 0))
        s.settimeout(10)
        s.connect((host, port))
        s.setblocking(False)
        socks.append(s)
    print(f"open {len(socks)}", flush=True)
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    closed = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and closed < count:
        for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                sel.unregister(sock)
                closed += 1
    print(f"closed {closed}", flush=True)


if __name__ == "__main__":
    main()
