"""Readiness (ready=True, start_timeout) and liveness (Heartbeat) on every backend
that supports them."""

from __future__ import annotations

import os
import time

import pytest
import targets
from kit import (
    FORK,
    PROCESS,
    TASK,
    THREAD,
    Kind,
    LeakCheck,
    pid_of,
    read_pid,
    tree,
    wait_gone,
)

import otp_py as otp
from otp_py import reasons
from otp_py import reports as rp
from tests.reports import Recorder

READY_KINDS = [PROCESS, FORK, THREAD, TASK]

_FAIL_BEFORE_READY = {
    "process": targets.fail_before_ready,
    "thread": targets.thread_fail_before_ready,
    "asyncio": targets.task_fail_before_ready,
}
_NEVER_READY = {
    "process": targets.write_pid_and_run,
    "thread": targets.thread_never_ready,
    "asyncio": targets.task_never_ready,
}
CANNOT_START = reasons.Crashed("RuntimeError", "cannot start")


def _never_ready(kind: Kind, pid_file: str, **fields: object) -> otp.ChildSpec:
    args = (pid_file,) if kind.backend == "process" else ()
    return kind.spec("w", _NEVER_READY[kind.backend], args=args, ready=True, **fields)


def _wait_killed(pid_file: str) -> None:
    """The never-ready process child wrote its pid first thing; it must be gone. (On a
    very slow machine it may not have got that far: then the teardown's leak check
    alone proves it was killed.)"""
    if os.path.exists(pid_file):
        wait_gone([read_pid(pid_file)], timeout=5)


# ----------------------------------------------------------------- start failures


@pytest.mark.parametrize("kind", READY_KINDS, ids=str)
def test_a_child_failing_before_ready_fails_the_supervisors_init(kind: Kind) -> None:
    recorder = Recorder()
    spec = tree(
        kind.forever("first"),
        kind.spec("w", _FAIL_BEFORE_READY[kind.backend], ready=True),
        kind.forever("never_started"),
    )
    with pytest.raises(otp.SupervisorExitError) as caught:
        otp.start(spec, on_report=recorder)
    assert not isinstance(caught.value, otp.IntensityExceededError)
    assert caught.value.reason == reasons.Shutdown(reasons.FailedToStartChild("w", CANNOT_START))
    assert "failed to start" in str(caught.value)
    failed = recorder.of(rp.ChildStartFailed, "w")
    assert [f.reason for f in failed] == [CANNOT_START]
    assert failed[0].reason.traceback is not None
    assert "cannot start" in failed[0].reason.traceback
    # the started sibling was stopped again; the one after was never started
    assert [r.child_id for r in recorder.of(rp.ChildTerminated)] == ["first"]
    assert recorder.of(rp.ChildStarted, "never_started") == []


@pytest.mark.parametrize("kind", READY_KINDS, ids=str)
def test_start_child_reports_a_failure_before_ready(kind: Kind) -> None:
    recorder = Recorder()
    with otp.start(tree(kind.forever("other")), on_report=recorder) as sup:
        with pytest.raises(otp.StartChildError) as caught:
            sup.start_child(kind.spec("w", _FAIL_BEFORE_READY[kind.backend], ready=True))
        assert caught.value.reason == CANNOT_START
        assert caught.value.child_id == "w"
        assert [c.id for c in sup.which_children()] == ["other"]
        assert recorder.wait_kind(rp.ChildStartFailed, "w")[0].reason == CANNOT_START


@pytest.mark.parametrize("kind", READY_KINDS, ids=str)
def test_a_never_ready_child_times_out_and_is_killed(kind: Kind, tmp_path: object) -> None:
    recorder = Recorder()
    pid_file = os.path.join(str(tmp_path), "pid")
    with otp.start(tree(kind.forever("other")), on_report=recorder) as sup:
        with pytest.raises(otp.StartChildError) as caught:
            sup.start_child(_never_ready(kind, pid_file, start_timeout=0.3))
        assert caught.value.reason == reasons.StartTimeout(0.3)
        failed = recorder.wait_kind(rp.ChildStartFailed, "w")[0]
        assert failed.reason == reasons.StartTimeout(0.3)
        _wait_killed(pid_file)
        assert [c.id for c in sup.which_children()] == ["other"]
        assert sup.which_children()[0].state == "running"


