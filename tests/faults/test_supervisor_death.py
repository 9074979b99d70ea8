"""The supervising process dies in the middle of a restart storm: no process it
started, at any depth, survives it by more than a second.

The tree (death_tree.py) runs in a subprocess whose environment carries a token;
every process descended from it inherits the token, wherever it is reparented when
its parent dies, so the test finds them all, including the helpers (the guardian,
the fork server) and those of the subtree that runs in a process of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
import targets as runtime_targets
from kit import PROCESS, THREAD, describe_pids, tree

import otp_py as otp
from otp_py import reasons
from otp_py import reports as rp
from tests.faults.helpers import (
    Baseline,
    marked,
    read_line,
    script,
    stderr_of,
    wait_all_gone,
    wait_until,
)
from tests.reports import DEFAULT_TIMEOUT, Recorder

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "death_tree.py")
SURVIVAL = 1.0
"""The longest any descendant may outlive the supervising process, in seconds."""
STOP_BOUND = 6.0
"""Generous: the orderly stops (sigterm-run, the exceptions) take about a second."""


@contextlib.contextmanager
def tree_process(mode: str, fork: bool,
                 tmp_path: Any) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    with script(tmp_path, SCRIPT, mode, *(["fork"] if fork else [])) as running:
        yield running


def _expected_status(mode: str) -> int:
    return {"sigkill": -signal.SIGKILL, "sigterm-unhandled": -signal.SIGTERM,
            "sigterm-run": 0, "exception-start": 1, "exception-supervise": 1}[mode]


@pytest.mark.parametrize(("mode", "fork"), [
    pytest.param("sigkill", True, id="sigkill"),
    pytest.param("sigterm-unhandled", True, id="sigterm-unhandled"),
    pytest.param("sigterm-run", True, id="sigterm-run"),
    pytest.param("exception-start", False, id="exception-start"),
    # multiprocessing's exit hook joins a fork or spawn child: the tree must be stopped
    # before it runs (found by this suite: the program never exited)
    pytest.param("exception-start", True, id="exception-start-fork"),
    pytest.param("exception-supervise", True, id="exception-supervise"),
])
def test_no_descendant_outlives_a_dying_supervisor_by_more_than_a_second(
    mode: str, fork: bool, tmp_path: Any
) -> None:
    with tree_process(mode, fork, tmp_path) as (proc, token):
        assert json.loads(read_line(proc, DEFAULT_TIMEOUT, tmp_path))["ready"]
        before = marked(token)
        # the script, its guardian and fork server; at the root: sleepers (+2), cmd (+1),
        # crasher; mid: forked (+1), sleepers (+1), cmd (+1), crasher; leaf: its process,
        # guardian, fork server, pool (+2 workers), cmd (+1), crasher (a crasher may be
        # between two lives, and the exception modes may already be stopping)
        if not mode.startswith("exception"):
            assert len(before) >= 20, describe_pids(before)
        if mode == "sigkill":
            proc.send_signal(signal.SIGKILL)
        elif mode.startswith("sigterm"):
            proc.send_signal(signal.SIGTERM)
        status = proc.wait(timeout=STOP_BOUND)
        wait_all_gone(token, time.monotonic(), SURVIVAL, f"the supervisor ({mode})")
        assert status == _expected_status(mode)
        if mode == "sigterm-run":
            assert read_line(proc, 5, tmp_path).strip() == "result: Shutdown(term=NO_TERM)"
        if mode.startswith("exception"):
            assert "RuntimeError: boom in the middle of restarts" in stderr_of(tmp_path)


# ------------------------- the supervisor's own decision code raising mid-restart


class _ExplodingBudget(otp.Budget):
    def on_failure(self, child_id: str, now: float) -> otp.Verdict:
        raise RuntimeError("budget exploded")


class ExplodingPolicy(otp.IntensityPolicy):
    """A user-written intensity policy with a bug."""

    def budget(self, random: Any) -> otp.Budget:
        return _ExplodingBudget()


def _buggy_rule(reason: reasons.ExitReason) -> bool:
    return reason.code == 3  # type: ignore[attr-defined]  # a Crashed has no code


@pytest.mark.parametrize("where", ["decider", "intensity"])
def test_an_exception_in_the_supervisors_decision_mid_restart_ends_the_tree(
    where: str,
) -> None:
    """User code the supervisor calls to decide about an exit (a decider rule, an
    intensity policy) raises: the supervisor stops its children in order and exits
    with the error, which reaches the caller. (Found by this suite: the error was
    logged and dropped, the dead child shown running for ever, and any stop hung.)"""
    leaks = Baseline()
    recorder = Recorder()
    crasher = PROCESS.spec("crasher", runtime_targets.raise_error,
                           decider=otp.Decider({_buggy_rule: otp.Decision.STOP})
                           if where == "decider" else None)
    flags = {"intensity": ExplodingPolicy()} if where == "intensity" else {}
    sup = otp.start(tree(PROCESS.forever("steady"), THREAD.forever("thread"), crasher,
                         **flags), on_report=recorder)
    try:
        # errors always propagate: the supervisor exits (stopping its children in
        # order) and its caller is told why
        recorder.wait_for(lambda r: isinstance(r, rp.SupervisorExited), timeout=3)
        with pytest.raises(otp.SupervisorExitError) as caught:
            sup.wait(10)
        assert ("budget exploded" if where == "intensity" else "AttributeError") in str(
            caught.value)
        assert [r.child_id for r in recorder.of(rp.ChildTerminated)] == ["thread", "steady"]
    finally:
        if sup.running:
            _end_a_stuck_tree(sup)
        leaks.assert_clean()


def _end_a_stuck_tree(sup: otp.Supervisor) -> None:
    """Clean-up should the bug come back, reaching into the runtime (a stop would
    hang, and the rest of the run with it): ask
    the tree to stop (so that nothing is restarted), kill every child through its
    runner, on the tree's loop, so each is reaped and its descriptors closed; then
    stop the loop, which ends the tree's thread."""
    tree_, loop = sup._tree, sup._tree.loop
    children = tree_.root.children

    def kill_all() -> None:
        tree_.request_stop()
        for runner in list(children.values()):
            runner.kill()

    loop.call_soon_threadsafe(kill_all)
    deadline = time.monotonic() + 10
    while children and time.monotonic() < deadline:
        time.sleep(0.01)
    loop.call_soon_threadsafe(loop.stop)
    sup._thread.join(10)  # type: ignore[union-attr]


