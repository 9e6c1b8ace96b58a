"""An acceptor that never closes a connection: it accepts every A-ASSOCIATE-RQ, answers
C-ECHO and A-RELEASE-RQ, ignores A-ABORT, and keeps the socket open after the peer closed
(as a PACS whose stack hangs). Writes ``eof N`` to OUTFILE when connection N's peer closes.

Usage: stubborn.py PORT OUTFILE
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.factories import associate_ac, echo_rsp, release_rp

held: list[socket.socket] = []


def serve(conn: socket.socket, n: int, out: Path) -> None:
    buf = b""
    while True:
        data = conn.recv(65536)
        if not data:
            with open(out, "a") as f:
                f.write(f"eof {n}\n")
            held.append(conn)  # never closed
            return
        buf += data
        while len(buf) >= 6:
            kind, _, length = struct.unpack(">BBI", buf[:6])
            if len(buf) < 6 + length:
                break
            buf = buf[6 + length :]
            if kind == 1:
                conn.sendall(associate_ac())
            elif kind == 4:
                conn.sendall(echo_rsp())
            elif kind == 5:
                conn.sendall(release_rp())


def main() -> None:
    port, out = int(sys.argv[1]), Path(sys.argv[2])
    with socket.create_server(("127.0.0.1", port)) as server:
        n = 0
        while True:
            conn, _ = server.accept()
            n += 1
            threading.Thread(target=serve, args=(conn, n, out), daemon=True).start()
            time.sleep(0)


if __name__ == "__main__":
    main()
