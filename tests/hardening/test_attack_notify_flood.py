"""Attack: a ready=True child floods its notify socket with ``MAINPID=`` datagrams
naming a process it may not name (here: the supervisor itself).

Each is refused; before the fix each refusal was also a warning of its own, so the
child wrote thousands of log lines a second into the operator's logs (a datagram
from a stranger was already rate limited). Refusals are now warned about at most
every few seconds, with a count of the ones not shown."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator

import pytest

import otp_py as otp

_FLOOD = """
import os, socket, sys, time
address = "\\0" + os.environ["NOTIFY_SOCKET"][1:]
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
    sock.sendto(b"READY=1", address)
    sock.setblocking(False)
    end, sent = time.monotonic() + 1.0, 0
    while time.monotonic() < end:
        try:
            sock.sendto(b"MAINPID=" + sys.argv[1].encode(), address)
            sent += 1
        except BlockingIOError:
            time.sleep(0.001)
    sock.setblocking(True)
    sock.sendto(b"STATUS=sent %d" % sent, address)
while True:
    time.sleep(60)
"""


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def warnings() -> Iterator[_Warnings]:
    handler = _Warnings()
    logger = logging.getLogger("otp_py")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def test_a_flood_of_refused_mainpids_is_not_a_flood_of_warnings(warnings: _Warnings) -> None:
    child = otp.ChildSpec.command("w", [sys.executable, "-c", _FLOOD, str(os.getpid())],
                                  ready=True, shutdown=2.0)
    with otp.start(otp.SupervisorSpec(id="root", children=[child])) as sup:
        deadline = time.monotonic() + 20
        while True:
            [info] = sup.which_children()
            status = info.details.get("status") or ""
            if status.startswith("sent "):
                break
            assert time.monotonic() < deadline, "the flood never ended"
            time.sleep(0.02)
        sent = int(status.split()[1])
    refusals = [m for m in warnings.messages if "MAINPID=" in m]
    assert sent > 100
    assert 1 <= len(refusals) <= 3, f"{len(refusals)} warnings for {sent} datagrams"
