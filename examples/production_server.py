"""Running in production: a program written for systemd's ``Type=notify``.

It uses nothing of otp_py, only the notify protocol of ``sd_notify(3)``: a datagram to
the Unix socket named by ``$NOTIFY_SOCKET`` (``@`` for an abstract address). Under
systemd it says the same to systemd; as an otp_py command child with ``ready=True``
(see ``production_service.toml`` and ``production_readiness.py``) it says it to its
supervisor, which starts its next sibling only after ``READY=1``, shows its
``STATUS=`` in ``otp-py status``, and treats missing ``WATCHDOG=1`` pings as a hang.
"""

import os
import socket
import time


def notify(message: str) -> None:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return  # nobody supervises us this way
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.encode(), address)


def main() -> None:
    notify("STATUS=loading")
    time.sleep(0.2)  # (load what it serves)
    notify("READY=1\nSTATUS=serving")
    # WATCHDOG_USEC: ping at least this often (half of it, as sd_watchdog_enabled says)
    usec = int(os.environ.get("WATCHDOG_USEC", "0"))
    interval = usec / 2_000_000 if usec else 60.0
    while True:  # (serve)
        time.sleep(interval)
        notify("WATCHDOG=1")


if __name__ == "__main__":
    main()
