"""A listener that never accepts, its accept queue filled by its own connections: further
SYNs are dropped, so a connect to it hangs (a connect timeout without leaving the machine).

Usage: fullqueue.py PORT
"""

from __future__ import annotations

import contextlib
import socket
import sys
import time


def main() -> None:
    port = int(sys.argv[1])
    server = socket.socket()
    server.bind(("127.0.0.1", port))
    server.listen(0)
    fillers = []
    for _ in range(3):
        s = socket.socket()
        s.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            s.connect(("127.0.0.1", port))
        fillers.append(s)
    time.sleep(3600)


if __name__ == "__main__":
    main()
