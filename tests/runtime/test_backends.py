"""Contract tests: every backend reports the same ends with the same reasons, and the
spec fields (restart, shutdown, significant) mean the same on every backend."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest
import targets
from kit import (
    COMMAND,
    FORK,
    PROCESS,
    PY,
    SPAWN,
    TASK,
    THREAD,
    WORKER_KINDS,
    Kind,
    expected_reason,
    fifo,
    info,
    pid_of,
    tree,
    wait_gone,
)

import otp_py as otp
from otp_py import reasons
from otp_py import reports as rp
from tests.reports import Recorder

# (kind, how) pairs: how a child ends, for each backend that can end that way.
_HOWS = {
    PROCESS: ("return", "raise", "exit0", "exit3", "_exit1", "sigkill", "sigsegv"),
    FORK: ("return", "raise", "exit3", "sigkill"),
    SPAWN: ("raise", "sigkill"),
    COMMAND: ("return", "raise", "exit3", "sigkill", "sigsegv"),
    THREAD: ("return", "raise", "exit0", "exit3"),
    TASK: ("return", "raise", "exit0", "exit3"),
}
ENDINGS = [
    pytest.param(kind, how, restart, id=f"{kind}-{how}-{restart}")
    for kind, hows in _HOWS.items()
    for how in hows
    for restart in (("permanent",) if kind is SPAWN else ("permanent", "transient"))
]


@pytest.fixture(scope="module", autouse=True)
def _resource_tracker() -> None:
    """spawn children start multiprocessing's resource tracker, a helper that lives as
    long as we do; start it before any leak snapshot, as conftest does its helpers."""
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()


@pytest.fixture
def release_threads() -> Iterator[None]:
    """Unstoppable thread children wait on RELEASE; let them end after the test."""
    targets.RELEASE.clear()
    yield
    targets.RELEASE.set()


# ------------------------------------------------------------------ ends and reasons


@pytest.mark.parametrize(("kind", "how", "restart"), ENDINGS)
def test_an_ended_child_gets_its_reason_and_its_restart_type_decides(
    kind: Kind, how: str, restart: str, tmp_path: object
) -> None:
    recorder = Recorder()
    marker = os.path.join(str(tmp_path), "marker")
    spec = tree(kind.once("w", marker, how, restart=restart))
    with otp.start(spec, on_report=recorder) as sup:
        exited = recorder.wait_kind(rp.ChildExited, "w")[0]
        expected = expected_reason(kind, how)
        assert exited.reason == expected
        if restart == "permanent" or expected.is_abnormal:
            assert exited.outcome == "restart"
            again = recorder.wait_kind(rp.ChildStarted, "w", count=2)[1]
            assert again.restarts == 1
            assert info(sup.which_children(), "w").state == "running"
        else:
            assert exited.outcome == "keep"
            assert info(sup.which_children(), "w").state == "stopped"
            assert len(recorder.of(rp.ChildStarted, "w")) == 1
    assert sup.wait(5) == reasons.Shutdown()


@pytest.mark.parametrize("kind", [PROCESS, FORK, THREAD, TASK], ids=str)
def test_a_temporary_child_that_crashed_is_forgotten(kind: Kind, tmp_path: object) -> None:
    recorder = Recorder()
    marker = os.path.join(str(tmp_path), "marker")
    spec = tree(kind.once("w", marker, "raise", restart="temporary"), kind.forever("other"))
    with otp.start(spec, on_report=recorder) as sup:
        exited = recorder.wait_kind(rp.ChildExited, "w")[0]
        assert exited.outcome == "remove"
        assert [c.id for c in sup.which_children()] == ["other"]


@pytest.mark.parametrize("kind", [PROCESS, FORK, SPAWN, THREAD, TASK], ids=str)
def test_a_crash_ships_type_message_and_traceback(kind: Kind, tmp_path: object) -> None:
    recorder = Recorder()
    spec = tree(kind.once("w", os.path.join(str(tmp_path), "m"), "raise"))
    with otp.start(spec, on_report=recorder):
        reason = recorder.wait_kind(rp.ChildExited, "w")[0].reason
    assert isinstance(reason, reasons.Crashed)
    assert (reason.error_type, reason.message) == ("ValueError", "boom")
    assert reason.traceback is not None
    assert reason.traceback.startswith("Traceback (most recent call last)")
    assert "in _act" in reason.traceback  # the frame that raised, from the child
    assert reason.traceback.rstrip().endswith("ValueError: boom")


@pytest.mark.parametrize(("how", "expected"), [("exit0", reasons.Normal()),
                                               ("exit3", reasons.Exited(3))])
def test_sys_exit_in_a_task_child_ends_only_that_child(
    how: str, expected: reasons.ExitReason, tmp_path: object
) -> None:
    recorder = Recorder()
    spec = tree(TASK.forever("other"), TASK.once("w", os.path.join(str(tmp_path), "m"), how))
    sup = otp.start(spec, on_report=recorder)
    try:
        exited = recorder.wait_kind(rp.ChildExited, "w", timeout=5)[0]
        assert exited.reason == expected
        recorder.wait_kind(rp.ChildStarted, "w", count=2, timeout=5)
        assert sup.running
        assert [c.state for c in sup.which_children()] == ["running", "running"]
    finally:
        final = sup.stop(5)
    assert final == reasons.Shutdown()


@pytest.mark.parametrize("kind", [PROCESS, FORK, COMMAND], ids=str)
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGSEGV], ids=["SIGKILL", "SIGSEGV"])
def test_a_signal_from_outside_is_reported_as_signaled(kind: Kind, signum: int) -> None:
    recorder = Recorder()
    with otp.start(tree(kind.forever("w")), on_report=recorder) as sup:
        pid = pid_of(sup, "w")
        os.kill(pid, signum)
        exited = recorder.wait_kind(rp.ChildExited, "w")[0]
        assert exited.reason == reasons.Signaled(signum)
        assert exited.reason.name == signal.Signals(signum).name
        recorder.wait_kind(rp.ChildStarted, "w", count=2)
        assert pid_of(sup, "w") != pid


# ------------------------------------------------------------ shutdown means the same


def _ignoring_stop(kind: Kind, child_id: str, **fields: object) -> otp.ChildSpec:
    """A child of ``kind`` that ignores its graceful stop (and is ready once it does)."""
    if kind.backend == "process":
        return kind.spec(child_id, targets.ignore_sigterm, ready=True, **fields)
    if kind.backend == "asyncio":
        return kind.spec(child_id, targets.task_ignore_cancel, ready=True, **fields)
    if kind.backend == "thread":
        return kind.spec(child_id, targets.thread_ignore_stop, ready=True, **fields)
    raise AssertionError(kind)


def _command_ignoring_stop(child_id: str, fifo_path: str, **fields: object) -> otp.ChildSpec:
    """A command that ignores SIGTERM and then writes a line to ``fifo_path`` (commands
    cannot signal readiness, so the test waits for the line)."""
    code = (
        "import signal, time, sys\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "with open(sys.argv[1], 'w') as f:\n"
        "    f.write('up\\n')\n"
        "time.sleep(3600)\n"
    )
    return otp.ChildSpec.command(child_id, [PY, "-c", code, fifo_path], **fields)


def test_a_sigterm_the_moment_the_handler_is_installed_still_means_shutdown() -> None:
    recorder = Recorder()
    child = otp.ChildSpec.process("w", targets.run_forever, restart="transient",
                                  process_class=targets.SigtermOnHandlerInstall)
    with otp.start(tree(child, THREAD.forever("other")), on_report=recorder):
        exited = recorder.wait_kind(rp.ChildExited, "w")[0]
    assert exited.reason == reasons.Shutdown()
    assert exited.outcome == "keep"


@pytest.mark.parametrize("kind", [PROCESS, FORK, COMMAND, TASK], ids=str)
def test_a_child_ignoring_its_stop_is_killed_after_its_shutdown_timeout(
    kind: Kind, tmp_path: object
) -> None:
    recorder = Recorder()
    shutdown = 0.3
    with fifo(tmp_path) as up:
        if kind is COMMAND:
            child = _command_ignoring_stop("w", up.path, shutdown=shutdown)
        else:
            child = _ignoring_stop(kind, "w", shutdown=shutdown)
        with otp.start(tree(child, THREAD.forever("bystander")), on_report=recorder) as sup:
            if kind is COMMAND:
                up.wait_line()
            pid = None if kind is TASK else pid_of(sup, "w")
            began = time.monotonic()
            sup.terminate_child("w")
            took = time.monotonic() - began
            terminated = recorder.wait_kind(rp.ChildTerminated, "w")[0]
            assert terminated.reason == reasons.Killed()
            assert took >= shutdown * 0.9
            assert took < shutdown + 5.0
            assert info(sup.which_children(), "w").state == "stopped"
            if pid is not None:
                wait_gone([pid], timeout=2)
            assert not recorder.of(rp.ChildExited)


@pytest.mark.parametrize("kind", [PROCESS, COMMAND, TASK], ids=str)
def test_brutal_kill_kills_at_once(kind: Kind, tmp_path: object) -> None:
    recorder = Recorder()
    spec = tree(kind.forever("w", shutdown=otp.BRUTAL_KILL))
    with otp.start(spec, on_report=recorder) as sup:
        sup.terminate_child("w")
        terminated = recorder.wait_kind(rp.ChildTerminated, "w")[0]
        assert terminated.reason == reasons.Killed()


@pytest.mark.parametrize("shutdown", [0.3, otp.BRUTAL_KILL], ids=["timeout", "brutal_kill"])
def test_a_thread_ignoring_its_stop_is_reported_unstoppable(
    shutdown: float, release_threads: None
) -> None:
    recorder = Recorder()
    spec = tree(THREAD.spec("w", targets.thread_ignore_stop, ready=True, shutdown=shutdown))
    with otp.start(spec, on_report=recorder) as sup:
        began = time.monotonic()
        sup.terminate_child("w")
        took = time.monotonic() - began
        unstoppable = recorder.wait_kind(rp.ChildUnstoppable, "w")[0]
        assert "otp:root/w" in str(unstoppable.detail)
        terminated = recorder.wait_kind(rp.ChildTerminated, "w")[0]
        timeout = 0.0 if shutdown is otp.BRUTAL_KILL else shutdown
        assert terminated.reason == reasons.Unstoppable(timeout)
        assert took >= timeout * 0.9
        thread = next(t for t in threading.enumerate() if t.name == "otp:root/w")
        assert thread.is_alive()  # the supervisor carried on without it
        assert info(sup.which_children(), "w").state == "stopped"
    targets.RELEASE.set()
    thread.join(5)
    assert not thread.is_alive()


@pytest.mark.parametrize("kind", WORKER_KINDS, ids=str)
def test_a_significant_child_ending_shuts_the_supervisor_down(kind: Kind, tmp_path: object) -> None:
    recorder = Recorder()
    marker = os.path.join(str(tmp_path), "m")
    spec = tree(
        kind.forever("bystander"),
        kind.once("w", marker, "return", restart="transient", significant=True),
        auto_shutdown="any_significant",
    )
    sup = otp.start(spec, on_report=recorder)
    assert sup.wait(20) == reasons.Shutdown()
    assert recorder.wait_kind(rp.ChildExited, "w")[0].reason == reasons.Normal()
    assert [r.child_id for r in recorder.of(rp.ChildTerminated)] == ["bystander"]
