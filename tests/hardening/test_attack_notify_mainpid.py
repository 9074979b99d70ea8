"""Attack: a ready=True command child names, with ``MAINPID=``, a process that is
not its own: one of the same user's that was running before the child was even
started (a sibling started earlier, the user's shell, a stale pid file's pid).

Before the fix otp_py took it for the child (same owner, not the supervisor): the
child's pid became the stranger's, and stopping the child signalled the stranger.
A daemon the child forked cannot be older than the child: such a pid is refused."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import otp_py as otp

NOTIFIER = str(Path(__file__).parents[1] / "notify" / "notifier.py")


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


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    """A process of the same user, older than any child of the tree."""
    process = subprocess.Popen(["sleep", "60"], process_group=0)
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def test_a_mainpid_naming_an_older_process_of_the_same_user_is_refused(
        stranger: subprocess.Popen[bytes], warnings: _Warnings) -> None:
    spec = otp.SupervisorSpec(id="root", children=[otp.ChildSpec.command(
        "w", [sys.executable, NOTIFIER, "mainpid", str(stranger.pid)], ready=True,
        shutdown=2.0)])
    with otp.start(spec) as sup:
        [info] = sup.which_children()
        assert info.details["pid"] != stranger.pid
    assert stranger.poll() is None, "stopping the child signalled the stranger"
    assert any(f"MAINPID={stranger.pid} refused" in m for m in warnings.messages)


def test_the_rule_itself() -> None:
    from otp_py._core.notify import main_pid_allowed

    assert main_pid_allowed(belongs=True, same_owner=False, born=None, child_born=None)
    assert main_pid_allowed(belongs=False, same_owner=True, born=120, child_born=100)
    assert not main_pid_allowed(belongs=False, same_owner=True, born=99, child_born=100)
    assert not main_pid_allowed(belongs=False, same_owner=False, born=120, child_born=100)
    assert not main_pid_allowed(belongs=False, same_owner=True, born=None, child_born=100)


_NAMES_A_SIBLING = """
import os, socket, sys, time
def notify(message):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message, "\\0" + os.environ["NOTIFY_SOCKET"][1:])
notify(b"READY=1")
path = sys.argv[1]
while not os.path.exists(path):
    time.sleep(0.01)
notify(b"MAINPID=" + open(path).read().strip().encode() + b"\\nSTATUS=named it")
while True:
    time.sleep(60)
"""


def test_a_mainpid_naming_a_sibling_started_after_it_is_refused(
        tmp_path: Path, warnings: _Warnings) -> None:
    """The sibling is younger than the child (started after its READY=1), so its
    age does not give it away: it is a process the supervisor started itself."""
    path = tmp_path / "victim.pid"
    spec = otp.SupervisorSpec(id="root", children=[
        otp.ChildSpec.command("hostile", [sys.executable, "-c", _NAMES_A_SIBLING, str(path)],
                              ready=True, shutdown=2.0),
        otp.ChildSpec.command("victim", ["sh", "-c", f"echo $$ > {path}.tmp; "
                                         f"mv {path}.tmp {path}; exec sleep 60"]),
    ])
    with otp.start(spec) as sup:
        deadline = time.monotonic() + 20
        while True:
            details = {c.id: dict(c.details) for c in sup.which_children()}
            if details["hostile"].get("status") == "named it":
                break
            assert time.monotonic() < deadline, "the hostile child never named its sibling"
            time.sleep(0.01)
        victim = int(path.read_text())
        assert details["victim"]["pid"] == victim
        assert details["hostile"]["pid"] != victim
    assert any(f"MAINPID={victim} refused" in m for m in warnings.messages)
