"""A TCP peer that is not a good DICOM SCP, for the probe's bad-input tests.

Usage: rawpeer.py PORT MODE, MODE one of:
  silent   accept, read, never answer (until the client goes away)
  garbage  answer the first bytes with text that is not DICOM
  http     answer like a web server
  huge     answer with an A-ASSOCIATE-AC header declaring 4 GB, a few bytes, then nothing
  tlsalert answer like a TLS server that got a plain-text request (a TLS alert record)
  full     listen with a full backlog and never accept: new connections get no SYN+ACK
"""

from __future__ import annotations

import socket
import struct
import sys
import threading

ANSWERS = {
    "garbage": b"Welcome to the billing system!\r\nlogin: ",
    "http": b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    "huge": struct.pack(">BBI", 0x02, 0, 0xFFFFFFFF) + b"\x00\x01" + bytes(30),
    "tlsalert": bytes.fromhex("150303000202") + bytes.fromhex("0232"),
}


def serve(conn: socket.socket, mode: str) -> None:
    with conn:
        conn.settimeout(60)
        try:
            if not conn.recv(65536):
                return
            if mode in ANSWERS:
                conn.sendall(ANSWERS[mode])
            while conn.recv(65536):  # hold the connection until the client closes it
                pass
        except OSError:
            pass


def main() -> None:
    port, mode = int(sys.argv[1]), sys.argv[2]
    if mode not in ANSWERS and mode not in ("silent", "full"):
        sys.exit(f"unknown mode {mode}")
    if mode == "full":
        srv = socket.create_server(("127.0.0.1", port), backlog=0)
        # Fill the accept queue: Linux drops further SYNs (tcp_abort_on_overflow is 0).
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        print("full", len(held), flush=True)
        threading.Event().wait()
    srv = socket.create_server(("127.0.0.1", port))
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn, mode), daemon=True).start()


if __name__ == "__main__":
    main()
