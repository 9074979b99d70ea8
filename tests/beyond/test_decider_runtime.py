"""The failure decider on a running tree: exception types from in-process and process
children, exit codes and signals from process and command children, the sentinel
exceptions from every backend that can raise, and each decision carried out."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from kit import COMMAND, PROCESS, TASK, THREAD, Kind, pid_of, tree, wait_gone

import otp_py as otp
from otp_py import reasons
from otp_py import reports as rp
from tests.beyond import targets
from tests.beyond.targets import ConfigError
from tests.reports import DEFAULT_TIMEOUT, Recorder

RAISING_KINDS = [PROCESS, THREAD, TASK]
"""Backends whose children are Python code that can raise."""


def failing(kind: Kind, child_id: str, tmp_path: Path, what: str, times: int = 1,
            after: float = 0.0, **fields: object) -> otp.ChildSpec:
    """A child that fails ``what`` way on its first ``times`` runs, then runs well."""
    counter = str(tmp_path / f"{child_id}.runs")
    return kind.spec(child_id, targets.FAIL[kind.backend],
                     args=(counter, what, times, after), **fields)


def states(sup: otp.Supervisor, supervisor: str = "") -> dict[str, str]:
    return {c.id: c.state for c in sup.which_children(supervisor)}


# ------------------------------------------------------------------ exception types

@pytest.mark.parametrize("kind", RAISING_KINDS, ids=str)
def test_an_exception_class_rule_matches_the_class_and_its_subclasses(
    kind: Kind, tmp_path: Path
) -> None:
    """``{ConfigError: STOP}``: a child raising MissingSetting (a ConfigError) stays
    stopped; one raising ValueError is restarted as OTP's table says."""
    decider = otp.Decider({ConfigError: otp.Decision.STOP})
    spec = tree(failing(kind, "config", tmp_path, "config", decider=decider),
                failing(kind, "value", tmp_path, "value", decider=decider))
    recorder = Recorder()
    with otp.start(spec, on_report=recorder) as sup:
        exits = {r.child_id: r for r in recorder.wait_kind(rp.ChildExited, count=2)}
        crash = exits["config"].reason
        assert isinstance(crash, reasons.Crashed)
        assert (crash.error_type, crash.message) == ("MissingSetting",
                                                      "missing setting 'api_key'")
        assert exits["config"].outcome == "keep"
        assert exits["value"].reason == reasons.Crashed("ValueError", "boom")
        assert exits["value"].outcome == "restart"
        recorder.wait_kind(rp.ChildStarted, "value", count=2)
        assert states(sup) == {"config": "stopped", "value": "running"}
        assert len(recorder.of(rp.ChildStarted, "config")) == 1
    assert sup.wait(DEFAULT_TIMEOUT) == reasons.Shutdown()


# ---------------------------------------------------------- exit codes and signals

@pytest.mark.parametrize("how", ["command", "process"])
def test_exit_status_78_escalates_at_once(how: str, tmp_path: Path) -> None:
    """EX_CONFIG: nothing to retry. The root gives up on the first exit although its
    budget allows 100 restarts; the sibling is stopped; the error says why."""
    if how == "command":
        app = COMMAND.spec("app", ["sh", "-c", "exit 78"])
    else:
        app = failing(PROCESS, "app", tmp_path, "exit78")
    spec = tree(THREAD.forever("bystander"), app, intensity=otp.SlidingWindow(100, 5),
                decider=otp.Decider({otp.OnExitCode(78): otp.Decision.ESCALATE}))
    recorder = Recorder()
    with pytest.raises(otp.IntensityExceededError) as caught:
        otp.run(spec, handle_signals=False, on_report=recorder)
    error = caught.value
    assert error.reason == reasons.Shutdown()
    [(child, record)] = error.history
    assert (child, record.reason) == ("app", reasons.Exited(78))
    assert "gave up: exited with status 78 escalated by the failure decider" in str(error)
    assert "app: " in str(error)
    [exited] = recorder.of(rp.ChildExited, "app")
    assert exited.outcome == "escalate"
    assert len(recorder.of(rp.ChildStarted, "app")) == 1
    assert [r.child_id for r in recorder.of(rp.ChildTerminated)] == ["bystander"]


def test_a_process_child_killed_from_outside_restarts_after_the_deciders_delay() -> None:
    decider = otp.Decider({otp.OnSignal(signal.SIGKILL): otp.Decision.restart(delay=0.5)})
    spec = tree(PROCESS.forever("w", decider=decider))
    recorder = Recorder()
    with otp.start(spec, on_report=recorder) as sup:
        pid = pid_of(sup, "w")
        os.kill(pid, signal.SIGKILL)  # not the supervisor's doing: Signaled, not Killed
        [exited] = recorder.wait_kind(rp.ChildExited, "w")
        assert exited.reason == reasons.Signaled(signal.SIGKILL)
        assert exited.outcome == "restart"
        [scheduled] = recorder.wait_kind(rp.RestartScheduled, "w")
        assert scheduled.delay == 0.5
        started = recorder.wait_kind(rp.ChildStarted, "w", count=2)[1]
        assert started.restarts == 1
        assert started.time - exited.time >= 0.5 - 0.01  # loop timers may run 1 tick early
        assert pid_of(sup, "w") != pid
        wait_gone([pid])
    assert sup.wait(DEFAULT_TIMEOUT) == reasons.Shutdown()


