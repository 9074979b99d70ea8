"""EXTEND_TIMEOUT_USEC before READY=1: the core moves a starting child's start
timeout (pure, on a fake clock), and a real command child that asks for more time
is not failed at its original start_timeout."""

from __future__ import annotations

import sys
import textwrap
from typing import Any

import otp_py as otp
from otp_py import reports as rp
from otp_py._core import events as ev
from otp_py._core.supervisor import SupervisorCore
from tests.reports import Recorder


def _spec(timeout: float = 10.0) -> otp.SupervisorSpec:
    return otp.SupervisorSpec(id="root", children=[
        otp.ChildSpec.command("w", ["true"], ready=True, start_timeout=timeout)])


def _kinds(actions: list[Any], kind: type) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


def _started(core: SupervisorCore) -> tuple[int, int]:
    """Init the core: (the ref of the starting child, its start timer)."""
    actions = core.handle(ev.Init(), 0.0)
    [start] = _kinds(actions, ev.StartChild)
    [timer] = _kinds(actions, ev.SetTimer)
    assert timer.delay == 10.0
    return start.ref, timer.token


def test_an_extension_moves_the_start_timeout_later() -> None:
    core = SupervisorCore(_spec())
    ref, token = _started(core)
    actions = core.handle(ev.ChildStartExtended(ref, 30.0), 4.0)
    assert [a.token for a in _kinds(actions, ev.CancelTimer)] == [token]
    [moved] = _kinds(actions, ev.SetTimer)
    assert moved.delay == 30.0  # fires at 34 s, not 10 s
    # the old timer firing (had the runtime not cancelled it in time) is no timeout
    assert _kinds(core.handle(ev.TimerFired(token), 10.0), ev.KillChild) == []
    actions = core.handle(ev.ChildUp(ref), 20.0)
    assert [a.token for a in _kinds(actions, ev.CancelTimer)] == [moved.token]
    assert [type(e.report) for e in _kinds(actions, ev.Emit)][:1] == [rp.ChildStarted]


def test_an_extension_never_shortens_the_timeout() -> None:
    core = SupervisorCore(_spec())
    ref, _ = _started(core)
    assert core.handle(ev.ChildStartExtended(ref, 2.0), 1.0) == []  # 3 s < 10 s


def test_the_moved_timeout_still_fails_the_start() -> None:
    core = SupervisorCore(_spec())
    ref, _ = _started(core)
    [moved] = _kinds(core.handle(ev.ChildStartExtended(ref, 30.0), 4.0), ev.SetTimer)
    actions = core.handle(ev.TimerFired(moved.token), 34.0)
    assert [a.ref for a in _kinds(actions, ev.KillChild)] == [ref]


def test_an_extension_for_a_child_already_up_changes_nothing() -> None:
    core = SupervisorCore(_spec())
    ref, _ = _started(core)
    core.handle(ev.ChildUp(ref), 1.0)
    assert core.handle(ev.ChildStartExtended(ref, 30.0), 2.0) == []


SLOW = textwrap.dedent("""
    import os, socket, time
    def notify(message):
        address = "\\0" + os.environ["NOTIFY_SOCKET"][1:]
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(message, address)
    notify(b"EXTEND_TIMEOUT_USEC=20000000\\nSTATUS=migrating")
    time.sleep(2.0)  # past its start_timeout of 1 s
    notify(b"READY=1\\nSTATUS=up")
    time.sleep(3600)
""")


def test_a_command_child_asking_for_more_time_is_not_failed() -> None:
    recorder = Recorder()
    spec = otp.SupervisorSpec(id="root", children=[
        # (-I -S: no site-packages, so its first datagram comes well within 1 s)
        otp.ChildSpec.command("w", [sys.executable, "-I", "-S", "-c", SLOW], ready=True,
                              start_timeout=1.0, shutdown=2)])
    with otp.start(spec, on_report=recorder) as sup:
        assert recorder.of(rp.ChildStartFailed) == []
        [info] = sup.which_children()
        assert info.details["status"] == "up"
        assert info.details["ready_after"] > 1.0
