"""An acceptor that never closes a connection: it accepts every A-ASSOCIATE-RQ (every proposed
context, with its first transfer syntax), answers C-ECHO and A-RELEASE-RQ, ignores A-ABORT,
and keeps the socket open after the peer closed (as a PACS whose stack hangs). Writes
``eof N`` to OUTFILE when connection N's peer closes. With ``stall``, it stops reading for
good once it has accepted the association (a peer that no longer reads).

Usage: stubborn.py PORT OUTFILE [stall]
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from dissectors.pdu import AssociateRq, decode_control_pdu
from tests.factories import associate_ac, echo_rsp, release_rp


def accept_all(body: bytes) -> bytes:
    """An A-ASSOCIATE-AC accepting every proposed context with its first transfer syntax."""
    rq, _ = decode_control_pdu(1, body)
    assert isinstance(rq, AssociateRq)
    contexts = [(c.context_id, 0, c.transfer_syntaxes[0]) for c in rq.presentation_contexts]
    return associate_ac(contexts)


held: list[socket.socket] = []


def serve(conn: socket.socket, n: int, out: Path, stall: bool) -> None:
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
            body, buf = buf[6 : 6 + length], buf[6 + length :]
            if kind == 1:
                conn.sendall(accept_all(body))
                if stall:
                    held.append(conn)
                    return
            elif kind == 4:
                conn.sendall(echo_rsp())
            elif kind == 5:
                conn.sendall(release_rp())


def main() -> None:
    port, out = int(sys.argv[1]), Path(sys.argv[2])
    stall = sys.argv[3:] == ["stall"]
    with socket.create_server(("127.0.0.1", port)) as server:
        n = 0
        while True:
            conn, _ = server.accept()
            n += 1
            threading.Thread(target=serve, args=(conn, n, out, stall), daemon=True).start()
            time.sleep(0)


if __name__ == "__main__":
    main()
