"""Attack: a large tree, where descriptor numbers pass 1024 (thousands of children,
each with its pipes, pidfd and notify socket), and a ready=True command child that
exits.

Before the fix the notify socket was drained at the child's exit with
``select.select``, which refuses a descriptor above 1023 (``ValueError``): the
exit's callback failed, and the child's end was never seen (no restart, a stop
that waited for it). Now it is polled (``select.poll``), which has no such limit."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

import otp_py as otp
from otp_py import reports as rp
from tests.reports import Recorder

_READY_THEN_EXIT = """
import os, socket, time
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
    sock.sendto(b"READY=1", "\\0" + os.environ["NOTIFY_SOCKET"][1:])
time.sleep(0.2)
raise SystemExit(3)
"""


@pytest.fixture
def high_descriptors() -> Iterator[None]:
    """Every descriptor below 1100 taken: the tree's new ones are numbered above."""
    taken: list[int] = []
    try:
        while True:
            fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            taken.append(fd)
            if fd >= 1100:
                break
    except OSError:
        for fd in taken:
            os.close(fd)
        pytest.skip("cannot open 1100 descriptors (RLIMIT_NOFILE)")
    try:
        yield
    finally:
        for fd in taken:
            os.close(fd)


def test_a_ready_childs_exit_is_seen_with_descriptors_above_1024(
        high_descriptors: None) -> None:
    recorder = Recorder()
    child = otp.ChildSpec.command("w", [sys.executable, "-c", _READY_THEN_EXIT], ready=True,
                                  restart="transient", shutdown=2.0)
    sup = otp.start(otp.SupervisorSpec(id="root", children=[child]), on_report=recorder)
    try:
        [exited] = recorder.wait_kind(rp.ChildExited, "w", timeout=10)[:1]
    finally:  # (before the fix the tree could not stop: bounded, then killed)
        stopped = sup.stop(timeout=10) is not None or sup.kill(timeout=10) is not None
    assert "3" in str(exited.reason)
    assert stopped
