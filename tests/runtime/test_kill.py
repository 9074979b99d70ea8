"""Handles can stop a tree at once (as a second Ctrl-C does)."""

from __future__ import annotations

import time

import targets

import otp_py as otp
from otp_py import reasons
from otp_py import reports as rp
from tests.reports import Recorder


def test_kill_ends_a_tree_whose_children_ignore_their_stop_at_once() -> None:
    recorder = Recorder()
    spec = otp.SupervisorSpec(id="root", children=[
        otp.ChildSpec.process("stubborn", targets.ignore_sigterm, ready=True, shutdown=30.0),
        otp.ChildSpec.command("cmd", ["sh", "-c", "trap '' TERM; sleep 60 & wait"],
                              shutdown=30.0),
    ])
    sup = otp.start(spec, on_report=recorder)
    began = time.monotonic()
    assert sup.kill(timeout=20) is not None
    assert time.monotonic() - began < 10  # far under the 30 s shutdown timeouts
    terminated = {r.child_id: r.reason for r in recorder.of(rp.ChildTerminated)}
    assert terminated == {"stubborn": reasons.Killed(), "cmd": reasons.Killed()}
    assert not sup.running


def test_child_history_is_readable_from_both_handles() -> None:
    recorder = Recorder()
    spec = otp.SupervisorSpec(id="root", intensity=otp.SlidingWindow(10**6, 10), children=[
        otp.ChildSpec.task("t", targets.task_raise_after_ready, ready=True),
    ])
    with otp.start(spec, on_report=recorder) as sup:
        recorder.wait_kind(rp.ChildExited, "t", count=2)
        history = sup.child_history("t")
        assert len(history) >= 2
        assert all(isinstance(r.reason, reasons.Crashed) for r in history)
        assert "ValueError: boom" in (history[0].reason.traceback or "")
        try:
            sup.child_history("nope")
        except otp.ChildNotFoundError:
            pass
        else:
            raise AssertionError("expected ChildNotFoundError")
