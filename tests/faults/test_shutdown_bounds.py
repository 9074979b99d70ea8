"""Shutdown is bounded and ordered, even when every child ignores its stop.

A supervisor stops its children one at a time, in reverse start order, waiting for
each at most its shutdown timeout. So a tree stops within its *stop bound*: the sum,
over the children a supervisor waits for, of each one's bound, where a worker's
bound is its shutdown timeout and a nested supervisor's is the lesser of its own
shutdown timeout and its children's bound, all the way down the longest path.
Stubborn children make a stop take that long; nothing makes it take longer, beyond a
small margin for the work of killing and reaping. A second SIGINT to ``otp.run()``
skips the waiting and kills at once.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
import targets as runtime_targets
from kit import PROCESS, TASK, THREAD, tree

import otp_py as otp
from otp_py import reasons
from otp_py import reports as rp
from tests.faults import targets
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

MARGIN = 1.0
"""Seconds a stop may take beyond its bound (killing, reaping, a subtree's exit)."""

SIGINT_TREE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sigint_tree.py")


def stop_bound(spec: Any) -> float:
    """How long a supervisor waits for ``spec``, its child, to stop."""
    shutdown = 0.0 if spec.shutdown is otp.BRUTAL_KILL else float(spec.shutdown)
    if not spec.is_supervisor:
        return shutdown
    return min(shutdown, tree_bound(spec))


def tree_bound(spec: otp.SupervisorSpec) -> float:
    """How long ``spec`` takes to stop all its children, at most."""
    return sum(stop_bound(child) for child in spec.children)


def stubborn(backend: str, name: str, log: str, shutdown: float) -> otp.ChildSpec:
    """A child that ignores its graceful stop and logs ``term NAME`` when it gets it
    (and ``up NAME PID`` when a process starts)."""
    if backend == "command":
        return otp.ChildSpec.command(name, targets.command_stubborn_logged(log, name),
                                     shutdown=shutdown)
    start = {"process": targets.proc_stubborn_logged,
             "thread": targets.thread_stubborn_logged,
             "asyncio": targets.task_stubborn_logged}[backend]
    return otp.ChildSpec(id=name, start=start, args=(log, name), backend=backend,
                         ready=True, shutdown=shutdown)


def log_lines(log: str, word: str) -> list[list[str]]:
    if not os.path.exists(log):
        return []
    with open(log) as f:
        return [line.split()[1:] for line in f if line.split()[0] == word]


def wait_up(log: str, names: list[str]) -> dict[str, int]:
    """Wait until the processes ``names`` have logged that they are up (commands
    have set their trap then); return their pids."""
    def up() -> dict[str, int]:
        found = {name: int(pid) for name, pid in log_lines(log, "up")}
        return found if set(names) <= set(found) else {}

    found: dict[str, int] = wait_until(up, f"{names} to be up")
    return found


def terminated(recorder: Recorder, path: tuple[str, ...]) -> list[tuple[str, Any]]:
    return [(r.child_id, r.reason) for r in recorder.of(rp.ChildTerminated)
            if r.path == path]


def test_a_tree_of_stubborn_children_stops_within_its_bound_in_reverse_order(
    tmp_path: Any, release_threads: None
) -> None:
    """Three levels, the deepest a subtree in a process of its own; every child of
    every backend ignores its stop, so each is waited out: the stop takes the whole
    bound, and no more than a margin beyond it. Every level stops its children in
    reverse start order: the stop requests reach the children last started first,
    depth first."""
    leaks = Baseline()
    recorder = Recorder()
    log = os.path.join(str(tmp_path), "log")
    s = 0.25
    spec = tree(
        stubborn("process", "a", log, s),
        stubborn("command", "b", log, s),
        stubborn("thread", "c", log, s),
        otp.SupervisorSpec(id="mid", children=[
            stubborn("asyncio", "d", log, s),
            stubborn("process", "e", log, s),
            otp.SupervisorSpec(id="leaf", backend="process", children=[
                stubborn("process", "f", log, s),
                stubborn("command", "g", log, s),
            ]),
        ]),
    )
    bound = tree_bound(spec)
    assert bound == pytest.approx(7 * s)
    sup = otp.start(spec, on_report=recorder)
    pids = wait_up(log, ["a", "b", "e", "f", "g"])
    began = time.monotonic()
    assert sup.stop(bound + 30) == reasons.Shutdown()
    took = time.monotonic() - began
    assert took <= bound + MARGIN, f"took {took:.2f} s; bound {bound:.2f} s"
    assert took >= bound * 0.9  # each one was waited out: they were stubborn
    assert [name for (name,) in log_lines(log, "term")] == ["g", "f", "e", "d", "c", "b", "a"]
    killed = reasons.Killed()
    assert terminated(recorder, ("root",)) == [
        ("mid", reasons.Shutdown()), ("c", reasons.Unstoppable(s)), ("b", killed),
        ("a", killed)]
    assert terminated(recorder, ("root", "mid")) == [
        ("leaf", reasons.Shutdown()), ("e", killed), ("d", killed)]
    targets.RELEASE.set()
    leaks.assert_clean(timeout=1.0)
    assert sorted(pids) == ["a", "b", "e", "f", "g"]


def test_a_supervisors_own_shutdown_timeout_cuts_its_childrens_bound(tmp_path: Any) -> None:
    """A nested supervisor whose children would need longer than its own shutdown
    timeout is killed when that runs out, with everything under it: an inline one
    kills its children at once, a subtree process is killed and its children die
    with it."""
    leaks = Baseline()
    recorder = Recorder()
    log = os.path.join(str(tmp_path), "log")
    s, cut = 0.3, 0.45
    spec = tree(
        stubborn("process", "x", log, s),
        otp.SupervisorSpec(id="mid", shutdown=cut, children=[
            stubborn("process", "y", log, s), stubborn("command", "z", log, s)]),
        otp.SupervisorSpec(id="leaf", backend="process", shutdown=cut, children=[
            stubborn("process", "u", log, s), stubborn("command", "v", log, s)]),
    )
    bound = tree_bound(spec)
    assert bound == pytest.approx(s + 2 * cut)
    sup = otp.start(spec, on_report=recorder)
    pids = wait_up(log, ["x", "y", "z", "u", "v"])
    began = time.monotonic()
    assert sup.stop(bound + 30) == reasons.Shutdown()
    took = time.monotonic() - began
    assert bound * 0.9 <= took <= bound + MARGIN, f"took {took:.2f} s; bound {bound:.2f} s"
    assert terminated(recorder, ("root",)) == [
        ("leaf", reasons.Killed()), ("mid", reasons.Killed()), ("x", reasons.Killed())]
    # mid was killed while it waited for z: it killed z and y at once
    assert terminated(recorder, ("root", "mid")) == [
        ("z", reasons.Killed()), ("y", reasons.Killed())]
    leaks.assert_clean(timeout=1.0)
    assert len(pids) == 5


def test_a_second_sigint_during_shutdown_kills_at_once(tmp_path: Any) -> None:
    """otp.run(): the first SIGINT starts an orderly stop (which, every child being
    stubborn with a 10 s timeout, would take over a minute); a second one, while the
    first child still ignores its stop, kills everything left at once, at every
    level, and run() returns."""
    log = os.path.join(str(tmp_path), "log")
    with script(tmp_path, SIGINT_TREE, log) as (proc, token):
        lines = []
        while (line := read_line(proc, DEFAULT_TIMEOUT, tmp_path).strip()) != "ready":
            lines.append(line)
        pids = wait_up(log, ["a", "b", "d", "e", "f", "g"])
        assert len(marked(token)) >= 12
        proc.send_signal(signal.SIGINT)
        # the orderly stop begins with the last child started (the subtree's last)
        wait_until(lambda: log_lines(log, "term"), "the first stop request")
        assert log_lines(log, "term") == [["g"]]
        proc.send_signal(signal.SIGINT)
        forced = time.monotonic()
        status = proc.wait(timeout=DEFAULT_TIMEOUT)
        took = time.monotonic() - forced
        wait_all_gone(token, time.monotonic(), 1.0, "run()")
        assert status == 0, stderr_of(tmp_path)
        assert proc.stdout is not None
        lines += proc.stdout.read().decode().splitlines()
    assert took < 3.0, lines  # against a stop bound of 70 s
    assert lines[-1] == "result: Shutdown(term=NO_TERM)"
    # Everything left was killed at once, at every level. A child the kill reached
    # before the stop sequence did is reported as having ended ("exited") rather than
    # "terminated"; the asyncio child swallows one cancellation, so it ends at the
    # second (killed) or, if both came before it ran, after the kill's grace of a
    # second (unstoppable).
    unstoppable = "unstoppable: still running 1 s after its stop request"
    at_root = ended(lines, "root")
    assert at_root.pop("c") in ("killed", unstoppable)
    assert at_root == {"leaf": "killed", "mid": "killed", "b": "killed", "a": "killed"}
    assert ended(lines, "root/mid") == {"e": "killed", "d": "killed"}
    # the one the orderly stop was waiting for
    assert next(line for line in lines if line.startswith("root: terminated")) == (
        "root: terminated leaf: killed")
    assert pids


def ended(lines: list[str], where: str) -> dict[str, str]:
    """How each child of ``where`` was reported ended, from the reports' lines."""
    found: dict[str, str] = {}
    for line in lines:
        if not line.startswith(where + ": "):
            continue
        rest = line[len(where) + 2:]
        if rest.startswith("terminated "):
            child, _, reason = rest[len("terminated "):].partition(": ")
        elif " exited: " in rest and not rest.startswith("supervisor "):
            child, _, reason = rest.partition(" exited: ")
        else:
            continue
        found[child] = reason
    return found


def test_a_process_child_running_a_pool_stops_gracefully() -> None:
    """Its SIGTERM must not reach the pool's workers first: killed under the pool,
    one of them holding the pool's queue lock, they would deadlock the child's own
    pool.terminate() and the stop would wait out the whole shutdown timeout."""
    leaks = Baseline()
    recorder = Recorder()
    shutdown = 2.0
    spec = tree(PROCESS.spec("pool", runtime_targets.with_pool, args=(2,), ready=True,
                             shutdown=shutdown), THREAD.forever("other"), TASK.forever("k"))
    with otp.start(spec, on_report=recorder) as sup:
        began = time.monotonic()
        sup.terminate_child("pool")
        took = time.monotonic() - began
    assert recorder.of(rp.ChildTerminated, "pool")[0].reason == reasons.Shutdown()
    assert took < shutdown / 2
    leaks.assert_clean()
