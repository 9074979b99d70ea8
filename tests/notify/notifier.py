"""A program that speaks systemd's notify protocol the documented way, and nothing
else: a datagram to ``$NOTIFY_SOCKET`` (``@`` for an abstract address). It imports
nothing of otp_py. Run as ``python notifier.py MODE [ARG...]``:

* ``ready FILE``: write the environment's notify variables to FILE (JSON), send
  ``STATUS=warming up``, wait until FILE.go exists, send ``READY=1`` and
  ``STATUS=serving``, then sleep.
* ``grandchild``: fork; the grandchild sends ``READY=1``; both sleep.
* ``flood SECONDS``: ``READY=1``; then for SECONDS, send garbage, oversized
  datagrams and bare keys as fast as it can; then ``STATUS=flood over``, sleep.
* ``watchdog PINGS INTERVAL FILE``: ``READY=1``, then PINGS ``WATCHDOG=1`` pings
  INTERVAL seconds apart (each appended to FILE), then silence; it sleeps on.
* ``daemon FILE``: fork a daemon (a new session) and name it with ``MAINPID=``
  and ``READY=1``; the daemon writes its pid to FILE and sleeps; the first
  process exits 0.
* ``mainpid PID``: ``MAINPID=PID`` and ``READY=1``, then sleep.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time


def notify(message: bytes) -> None:
    address = os.environ["NOTIFY_SOCKET"]
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message, address)


def sleep_forever() -> None:
    while True:
        time.sleep(60)


def main(mode: str, *args: str) -> None:
    if mode == "ready":
        path = args[0]
        keys = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
        with open(path + ".tmp", "w") as f:
            json.dump({k: os.environ.get(k) for k in keys} | {"pid": os.getpid()}, f)
        os.rename(path + ".tmp", path)
        notify(b"STATUS=warming up")
        while not os.path.exists(path + ".go"):
            time.sleep(0.01)
        notify(b"READY=1\nSTATUS=serving")
        sleep_forever()
    elif mode == "grandchild":
        if os.fork() == 0:
            notify(b"READY=1")
        sleep_forever()
    elif mode == "flood":
        notify(b"READY=1")
        end = time.monotonic() + float(args[0])
        junk = [b"\xff\xfe garbage", b"=" * 100, b"READY=0", b"X" * 65000, b"MAINPID=1",
                b"WATCHDOG=maybe\nERRNO=-3", b"STATUS=" + b"\x1b[2J" * 500]
        sent = 0
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            address = "\0" + os.environ["NOTIFY_SOCKET"][1:]
            while time.monotonic() < end:
                try:
                    sock.sendto(junk[sent % len(junk)], address)
                except BlockingIOError:  # the queue is full: the reader is behind
                    time.sleep(0.0005)
                except OSError:  # a datagram over the socket's buffer
                    pass
                sent += 1
        notify(b"STATUS=flood over")
        sleep_forever()
    elif mode == "watchdog":
        pings, interval, path = int(args[0]), float(args[1]), args[2]
        notify(b"READY=1")
        for i in range(pings):
            notify(b"WATCHDOG=1")
            with open(path, "a") as f:
                f.write(f"{i}\n")
            time.sleep(interval)
        sleep_forever()
    elif mode == "daemon":
        path = args[0]
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            os.setsid()
            with open(path + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.rename(path + ".tmp", path)
            os.write(write, b"x")
            os.close(write)
            sleep_forever()
        os.close(write)
        os.read(read, 1)  # the daemon is set up
        notify(f"MAINPID={pid}\nREADY=1\nSTATUS=daemon {pid}".encode())
        sys.exit(0)
    elif mode == "mainpid":  # name a process that is not ours
        notify(f"MAINPID={args[0]}\nREADY=1".encode())
        sleep_forever()
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
