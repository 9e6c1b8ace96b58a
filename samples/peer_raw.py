#!/usr/bin/env python3
"""Hand-made DICOM Upper Layer peer for dicomtap's failure samples.

Usage: python3 samples/peer_raw.py MODE HOST PORT [ARG...]

Real implementations refuse to break the protocol, so the few failure
samples that need a broken peer use this one: plain sockets and struct, every
PDU written byte by byte (PS3.8 section 9.3), one side only; the other side is
always a real peer (DCMTK storescp, pynetdicom) except in ``collision-scp``,
where the requestor is a real pynetdicom SCU.  Every socket operation has a
timeout (at most 10 s) and every mode prints each PDU it sends and receives.

Client modes (calling AE RAWSCU):
  connect-idle HOST PORT SECS   TCP connect, send nothing for SECS s, close
  connect-close HOST PORT       TCP connect and close at once (a health check)
  garbage HOST PORT CALLED      associate (Verification), then send a PDU of
                                unknown type 0x09; wait for the peer's answer
  oversize HOST PORT CALLED FILE
                                associate (FILE's SOP class, Explicit VR LE),
                                then send the C-STORE-RQ command and FILE's
                                whole data set in ONE P-DATA-TF PDU, ignoring
                                the peer's maximum PDU length
  wrong-context HOST PORT CALLED
                                propose Verification as context 1 only, then
                                send a C-ECHO-RQ on context 3
  two-echoes HOST PORT CALLED   propose Verification and an Asynchronous
                                Operations Window of 2 invoked / 2 performed;
                                whatever the acceptor grants (none: 1/1), send
                                two C-ECHO-RQ (message IDs 1 and 2) back to
                                back before reading any response
Server mode:
  collision-scp HOST PORT AET N accept N associations, one after the other
                                (every context accepted with its first
                                transfer syntax), answer C-ECHO-RQs with
                                Success; on the requestor's A-RELEASE-RQ, send
                                an A-RELEASE-RQ of its own instead of the
                                A-RELEASE-RP (a release collision, PS3.8
                                7.2.2.7), wait for the requestor's
                                A-RELEASE-RP, answer with A-RELEASE-RP, wait
                                for the requestor to close
"""

from __future__ import annotations

import socket
import struct
import sys
import time

APP_CONTEXT = "1.2.840.10008.3.1.1.1"
VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
# A UID under pydicom's root for synthetic test data (see make_objects.py).
IMPL_UID = "1.2.826.0.1.3680043.8.498.1.1"
IMPL_NAME = "DICOMTAP_RAW"
MAX_PDU = 16384
TIMEOUT = 10.0

PDU_NAMES = {
    1: "A-ASSOCIATE-RQ",
    2: "A-ASSOCIATE-AC",
    3: "A-ASSOCIATE-RJ",
    4: "P-DATA-TF",
    5: "A-RELEASE-RQ",
    6: "A-RELEASE-RP",
    7: "A-ABORT",
}
COMMANDS = {
    0x0001: "C-STORE-RQ",
    0x8001: "C-STORE-RSP",
    0x0030: "C-ECHO-RQ",
    0x8030: "C-ECHO-RSP",
}


def say(msg: str) -> None:
    print(f"peer_raw: {msg}", flush=True)


# --- encoding ----------------------------------------------------------------


def item(item_type: int, value: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(value)) + value


def pdu(pdu_type: int, value: bytes) -> bytes:
    return struct.pack(">BBL", pdu_type, 0, len(value)) + value


def ae_field(aet: str) -> bytes:
    return aet.encode("ascii").ljust(16, b" ")