@pytest.mark.allow_leaks  # it checks, more strictly than the fixture, itself
@pytest.mark.parametrize("kind", [PROCESS, FORK, TASK, THREAD], ids=str)
def test_a_never_ready_child_fails_the_init_and_leaves_nothing(
    kind: Kind, tmp_path: object
) -> None:
    # The supervisor gives up on the start and exits in the same instant; whether the
    # killed child is reaped before the tree's loop closes is a race, so the scenario
    # runs several times: each run must leave nothing.
    leaks = LeakCheck()
    try:
        for attempt in range(8):
            recorder = Recorder()
            pid_file = os.path.join(str(tmp_path), f"pid{attempt}")
            spec = tree(_never_ready(kind, pid_file, start_timeout=0.05))
            with pytest.raises(otp.SupervisorExitError) as caught:
                otp.start(spec, on_report=recorder)
            assert caught.value.reason == reasons.Shutdown(
                reasons.FailedToStartChild("w", reasons.StartTimeout(0.05))
            )
            _wait_killed(pid_file)
        leaks.assert_clean(timeout=1.0)
    finally:
        leaks.clean_up()


# ---------------------------------------------------------------------- heartbeats

HEARTBEAT = otp.Heartbeat(interval=0.1, timeout=0.5)


def test_a_frozen_process_child_is_hung_stopped_killed_and_restarted(tmp_path: object) -> None:
    recorder = Recorder()
    shutdown = 0.3
    spec = tree(
        PROCESS.spec("healthy", targets.ready_then_run, ready=True, heartbeat=HEARTBEAT),
        PROCESS.spec("w", targets.freeze_once, args=(os.path.join(str(tmp_path), "m"),),
                     ready=True, heartbeat=HEARTBEAT, shutdown=shutdown),
    )
    began = time.monotonic()  # the loop's clock: reports are stamped with it
    with otp.start(spec, on_report=recorder) as sup:
        pid = pid_of(sup, "w")
        exited = recorder.wait_kind(rp.ChildExited, "w")[0]
        assert isinstance(exited.reason, reasons.Hung)
        assert "0.5" in exited.reason.detail
        assert exited.outcome == "restart"
        # silent for the heartbeat timeout, then its SIGTERM and a SIGCONT (a stopped
        # process acts on nothing until it runs again): it ends without its kill
        assert exited.time - began >= HEARTBEAT.timeout
        assert exited.uptime is not None and exited.uptime >= HEARTBEAT.timeout
        wait_gone([pid], timeout=2)
        recorder.wait_kind(rp.ChildStarted, "w", count=2)
        assert pid_of(sup, "w") != pid
        # its healthy sibling answered its pings all along
        assert recorder.of(rp.ChildExited, "healthy") == []


def test_a_thread_child_that_never_beats_is_hung_and_restarted(tmp_path: object) -> None:
    recorder = Recorder()
    spec = tree(
        THREAD.spec("healthy", targets.thread_ticking, ready=True, heartbeat=HEARTBEAT),
        THREAD.spec("w", targets.thread_silent_once, args=(os.path.join(str(tmp_path), "m"),),
                    ready=True, heartbeat=HEARTBEAT, shutdown=1.0),
    )
    began = time.monotonic()
    with otp.start(spec, on_report=recorder):
        exited = recorder.wait_kind(rp.ChildExited, "w")[0]
        assert isinstance(exited.reason, reasons.Hung)
        assert exited.outcome == "restart"
        assert exited.time - began >= HEARTBEAT.timeout
        again = recorder.wait_kind(rp.ChildStarted, "w", count=2)[1]
        assert again.restarts == 1
        assert recorder.of(rp.ChildExited, "healthy") == []
        # it honoured its stop token: nothing was unstoppable
        assert recorder.of(rp.ChildUnstoppable) == []
