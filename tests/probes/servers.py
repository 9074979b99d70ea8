"""Programs the probe tests run as command children (``python servers.py MODE ...``).

* ``tcp PORT``: listen on 127.0.0.1:PORT; on SIGUSR1 close the listening socket but
  keep running (alive, no longer reachable: a TCP liveness probe's case).
* ``late-file PATH DELAY``: create PATH after DELAY seconds, then run until stopped
  (an exec readiness probe's case).
* ``notify-then-tcp PORT DELAY``: say ``READY=1`` to ``$NOTIFY_SOCKET`` at once (the
  sd_notify protocol), listen on PORT only DELAY seconds later (a program that says
  it is ready before it can serve).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time


def _tcp(port: int) -> None:
    listener = socket.create_server(("127.0.0.1", port))
    closed = False

    def close(signum: int, frame: object) -> None:
        nonlocal closed
        closed = True

    signal.signal(signal.SIGUSR1, close)
    listener.settimeout(0.05)
    while True:
        if closed:
            listener.close()
            while True:
                time.sleep(60)
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        conn.close()


def _late_file(path: str, delay: float) -> None:
    time.sleep(delay)
    with open(path + ".tmp", "w") as f:
        f.write(str(time.monotonic()))
    os.rename(path + ".tmp", path)
    while True:
        time.sleep(60)


def _notify_then_tcp(port: int, delay: float) -> None:
    address = os.environ["NOTIFY_SOCKET"]
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.sendto(b"READY=1", address)
    time.sleep(delay)
    _tcp(port)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "tcp":
        _tcp(int(sys.argv[2]))
    elif mode == "notify-then-tcp":
        _notify_then_tcp(int(sys.argv[2]), float(sys.argv[3]))
    elif mode == "late-file":
        _late_file(sys.argv[2], float(sys.argv[3]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
