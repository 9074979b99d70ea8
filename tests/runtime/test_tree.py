"""A running tree: starts, API calls, restarts on real crashes, ordered stops."""

from __future__ import annotations

import os
import signal

import targets

import otp_py as otp
from otp_py import reasons
from otp_py import reports as rp
from tests.reports import Recorder


def tree(*children: otp.ChildSpec | otp.SupervisorSpec, **flags: object) -> otp.SupervisorSpec:
    flags.setdefault("intensity", otp.SlidingWindow(10, 5))
    return otp.SupervisorSpec(id="root", children=list(children), **flags)  # type: ignore[arg-type]


def test_a_killed_process_child_comes_back() -> None:
    recorder = Recorder()
    spec = tree(otp.ChildSpec.process("worker", targets.run_forever))
    with otp.start(spec, on_report=recorder) as sup:
        first = recorder.wait_kind(rp.ChildStarted, "worker")[0]
        pid = _pid_of(sup, "worker")
        os.kill(pid, signal.SIGKILL)
        exited = recorder.wait_kind(rp.ChildExited, "worker")[0]
        assert exited.reason == reasons.Signaled(signal.SIGKILL)
        assert exited.outcome == "restart"
        again = recorder.wait_kind(rp.ChildStarted, "worker", count=2)[1]
        assert again.restarts == 1 and again.time >= first.time
        assert _pid_of(sup, "worker") != pid


def test_stop_runs_in_reverse_start_order_across_backends() -> None:
    recorder = Recorder()
    spec = tree(
        otp.ChildSpec.process("p", targets.run_forever),
        otp.ChildSpec.thread("t", targets.thread_until_stopped),
        otp.ChildSpec.task("a", targets.task_forever),
        otp.ChildSpec.command("c", ["sleep", "3600"]),
    )
    sup = otp.start(spec, on_report=recorder)
    assert [c.id for c in sup.which_children()] == ["p", "t", "a", "c"]
    assert sup.stop() == reasons.Shutdown()
    terminated = [(r.child_id, r.reason) for r in recorder.of(rp.ChildTerminated)]
    assert terminated == [(c, reasons.Shutdown()) for c in ("c", "a", "t", "p")]


def _pid_of(sup: otp.Supervisor, child: str) -> int:
    info = next(c for c in sup.which_children() if c.id == child)
    assert info.pid is not None, info
    return info.pid
