"""Hostile clients for the proxy soak, in one process: SLOWLORIS connections at a time that
send an A-ASSOCIATE-RQ one byte a second (each reconnects once the proxy gives up on it), and
every KILL_EVERY seconds a client that associates, sends half a PDU and vanishes (its socket
closed or reset as the kernel does when a process is killed).

Usage: faults.py HOST PORT SECONDS SLOWLORIS KILL_EVERY. Prints, at the end, one line per
kind: ``slowloris N`` (connections the proxy ended) and ``vanished N``.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.factories import associate_rq, echo_rq

counts = {"slowloris": 0, "vanished": 0}
lock = threading.Lock()


def slowloris(host: str, port: int, deadline: float) -> None:
    rq = associate_rq(calling="SLOWLORIS", called="ANY-SCP")
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=5) as sock:
                sock.setblocking(False)
                for byte in rq:
                    if time.monotonic() >= deadline:
                        return
                    sock.send(bytes((byte,)))
                    time.sleep(1)
                    try:
                        if not sock.recv(1):
                            break  # the proxy closed it
                    except BlockingIOError:
                        pass
        except OSError:
            pass  # reset by the proxy
        with lock:
            counts["slowloris"] += 1


def vanish(host: str, port: int, n: int) -> None:
    """Associate, send half a C-ECHO-RQ PDU, then go as a killed process goes."""
    try:
        sock = socket.create_connection((host, port), timeout=30)
        sock.sendall(associate_rq(calling="VANISHING", called="ANY-SCP"))
        head = sock.recv(6, socket.MSG_WAITALL)
        if len(head) == 6:
            sock.recv(struct.unpack(">BBI", head)[2], socket.MSG_WAITALL)
        pdu = echo_rq()
        sock.sendall(pdu[: len(pdu) // 2])
        time.sleep(0.2)
        if n % 2:  # unread data, or SO_LINGER 0: the kernel resets
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        return
    with lock:
        counts["vanished"] += 1


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    seconds, lorises, every = float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(target=slowloris, args=(host, port, deadline), daemon=True)
        for _ in range(lorises)
    ]
    for t in threads:
        t.start()
    n = 0
    while time.monotonic() < deadline:
        n += 1
        threading.Thread(target=vanish, args=(host, port, n), daemon=True).start()
        time.sleep(every)
    for t in threads:
        t.join(30)
    for kind, count in counts.items():
        print(kind, count, flush=True)


if __name__ == "__main__":
    main()
