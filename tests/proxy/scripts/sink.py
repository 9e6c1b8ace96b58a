"""A raw TCP sink: accepts connections on a port and saves what each sends, byte for byte.

Usage: sink.py PORT OUTDIR. Connection n is saved as OUTDIR/n.bin once the peer closes.
"""

from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path


def serve(conn: socket.socket, path: Path) -> None:
    with conn, open(path.with_suffix(".part"), "wb") as f:
        conn.settimeout(60)
        try:
            while data := conn.recv(1 << 16):
                f.write(data)
        except OSError:
            pass
    path.with_suffix(".part").rename(path)


def main() -> None:
    port, out = int(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    with socket.create_server(("127.0.0.1", port)) as server:
        n = 0
        while True:
            conn, _ = server.accept()
            n += 1
            threading.Thread(target=serve, args=(conn, out / f"{n}.bin"), daemon=True).start()


if __name__ == "__main__":
    main()
