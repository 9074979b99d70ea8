"""Who is at the other end of a loopback TCP connection (Linux).

Loopback is not private to one user: any local account can connect to
``127.0.0.1:PORT``. The control socket checks its peer's credentials; a TCP socket has
none to ask for, but the kernel lists every TCP socket of this network namespace,
with the uid that owns it, in ``/proc/net/tcp`` and ``/proc/net/tcp6``. The client's
end of a loopback connection is the row whose local address is our peer's and whose
remote address is ours."""

from __future__ import annotations

import socket
import struct
from typing import Any

__all__ = ["PROC_TCP", "loopback_peer_uid"]

PROC_TCP = ("/proc/net/tcp", "/proc/net/tcp6")


def _hex_address(host: str, port: int) -> set[str]:
    """How the kernel writes ``host:port`` in those tables (each 32-bit word of the
    address in host order); an IPv4 address also as IPv4-mapped IPv6."""
    written: set[str] = set()
    try:
        packed = socket.inet_pton(socket.AF_INET, host)
        written.add(f"{struct.unpack('=I', packed)[0]:08X}:{port:04X}")
        packed = b"\0" * 10 + b"\xff\xff" + packed
    except OSError:
        packed = socket.inet_pton(socket.AF_INET6, host.split("%", 1)[0])
    words = struct.unpack("=4I", packed)
    written.add("".join(f"{w:08X}" for w in words) + f":{port:04X}")
    return written


def loopback_peer_uid(peer: Any, local: Any) -> int | None:
    """The uid owning the client's end of the TCP connection from ``peer`` to
    ``local`` (``getpeername()``/``getsockname()`` tuples); None when it is not found
    (the tables cannot be read, or the client is gone)."""
    try:
        theirs = _hex_address(str(peer[0]), int(peer[1]))
        ours = _hex_address(str(local[0]), int(local[1]))
    except (OSError, ValueError, TypeError, IndexError):
        return None
    for table in PROC_TCP:
        try:
            with open(table, encoding="ascii", errors="replace") as rows:
                next(rows, None)  # (the heading)
                for row in rows:
                    fields = row.split()
                    if len(fields) > 7 and fields[1] in theirs and fields[2] in ours:
                        return int(fields[7])
        except (OSError, ValueError):
            continue
    return None
