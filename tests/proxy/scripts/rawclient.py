"""Scripted DICOM clients for the proxy's fault and shutdown tests.

Usage: rawclient.py MODE HOST PORT [ARGS]. Modes:

* ``silent``: connect and send nothing; prints ``closed`` when the proxy closes.
* ``garbage FILE``: send FILE's bytes, half-close, read until EOF (or a reset).
* ``opening FILE``: send FILE's bytes, half-close; prints every PDU received, then ``closed``.
* ``bigrq SECONDS``: an A-ASSOCIATE-RQ header declaring 0xFFFFFFFF bytes, then zeros for up
  to SECONDS (or until the proxy stops reading); prints every PDU received and
  ``sent N``.
* ``abortclose``: associate, send an A-ABORT and close; prints ``aborted``.
* ``echoes N``: associate, N C-ECHOs one after the other, release; prints ``echoed N``
  and ``released``.
* ``slowloris SECONDS``: an A-ASSOCIATE-RQ one byte every SECONDS, until the proxy closes;
  prints ``closed after N bytes``.
* ``bigpdu FILE``: A-ASSOCIATE-RQ, a P-DATA-TF header declaring 0xFFFFFFFF bytes, 64 KiB of
  data; the bytes sent are saved in FILE; then close.
* ``timedecho SECONDS``: associate, wait SECONDS, one C-ECHO (TCP_NODELAY) and print its
  round trip (``rtt MS``), wait SECONDS again, release; prints ``released``.
* ``killmid``: associate, send half a P-DATA-TF, then SIGKILL itself.
* ``hold SECONDS``: associate, wait, then C-ECHO and release; prints every PDU type received
  (``got 2``, ``got 7 source 2 reason 0``) and ``released`` or ``closed``.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.factories import abort, associate_rq, echo_rq, release_rq


def read_pdu(sock: socket.socket) -> tuple[int, bytes] | None:
    head = b""
    while len(head) < 6:
        more = sock.recv(6 - len(head))
        if not more:
            return None
        head += more
    pdu_type, _, length = struct.unpack(">BBI", head)
    body = b""
    while len(body) < length:
        more = sock.recv(length - len(body))
        if not more:
            return None
        body += more
    return pdu_type, body


def report(pdu: tuple[int, bytes] | None) -> int | None:
    if pdu is None:
        print("closed", flush=True)
        return None
    kind, body = pdu
    if kind == 7:
        print(f"got 7 source {body[2]} reason {body[3]}", flush=True)
    elif kind == 3:
        print(f"got 3 result {body[1]} source {body[2]} reason {body[3]}", flush=True)
    else:
        print(f"got {kind}", flush=True)
    return kind


def main() -> None:
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sock = socket.create_connection((host, port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # one PDU, one segment, at once
    if mode == "silent":  # connect, send nothing, wait for the proxy to give up
        sock.settimeout(30)
        data = sock.recv(65536)
        print("closed" if not data else f"got {data[0]}", flush=True)
        return
    if mode == "garbage":
        try:
            sock.sendall(Path(sys.argv[4]).read_bytes())
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(65536):
                pass
        except OSError:  # reset
            pass
        print("closed", flush=True)
        return
    if mode == "opening":
        try:
            sock.sendall(Path(sys.argv[4]).read_bytes())
            sock.shutdown(socket.SHUT_WR)
            while report(read_pdu(sock)) is not None:
                pass
        except OSError:
            print("closed", flush=True)
        return
    if mode == "bigrq":
        sent = 0
        deadline = time.monotonic() + float(sys.argv[4])
        block = bytes(1 << 16)
        sock.settimeout(1)
        try:
            sock.sendall(b"\x01\x00\xff\xff\xff\xff\x00\x01\x00\x00")
            while time.monotonic() < deadline:
                sent += sock.send(block)
        except OSError:
            pass
        sock.settimeout(10)
        try:
            while report(read_pdu(sock)) is not None:
                pass
        except OSError:
            print("closed", flush=True)
        print(f"sent {sent}", flush=True)
        return
    calling = os.environ.get("CALLING", "RAWCLIENT")
    rq = associate_rq(calling=calling, called=os.environ.get("CALLED", "ANY-SCP"))
    if mode == "slowloris":
        sent = 0
        try:
            for byte in rq:
                sock.sendall(bytes((byte,)))
                sent += 1
                time.sleep(float(sys.argv[4]))
                sock.settimeout(0)
                try:
                    if not sock.recv(1):
                        break
                except BlockingIOError:
                    pass
                finally:
                    sock.settimeout(30)
        except OSError:
            pass
        print(f"closed after {sent} bytes", flush=True)
        return
    if mode == "bigpdu":
        data = rq + struct.pack(">BBI", 4, 0, 0xFFFFFFFF) + bytes(range(256)) * 256
        Path(sys.argv[4]).write_bytes(data)
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(10)
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass
        print("closed", flush=True)
        return
    sock.sendall(rq)
    if report(read_pdu(sock)) != 2:
        return
    if mode == "abortclose":
        sock.sendall(abort())
        sock.close()
        print("aborted", flush=True)
        return
    if mode == "echoes":
        count = int(sys.argv[4])
        for n in range(1, count + 1):
            sock.sendall(echo_rq(message_id=n & 0xFFFF))
            if read_pdu(sock) is None:
                print(f"closed after {n - 1}", flush=True)
                return
        print(f"echoed {count}", flush=True)
        sock.sendall(release_rq())
        if report(read_pdu(sock)) == 6:
            print("released", flush=True)
        return
    if mode == "timedecho":
        pause = float(sys.argv[4])
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        time.sleep(pause)
        start = time.perf_counter()
        sock.sendall(echo_rq())
        if read_pdu(sock) is None:
            print("closed", flush=True)
            return
        print(f"rtt {(time.perf_counter() - start) * 1000:.1f}", flush=True)
        time.sleep(pause)
        sock.sendall(release_rq())
        if report(read_pdu(sock)) == 6:
            print("released", flush=True)
        return
    if mode == "killmid":
        pdu = echo_rq()
        sock.sendall(pdu[: len(pdu) // 2])
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "hold":
        deadline = time.monotonic() + float(sys.argv[4])
        sock.settimeout(0.1)
        while time.monotonic() < deadline:
            try:
                data = sock.recv(6, socket.MSG_PEEK)
            except TimeoutError:
                continue
            if not data or data[0] == 7:
                sock.settimeout(10)
                report(read_pdu(sock))
                return
        sock.settimeout(30)
        sock.sendall(echo_rq())
        report(read_pdu(sock))
        sock.sendall(release_rq())
        if report(read_pdu(sock)) == 6:
            print("released", flush=True)


if __name__ == "__main__":
    main()