# ------------------------------------ descendants that left their process group

ESCAPE_TREE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "escape_tree.py")


def test_descendants_that_left_their_group_do_not_outlive_a_sigkilled_supervisor(
    tmp_path: Any,
) -> None:
    """A ``setsid`` grandchild and a daemon (double fork + setsid) of a process and
    of a command child: the supervisor is SIGKILLed, and within a second nothing is
    left (the guardian ``cgroup.kill``\\ s each child's cgroup). (Found by an audit:
    both survived for ever; the guardian killed process groups only.)"""
    with script(tmp_path, ESCAPE_TREE, str(tmp_path)) as (proc, token):
        ready = json.loads(read_line(proc, DEFAULT_TIMEOUT, tmp_path))
        assert len(ready["pids"]) == 8
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=STOP_BOUND) == -signal.SIGKILL
        wait_all_gone(token, time.monotonic(), SURVIVAL, "the SIGKILLed supervisor")


@pytest.mark.parametrize("children", ["plain", "escaping"])
def test_a_restarted_guardian_is_told_every_live_group(children: str, tmp_path: Any) -> None:
    """The guardian is killed (by a hostile child, the OOM killer...): a new one is
    started at once and told every live process group and cgroup, not only those
    created after it; the supervisor is then SIGKILLed, and within a second nothing
    is left. ``plain``: command children whose grandchildren stay in their group;
    ``escaping``: the descendants that leave it, as above. (Found by an audit: the
    new guardian was started only on the next child start, and knew only the groups
    created after it.)"""
    args = (str(tmp_path), *(["plain"] if children == "plain" else []))
    with script(tmp_path, ESCAPE_TREE, *args, stdin=True) as (proc, token):
        ready = json.loads(read_line(proc, DEFAULT_TIMEOUT, tmp_path))
        assert len(ready["pids"]) == (4 if children == "plain" else 8)
        first = ready["guardian"]
        os.kill(first, signal.SIGKILL)
        assert proc.stdin is not None

        def new_guardian() -> int | None:
            assert proc.stdin is not None
            proc.stdin.write(b"guardian\n")
            pid = json.loads(read_line(proc, DEFAULT_TIMEOUT, tmp_path))["guardian"]
            return pid if pid != first and psutil.pid_exists(pid) else None

        second = wait_until(new_guardian, "a new guardian")
        assert second in marked(token)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=STOP_BOUND) == -signal.SIGKILL
        wait_all_gone(token, time.monotonic(), SURVIVAL, "the guardian, then the supervisor")