def associate_rq(
    called: str,
    calling: str,
    contexts: list[tuple[int, str, list[str]]],
    async_window: tuple[int, int] | None = None,
) -> bytes:
    body = struct.pack(">HH", 1, 0) + ae_field(called) + ae_field(calling) + bytes(32)
    body += item(0x10, APP_CONTEXT.encode())
    for cid, abstract, syntaxes in contexts:
        sub = item(0x30, abstract.encode())
        sub += b"".join(item(0x40, ts.encode()) for ts in syntaxes)
        body += item(0x20, struct.pack(">BBBB", cid, 0, 0, 0) + sub)
    user = item(0x51, struct.pack(">L", MAX_PDU)) + item(0x52, IMPL_UID.encode())
    if async_window:
        user += item(0x53, struct.pack(">HH", *async_window))
    user += item(0x55, IMPL_NAME.encode())
    body += item(0x50, user)
    return pdu(0x01, body)


def associate_ac_from_rq(rq: bytes) -> bytes:
    """An A-ASSOCIATE-AC accepting every context of the A-ASSOCIATE-RQ whose
    body (without the 6-byte PDU header) is `rq`, each with its first TS."""
    called, calling = rq[4:20], rq[20:36]
    body = struct.pack(">HH", 1, 0) + called + calling + bytes(32)
    body += item(0x10, APP_CONTEXT.encode())
    for itype, value in iter_items(rq[68:]):
        if itype == 0x20:
            subs = list(iter_items(value[4:]))
            ts = next(v for t, v in subs if t == 0x40)
            body += item(0x21, struct.pack(">BBBB", value[0], 0, 0, 0) + item(0x40, ts))
    user = item(0x51, struct.pack(">L", MAX_PDU)) + item(0x52, IMPL_UID.encode())
    user += item(0x55, IMPL_NAME.encode())
    body += item(0x50, user)
    return pdu(0x02, body)


def iter_items(data: bytes):
    off = 0
    while off + 4 <= len(data):
        itype, _, length = struct.unpack_from(">BBH", data, off)
        yield itype, data[off + 4 : off + 4 + length]
        off += 4 + length


def user_sub_items(body: bytes, sub_type: int) -> list[bytes]:
    """The values of the User Information sub-items of type `sub_type` in the
    body of an A-ASSOCIATE-RQ/AC."""
    return [
        s
        for t, v in iter_items(body[68:])
        if t == 0x50
        for st, s in iter_items(v)
        if st == sub_type
    ]


