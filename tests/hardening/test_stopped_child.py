"""A child frozen with SIGSTOP (by an operator, a debugger, a chaos tool) keeps the
SIGTERM of its stop pending until it runs again: its supervisor sends SIGCONT right
after, as systemd does, so the child stops gracefully at once rather than being
killed at its shutdown timeout."""

from __future__ import annotations

import os
import signal
import time

import pytest

import otp_py as otp
from otp_py import reasons
from otp_py import reports as rp
from tests.reports import Recorder

SHUTDOWN = 20.0


def _frozen_stop(spec: otp.ChildSpec) -> tuple[float, reasons.ExitReason | None]:
    recorder = Recorder()
    with otp.start(otp.SupervisorSpec(id="root", children=[spec]), on_report=recorder) as sup:
        pid = sup.which_children()[0].pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        began = time.monotonic()
        sup.terminate_child("c")
        took = time.monotonic() - began
    terminated = recorder.of(rp.ChildTerminated, "c")
    return took, terminated[0].reason if terminated else None


def test_a_stopped_command_child_stops_gracefully_at_once() -> None:
    spec = otp.ChildSpec.command(
        "c", ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done"],
        shutdown=SHUTDOWN)
    took, reason = _frozen_stop(spec)
    assert took < SHUTDOWN / 2
    assert reason == reasons.Shutdown()


@pytest.mark.parametrize("start_method", ["forkserver", "fork"])
def test_a_stopped_process_child_stops_gracefully_at_once(start_method: str) -> None:
    spec = otp.ChildSpec.process("c", time.sleep, args=(3600,), shutdown=SHUTDOWN,
                                 start_method=start_method)
    took, reason = _frozen_stop(spec)
    assert took < SHUTDOWN / 2
    assert reason == reasons.Shutdown()