def test_an_exit_code_rule_can_shut_the_tree_down() -> None:
    decider = otp.Decider({otp.OnExitCode(3): otp.Decision.SHUTDOWN_TREE})
    spec = tree(TASK.forever("first"), COMMAND.spec("job", ["sh", "-c", "exit 3"]),
                THREAD.forever("last"), decider=decider)
    recorder = Recorder()
    assert otp.run(spec, handle_signals=False, on_report=recorder) == reasons.Shutdown()
    [exited] = recorder.of(rp.ChildExited, "job")
    assert (exited.reason, exited.outcome) == (reasons.Exited(3), "shutdown_tree")
    assert [r.child_id for r in recorder.of(rp.ChildTerminated)] == ["last", "first"]


# ---------------------------------------------------------------------- sentinels

@pytest.mark.parametrize("kind", RAISING_KINDS, ids=str)
def test_do_not_restart_raised_by_a_child_keeps_it_stopped(kind: Kind, tmp_path: Path) -> None:
    spec = tree(failing(kind, "done", tmp_path, "do_not_restart"), THREAD.forever("other"))
    recorder = Recorder()
    with otp.start(spec, on_report=recorder) as sup:
        [exited] = recorder.wait_kind(rp.ChildExited, "done")
        assert exited.reason == reasons.NoRestart("nothing left to do")
        assert exited.outcome == "keep"  # a permanent child, yet not restarted
        assert states(sup) == {"done": "stopped", "other": "running"}
        assert len(recorder.of(rp.ChildStarted, "done")) == 1
    assert sup.wait(DEFAULT_TIMEOUT) == reasons.Shutdown()
    assert recorder.of(rp.IntensityExceeded) == []


@pytest.mark.parametrize("kind", RAISING_KINDS, ids=str)
def test_shutdown_tree_raised_by_a_nested_child_stops_the_whole_tree_in_order(
    kind: Kind, tmp_path: Path
) -> None:
    pool = otp.SupervisorSpec(id="pool", children=[
        THREAD.forever("a"), failing(kind, "last", tmp_path, "shutdown_tree", after=0.1)])
    spec = tree(TASK.forever("first"), pool, THREAD.forever("after"))
    recorder = Recorder()
    assert otp.run(spec, handle_signals=False, on_report=recorder) == reasons.Shutdown()
    [exited] = recorder.of(rp.ChildExited, "last")
    assert exited.reason == reasons.TreeShutdown("all work done")
    assert exited.outcome == "shutdown_tree"
    assert [f"{r.where}/{r.child_id}" for r in recorder.of(rp.ChildTerminated)] == [
        "root/after", "root/pool/a", "root/pool", "root/first"]
    assert recorder.of(rp.IntensityExceeded) == []


# ----------------------------------------------------- the other decisions, for real

def test_ignore_restarts_without_charging_the_budget(tmp_path: Path) -> None:
    """A root that gives up on the first charged restart absorbs three ignored ones."""
    spec = tree(failing(TASK, "flaky", tmp_path, "value", times=3), TASK.forever("other"),
                intensity=otp.SlidingWindow(0, 60),
                decider=otp.Decider({ValueError: otp.Decision.IGNORE}))
    recorder = Recorder()
    with otp.start(spec, on_report=recorder) as sup:
        started = recorder.wait_kind(rp.ChildStarted, "flaky", count=4)
        assert [r.restarts for r in started] == [0, 1, 2, 3]
        assert [r.outcome for r in recorder.of(rp.ChildExited)] == ["ignore"] * 3
        assert states(sup) == {"flaky": "running", "other": "running"}
    assert sup.wait(DEFAULT_TIMEOUT) == reasons.Shutdown()
    assert recorder.of(rp.IntensityExceeded) == []


def test_the_supervisors_decider_is_the_default_and_a_childs_own_overrides_it(
    tmp_path: Path,
) -> None:
    later = otp.Decider({ValueError: otp.Decision.restart(delay=0.3)})
    spec = tree(
        failing(TASK, "plain", tmp_path, "value"),
        failing(TASK, "table", tmp_path, "value", decider=otp.Decider()),
        failing(THREAD, "later", tmp_path, "value", decider=later),
        decider=otp.Decider({ValueError: otp.Decision.STOP}),
    )
    recorder = Recorder()
    with otp.start(spec, on_report=recorder) as sup:
        recorder.wait_kind(rp.ChildStarted, "table", count=2)
        recorder.wait_kind(rp.ChildStarted, "later", count=2)
        outcomes = {r.child_id: r.outcome for r in recorder.wait_kind(rp.ChildExited, count=3)}
        assert outcomes == {"plain": "keep", "table": "restart", "later": "restart"}
        assert [(r.child_id, r.delay) for r in recorder.of(rp.RestartScheduled)] == [
            ("later", 0.3)]
        assert states(sup) == {"plain": "stopped", "table": "running", "later": "running"}
    assert sup.wait(DEFAULT_TIMEOUT) == reasons.Shutdown()