def element(group: int, elem: int, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\0"
    return struct.pack("<HHL", group, elem, len(value)) + value


def command_set(elements: list[tuple[int, bytes]]) -> bytes:
    """Implicit VR Little Endian command set with its group length."""
    body = b"".join(element(0x0000, e, v) for e, v in sorted(elements))
    return element(0x0000, 0x0000, struct.pack("<L", len(body))) + body


def us(v: int) -> bytes:
    return struct.pack("<H", v)


def c_echo_rq(msg_id: int) -> bytes:
    return command_set(
        [
            (0x0002, VERIFICATION.encode()),
            (0x0100, us(0x0030)),
            (0x0110, us(msg_id)),
            (0x0800, us(0x0101)),
        ]
    )


def c_store_rq(msg_id: int, sop_class: str, sop_instance: str) -> bytes:
    return command_set(
        [
            (0x0002, sop_class.encode()),
            (0x0100, us(0x0001)),
            (0x0110, us(msg_id)),
            (0x0700, us(0)),
            (0x0800, us(0x0000)),
            (0x1000, sop_instance.encode()),
        ]
    )


def pdv(cid: int, is_command: bool, is_last: bool, data: bytes) -> bytes:
    header = (1 if is_command else 0) | (2 if is_last else 0)
    return struct.pack(">LBB", len(data) + 2, cid, header) + data


def p_data(*pdvs: bytes) -> bytes:
    return pdu(0x04, b"".join(pdvs))


RELEASE_RQ = pdu(0x05, bytes(4))
RELEASE_RP = pdu(0x06, bytes(4))


# --- decoding ----------------------------------------------------------------


def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def recv_pdu(sock: socket.socket) -> tuple[int, bytes]:
    pdu_type, _, length = struct.unpack(">BBL", recv_exact(sock, 6))
    return pdu_type, recv_exact(sock, length)


def describe(pdu_type: int, body: bytes) -> str:
    name = PDU_NAMES.get(pdu_type, f"PDU type 0x{pdu_type:02X}")
    if pdu_type == 3:
        return f"{name} result {body[1]} source {body[2]} reason {body[3]}"
    if pdu_type == 7:
        return f"{name} source {body[2]} reason {body[3]}"
    if pdu_type == 2:
        results = [f"{v[0]}:{v[2]}" for t, v in iter_items(body[68:]) if t == 0x21]
        maxlen = [struct.unpack(">L", s[:4])[0] for s in user_sub_items(body, 0x51)]
        return f"{name} contexts (id:result) {' '.join(results)} max PDU {maxlen}"
    if pdu_type == 4:
        parts = []
        off = 0
        while off + 6 <= len(body):
            length, cid, hdr = struct.unpack_from(">LBB", body, off)
            data = body[off + 6 : off + 4 + length]
            kind = "command" if hdr & 1 else "data"
            text = f"PDV ctx {cid} {kind}{' last' if hdr & 2 else ''} {len(data)} bytes"
            if hdr & 1:
                fields = parse_command(data)
                cmd = COMMANDS.get(fields.get(0x0100, -1), hex(fields.get(0x0100, -1)))
                text += f" {cmd}"
                if 0x0900 in fields:
                    text += f" status 0x{fields[0x0900]:04X}"
                if 0x0120 in fields:
                    text += f" (answers message ID {fields[0x0120]})"
            parts.append(text)
            off += 4 + length
        return f"{name}: " + "; ".join(parts)
    return name


def parse_command(data: bytes) -> dict[int, int]:
    fields: dict[int, int] = {}
    off = 0
    while off + 8 <= len(data):
        _, elem, length = struct.unpack_from("<HHL", data, off)
        value = data[off + 8 : off + 8 + length]
        if length == 2:
            fields[elem] = struct.unpack("<H", value)[0]
        off += 8 + length
    return fields


# --- helpers -----------------------------------------------------------------


def connect(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=TIMEOUT)
    sock.settimeout(TIMEOUT)
    say(f"connected to {host}:{port} from port {sock.getsockname()[1]}")
    return sock


def send(sock: socket.socket, data: bytes, what: str) -> None:
    sock.sendall(data)
    say(f"sent {what} ({len(data)} bytes)")


def receive(sock: socket.socket) -> tuple[int, bytes]:
    pdu_type, body = recv_pdu(sock)
    say(f"received {describe(pdu_type, body)} ({len(body) + 6} bytes)")
    return pdu_type, body


def associate(sock: socket.socket, called: str, contexts, async_window=None) -> bytes:
    send(sock, associate_rq(called, "RAWSCU", contexts, async_window), "A-ASSOCIATE-RQ")
    pdu_type, body = receive(sock)
    if pdu_type != 2:
        raise SystemExit("association not accepted")
    return body


def drain(sock: socket.socket, limit: float = TIMEOUT) -> None:
    """Print PDUs until the peer closes or aborts (or `limit` seconds)."""
    sock.settimeout(limit)
    try:
        while True:
            pdu_type, _ = receive(sock)
            if pdu_type == 7:
                say("A-ABORT received: closing the connection (PS3.8 AA-3)")
                return
    except EOFError:
        say("peer closed the connection")
    except TimeoutError:
        say(f"nothing more from the peer for {limit:g} s")
    except ConnectionResetError:
        say("connection reset by the peer")


def finish(sock: socket.socket) -> None:
    """Release normally: A-RELEASE-RQ, wait for the A-RELEASE-RP, close."""
    send(sock, RELEASE_RQ, "A-RELEASE-RQ")
    try:
        pdu_type, _ = receive(sock)
    except (TimeoutError, EOFError, ConnectionResetError) as exc:
        say(f"no A-RELEASE-RP: {exc}")
        pdu_type = 0
    if pdu_type == 6:
        say("A-RELEASE-RP received: closing the connection (PS3.8 AR-3)")
    sock.close()


def answer_then_finish(sock: socket.socket) -> None:
    """Read the peer's answer: release after a P-DATA-TF, else stop."""
    try:
        pdu_type, _ = receive(sock)
    except (TimeoutError, EOFError, ConnectionResetError) as exc:
        say(f"no response: {exc}")
        sock.close()
        return
    if pdu_type == 4:
        finish(sock)
        return
    if pdu_type == 7:
        say("A-ABORT received: closing the connection (PS3.8 AA-3)")
    else:
        drain(sock)
    sock.close()


# --- modes -------------------------------------------------------------------


def mode_connect_idle(host: str, port: int, secs: str) -> int:
    sock = connect(host, port)
    sock.settimeout(float(secs))
    try:
        data = sock.recv(1)
        say(f"peer sent {data!r} / closed before {secs} s")
    except TimeoutError:
        say(f"sent nothing for {secs} s, closing")
    sock.close()
    return 0


def mode_connect_close(host: str, port: int) -> int:
    sock = connect(host, port)
    sock.close()
    say("closed at once")
    return 0


def mode_garbage(host: str, port: int, called: str) -> int:
    sock = connect(host, port)
    associate(sock, called, [(1, VERIFICATION, [IMPLICIT_LE])])
    # PDU type 0x09 does not exist (PS3.8 9.3.1: types 0x01-0x07).  Empty
    # body: pynetdicom reads the 6-byte header only and would parse a body
    # as further (unknown) PDUs, answering each with another A-ABORT.
    send(sock, pdu(0x09, b""), "PDU of unknown type 0x09 (length 0)")
    drain(sock)
    sock.close()
    return 0


def mode_oversize(host: str, port: int, called: str, path: str) -> int:
    from pydicom import dcmread
    from pynetdicom.dsutils import encode

    ds = dcmread(path)
    dataset = encode(ds, False, True)  # Explicit VR Little Endian
    assert dataset is not None
    sock = connect(host, port)
    ac = associate(sock, called, [(1, ds.SOPClassUID, [EXPLICIT_LE])])
    command = c_store_rq(1, ds.SOPClassUID, ds.SOPInstanceUID)
    # Both PDVs in one P-DATA-TF, the data set as a single fragment.
    data = p_data(pdv(1, True, True, command), pdv(1, False, True, dataset))
    maxlen = [struct.unpack(">L", s[:4])[0] for s in user_sub_items(ac, 0x51)]
    send(
        sock,
        data,
        f"C-STORE-RQ + data set in ONE P-DATA-TF of length {len(data) - 6}"
        f" (peer's maximum: {maxlen[0] if maxlen else '?'})",
    )
    answer_then_finish(sock)
    return 0


def mode_wrong_context(host: str, port: int, called: str) -> int:
    sock = connect(host, port)
    associate(sock, called, [(1, VERIFICATION, [IMPLICIT_LE])])
    send(
        sock,
        p_data(pdv(3, True, True, c_echo_rq(1))),
        "C-ECHO-RQ on presentation context 3 (never proposed)",
    )
    answer_then_finish(sock)
    return 0


def mode_two_echoes(host: str, port: int, called: str) -> int:
    sock = connect(host, port)
    ac = associate(sock, called, [(1, VERIFICATION, [IMPLICIT_LE])], async_window=(2, 2))
    granted = [struct.unpack(">HH", s[:4]) for s in user_sub_items(ac, 0x53)]
    say(f"asynchronous operations window granted: {granted[0] if granted else 'none (1/1)'}")
    # Two requests in two P-DATA-TF PDUs sent back to back (one write), before
    # reading any response: 2 outstanding operations with a window of 1.
    send(
        sock,
        p_data(pdv(1, True, True, c_echo_rq(1))) + p_data(pdv(1, True, True, c_echo_rq(2))),
        "C-ECHO-RQ ID 1 and C-ECHO-RQ ID 2 back to back",
    )
    answered = 0
    try:
        while answered < 2:
            pdu_type, _ = receive(sock)
            if pdu_type != 4:
                break
            answered += 1
    except (TimeoutError, EOFError, ConnectionResetError) as exc:
        say(f"stopped waiting: {exc}")
        sock.close()
        return 0
    if answered == 2:
        finish(sock)
    else:
        if pdu_type == 7:
            say("A-ABORT received: closing the connection (PS3.8 AA-3)")
        else:
            drain(sock)
        sock.close()
    return 0


def c_echo_rsp(msg_id: int) -> bytes:
    return command_set(
        [
            (0x0002, VERIFICATION.encode()),
            (0x0100, us(0x8030)),
            (0x0120, us(msg_id)),
            (0x0800, us(0x0101)),
            (0x0900, us(0)),
        ]
    )


def collision_serve(sock: socket.socket, aet: str) -> None:
    pdu_type, body = receive(sock)
    if pdu_type != 1:
        raise SystemExit("expected an A-ASSOCIATE-RQ")
    send(sock, associate_ac_from_rq(body), "A-ASSOCIATE-AC")
    while True:
        pdu_type, body = receive(sock)
        if pdu_type != 4:
            break
        # A C-ECHO-RQ (one command PDV): answer Success on the same context.
        cid = body[4]
        fields = parse_command(body[6:])
        if fields.get(0x0100) != 0x0030:
            raise SystemExit("only C-ECHO-RQ is supported")
        send(
            sock,
            p_data(pdv(cid, True, True, c_echo_rsp(fields.get(0x0110, 0)))),
            "C-ECHO-RSP Success",
        )
    if pdu_type != 5:
        raise SystemExit("expected the requestor's A-RELEASE-RQ")
    # Instead of answering, release from this side too: the two A-RELEASE-RQ
    # cross, as if both had decided to release at the same moment.
    send(sock, RELEASE_RQ, "A-RELEASE-RQ (collision)")
    try:
        pdu_type, _ = receive(sock)  # the requestor answers first (Sta9)
    except (EOFError, ConnectionResetError) as exc:
        say(f"the requestor closed the connection instead of answering: {exc}")
        return
    if pdu_type != 6:
        say("the requestor did not answer with A-RELEASE-RP")
        drain(sock, 5)
        return
    send(sock, RELEASE_RP, "A-RELEASE-RP")
    drain(sock, 5)  # the requestor closes the connection


def mode_collision_scp(host: str, port: int, aet: str, count: str) -> int:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(1)
    srv.settimeout(30)
    say(f"raw SCP {aet} listening on {host}:{port} for {count} association(s)")
    for _ in range(int(count)):
        sock, addr = srv.accept()
        sock.settimeout(TIMEOUT)
        say(f"connection from {addr[0]}:{addr[1]}")
        try:
            collision_serve(sock, aet)
        finally:
            sock.close()
    srv.close()
    return 0


MODES = {
    "connect-idle": (mode_connect_idle, 1),
    "connect-close": (mode_connect_close, 0),
    "garbage": (mode_garbage, 1),
    "oversize": (mode_oversize, 2),
    "wrong-context": (mode_wrong_context, 1),
    "two-echoes": (mode_two_echoes, 1),
    "collision-scp": (mode_collision_scp, 2),
}


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[1] not in MODES or len(argv) != 4 + MODES[argv[1]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    func = MODES[argv[1]][0]
    start = time.monotonic()
    rc = func(argv[2], int(argv[3]), *argv[4:])
    say(f"{argv[1]} done in {time.monotonic() - start:.1f} s")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
