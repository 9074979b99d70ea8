"""An asyncio child that swallows every cancellation cannot hang its tree.

``while True: try: await sleep(1) except CancelledError: pass`` ignores the graceful
stop and the kill alike. The supervisor reports it unstoppable a kill's grace after
its shutdown timeout and carries on; the task is then closed, so nothing of it runs
on, and nothing that ends a loop (``Supervisor.stop()``, ``otp.run()``, ``otp-py run``,
the interpreter's exit hook) waits for it. Each of them must end within the child's
shutdown timeout, the kill's grace and a margin.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import otp_py as otp
from otp_py import reasons
from otp_py import reports as rp
from otp_py.backends.task import KILL_GRACE
from tests.cli.clitools import Cli
from tests.faults.helpers import read_line, script, stderr_of
from tests.hardening import stubborn_tree
from tests.reports import DEFAULT_TIMEOUT, Recorder

SHUTDOWN = stubborn_tree.SHUTDOWN
MARGIN = 3.0
"""Seconds beyond the shutdown timeout and the kill's grace (reaping, a loaded
machine, an interpreter's exit)."""
BOUND = SHUTDOWN + KILL_GRACE + MARGIN
"""A stop with the stubborn child ends within this many seconds."""
CLOSE_GRACE = 1.0
"""What otp_py.runtime.loop.CLOSE_GRACE gives a leftover task (spelt out here so that
the test runs, and fails by hanging, on the code before that module existed)."""
HANG = 15.0
"""How long a test waits before calling it a hang (before the fix: for ever)."""

TREE_SCRIPT = stubborn_tree.__file__


async def counted_stubborn(live: list[object]) -> None:
    """Swallows every cancellation; in ``live`` while it runs (ready once it is)."""
    me = object()
    live.append(me)
    otp.notify_ready()
    try:
        while True:
            try:  # noqa: SIM105 - written as the issue shows it
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                pass
    finally:
        live.remove(me)


async def crash_once(runs: list[int]) -> None:
    runs.append(1)
    if len(runs) == 1:
        await asyncio.sleep(0.1)
        raise RuntimeError("the first incarnation crashes")
    await asyncio.Event().wait()


async def spawns_a_stubborn_helper(helpers: list[asyncio.Task[None]]) -> None:
    """A well-behaved child that leaves a stubborn task of its own on the loop."""
    helpers.append(asyncio.get_running_loop().create_task(stubborn_tree.stubborn(),
                                                          name="stubborn helper"))
    await asyncio.Event().wait()


@contextlib.contextmanager
def started(spec: otp.SupervisorSpec, name: str,
            recorder: Recorder | None = None) -> Iterator[otp.Supervisor]:
    """``otp.start(spec)``, stopped on the way out if a failed test left it running
    (with a timeout: before the fix, its loop's thread never ends)."""
    sup = otp.start(spec, on_report=recorder, name=name)
    try:
        yield sup
    finally:
        if tree_threads(name):
            sup.stop(timeout=HANG)


def tree_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name and t.is_alive()]


def stop_within_bound(sup: otp.Supervisor, bound: float = BOUND) -> Any:
    started = time.monotonic()
    result = sup.stop(timeout=HANG)
    took = time.monotonic() - started
    assert result is not None, f"stop() did not return within {HANG} s: the tree's thread hangs"
    assert took < bound, f"stop() took {took:.2f} s (bound {bound} s)"
    return result


def unstoppable(recorder: Recorder, child: str) -> rp.ChildUnstoppable:
    found: list[rp.ChildUnstoppable] = recorder.wait_kind(rp.ChildUnstoppable, child)
    assert "ignored cancellation" in str(found[0].detail)
    return found[0]


# ------------------------------------------------------------ in this process


