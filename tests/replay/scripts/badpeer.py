"""A TCP peer that is not a good DICOM peer, for the replay's robustness tests.

Usage: python badpeer.py MODE HOST PORT

MODE (server: listens on HOST:PORT for one connection; client: connects to it):
  http      server; answers the first bytes with an HTTP error and closes
  silent    server; accepts and never sends anything (until 30 s)
  reset     server; reads the A-ASSOCIATE-RQ, then resets the connection
  huge      client; sends an A-ASSOCIATE-RQ, then a P-DATA-TF header declaring 4 GB and
            1 MB of zeros, then waits for the other side to close (30 s at most)
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.factories import associate_rq


def main(argv: list[str]) -> int:
    mode, host, port = argv[1], argv[2], int(argv[3])
    if mode == "huge":
        with socket.create_connection((host, port), timeout=30) as s:
            s.sendall(associate_rq(called="STORESCP", calling="ECHOSCU"))
            s.recv(65536)  # the A-ASSOCIATE-AC
            s.sendall(struct.pack(">BBI", 4, 0, 0xFFFFFFFF))
            try:
                for _ in range(16):
                    s.sendall(bytes(1 << 16))
                s.settimeout(30)
                while s.recv(65536):
                    pass
            except OSError:
                pass
        return 0
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(1)
        listener.settimeout(60)
        conn, _ = listener.accept()
        with conn:
            if mode == "http":
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            elif mode == "silent":
                time.sleep(30)
            elif mode == "reset":
                conn.recv(65536)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