def test_stop_returns_within_the_shutdown_timeout_and_the_task_is_gone() -> None:
    live: list[object] = []
    recorder = Recorder()
    spec = otp.SupervisorSpec(id="root", children=[
        otp.ChildSpec.task("stubborn", counted_stubborn, args=(live,), shutdown=SHUTDOWN,
                           ready=True),
    ])
    name = "stubborn-task-tree-1"
    with started(spec, name, recorder) as sup:
        assert len(live) == 1
        assert stop_within_bound(sup) == reasons.Shutdown()
        unstoppable(recorder, "stubborn")
        [terminated] = recorder.of(rp.ChildTerminated, "stubborn")
        assert terminated.reason == reasons.Unstoppable(KILL_GRACE)
        assert live == []  # its coroutine was closed: its finally block ran
        assert tree_threads(name) == []  # the loop's thread has ended


def test_a_restart_carries_on_past_a_task_swallowing_cancellation() -> None:
    """one_for_all: a sibling's crash stops the stubborn task, which is reported
    unstoppable and abandoned; the plan goes on, and the old incarnation does not
    run beside the new one."""
    live: list[object] = []
    runs: list[int] = []
    recorder = Recorder()
    spec = otp.SupervisorSpec(id="root", strategy=otp.OneForAll(), children=[
        otp.ChildSpec.task("stubborn", counted_stubborn, args=(live,), shutdown=SHUTDOWN,
                           ready=True),
        otp.ChildSpec.task("crasher", crash_once, args=(runs,)),
    ])
    name = "stubborn-task-tree-2"
    with started(spec, name, recorder) as sup:
        restarted = recorder.wait_for(
            lambda r: isinstance(r, rp.ChildStarted) and r.child_id == "crasher"
            and r.restarts == 1)[0]
        unstoppable(recorder, "stubborn")
        [terminated] = recorder.of(rp.ChildTerminated, "stubborn")
        assert terminated.reason == reasons.Unstoppable(KILL_GRACE)
        assert restarted.time - terminated.time < MARGIN
        assert [(r.child_id, r.restarts) for r in recorder.of(rp.ChildStarted)][2:] == [
            ("stubborn", 1), ("crasher", 1)]
        assert all(c.state == "running" for c in sup.which_children())
        assert len(live) == 1  # the new incarnation only
        assert stop_within_bound(sup) == reasons.Shutdown()
        assert live == []
        assert tree_threads(name) == []


def test_a_nested_supervisor_stops_past_a_task_swallowing_cancellation() -> None:
    live: list[object] = []
    recorder = Recorder()
    spec = otp.SupervisorSpec(id="root", children=[
        otp.SupervisorSpec(id="pool", children=[
            otp.ChildSpec.task("stubborn", counted_stubborn, args=(live,),
                               shutdown=SHUTDOWN, ready=True),
        ]),
    ])
    name = "stubborn-task-tree-3"
    with started(spec, name, recorder) as sup:
        since = time.monotonic()
        sup.terminate_child("pool")
        assert time.monotonic() - since < BOUND
        unstoppable(recorder, "stubborn")
        assert live == []
        [pool] = sup.which_children()
        assert pool.id == "pool" and pool.state != "running"
        sup.restart_child("pool")  # the tree carries on
        assert len(live) == 1
        assert stop_within_bound(sup) == reasons.Shutdown()
        assert recorder.of(rp.ChildUnstoppable, "stubborn")[1:]  # the second one, too
        assert live == []
        assert tree_threads(name) == []


def test_a_task_left_behind_by_a_child_does_not_hold_the_loop_open(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Not a child: a task a child started, swallowing every cancellation, left on the
    loop when the tree has ended. The loop is closed without it after a grace."""
    helpers: list[asyncio.Task[None]] = []
    spec = otp.SupervisorSpec(id="root", children=[
        otp.ChildSpec.task("spawner", spawns_a_stubborn_helper, args=(helpers,)),
    ])
    name = "stubborn-task-tree-4"
    with started(spec, name) as sup:
        with caplog.at_level(logging.WARNING, logger="otp_py"):
            assert stop_within_bound(sup, CLOSE_GRACE + MARGIN) == reasons.Shutdown()
        assert tree_threads(name) == []
        [helper] = helpers
        assert helper.done()
        assert any("stubborn helper (closed)" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------ in a subprocess


def wait_for_line(proc: Any, tmp_path: Path, text: str, lines: list[str]) -> None:
    deadline = time.monotonic() + DEFAULT_TIMEOUT
    while text not in lines:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {text!r} line; got {lines}\n{stderr_of(tmp_path)}"
        lines.append(read_line(proc, remaining, tmp_path).rstrip("\n"))


def finish(proc: Any, since: float, lines: list[str], tmp_path: Path) -> int:
    """Wait (not for ever) for the script to exit; return its status."""
    try:
        status: int = proc.wait(timeout=HANG)
    except Exception:
        raise AssertionError(f"the script still runs {HANG} s later: it hangs; "
                             f"output: {lines}\n{stderr_of(tmp_path)}") from None
    took = time.monotonic() - since
    assert proc.stdout is not None
    lines += proc.stdout.read().decode().splitlines()
    assert took < BOUND, f"it took {took:.2f} s to exit (bound {BOUND} s): {lines}"
    return status


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_run_ends_on_a_signal_and_the_interpreter_exits(
    signum: signal.Signals, tmp_path: Path
) -> None:
    lines: list[str] = []
    with script(tmp_path, TREE_SCRIPT, "run") as (proc, _token):
        wait_for_line(proc, tmp_path, "ready", lines)
        proc.send_signal(signum)
        status = finish(proc, time.monotonic(), lines, tmp_path)
    assert status == 0, stderr_of(tmp_path)
    assert lines[-1] == "result: Shutdown(term=NO_TERM)"
    assert any("root: stubborn did not stop and cannot be killed" in line for line in lines)
    assert "root: terminated stubborn: unstoppable: still running 1 s after its stop " \
           "request" in lines


def test_a_started_tree_left_to_the_exit_hook_lets_the_interpreter_exit(
    tmp_path: Path,
) -> None:
    lines: list[str] = []
    with script(tmp_path, TREE_SCRIPT, "start-then-exit") as (proc, _token):
        wait_for_line(proc, tmp_path, "leaving the tree to the exit hook", lines)
        status = finish(proc, time.monotonic(), lines, tmp_path)
    assert status == 0, stderr_of(tmp_path)
    assert any("root: stubborn did not stop and cannot be killed" in line for line in lines)
    assert lines[-1] == "root: supervisor exited: shutdown"


def test_a_task_swallowing_generator_exit_too_is_abandoned_all_the_same(
    tmp_path: Path,
) -> None:
    """A bare ``except:`` swallows even the closing of its coroutine: it cannot run
    its clean-up, and says so, but it does not hold the tree or the interpreter."""
    lines: list[str] = []
    with script(tmp_path, TREE_SCRIPT, "bare") as (proc, _token):
        wait_for_line(proc, tmp_path, "ready", lines)
        started = time.monotonic()
        wait_for_line(proc, tmp_path, "terminated", lines)
        assert time.monotonic() - started < BOUND
        status = finish(proc, time.monotonic(), lines, tmp_path)
    assert status == 0, stderr_of(tmp_path)
    assert any("root: deaf did not stop and cannot be killed: task 'root/deaf' ignored "
               "cancellation and GeneratorExit" in line for line in lines)
    assert "coroutine ignored GeneratorExit" in stderr_of(tmp_path)


# ------------------------------------------------------------ otp-py run


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_otp_py_run_ends_on_a_signal(signum: signal.Signals, runtime: Path) -> None:
    with Cli(["run", "tests.hardening.stubborn_tree:TREE", "--view", "plain"],
             runtime) as cli:
        cli.wait_for("root: supervisor started")
        os.kill(cli.proc.pid, signum)
        since = time.monotonic()
        try:
            status = cli.wait(timeout=HANG)
        except Exception:
            raise AssertionError(f"otp-py run still runs {HANG} s after {signum.name}: it "
                                 f"hangs; output:\n{cli.output}") from None
        took = time.monotonic() - since
    assert status == 0, cli.output
    assert took < BOUND, f"it took {took:.2f} s (bound {BOUND} s):\n{cli.output}"
    assert "root: stubborn did not stop and cannot be killed" in cli.output
    assert "root: supervisor exited: shutdown" in cli.output
