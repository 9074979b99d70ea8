"""Crash history: each child's bounded record of its last exits, and the history that
travels with a supervisor's surrender (its IntensityExceeded report, and the
IntensityExceededError that run() and wait() raise), so the last message says why."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from kit import COMMAND, PROCESS, SPAWN, TASK, THREAD, Kind, tree

import otp_py as otp
from otp_py import reasons
from otp_py import reports as rp
from otp_py._core import events as ev
from otp_py._core.supervisor import HISTORY_LENGTH, RECENT_LENGTH, SupervisorCore
from tests.beyond import targets
from tests.reports import DEFAULT_TIMEOUT, Recorder


async def idle() -> None:
    """Workers never run in a simulation or a bare core."""


def worker(child_id: str, **fields: Any) -> otp.ChildSpec:
    return otp.ChildSpec.task(child_id, idle, **fields)


# --------------------------------------------------------- in the decision core

class Driven:
    """A bare core whose children start the moment they are asked to."""

    def __init__(self, spec: otp.SupervisorSpec) -> None:
        self.core = SupervisorCore(spec)
        self.refs: dict[str, int] = {}
        self.reports: list[rp.Report] = []
        self.handle(ev.Init(), 0.0)

    def handle(self, event: ev.Event, now: float) -> None:
        queue = [event]
        while queue:
            for action in self.core.handle(queue.pop(0), now):
                if isinstance(action, ev.StartChild):
                    self.refs[action.child_id] = action.ref
                    queue.append(ev.ChildUp(action.ref))
                elif isinstance(action, ev.Emit):
                    self.reports.append(action.report)

    def crash(self, child_id: str, reason: reasons.ExitReason, now: float,
              stderr: str | None = None) -> None:
        self.handle(ev.ChildDown(self.refs[child_id], reason, stderr), now)


def test_a_childs_history_is_bounded_and_keeps_its_newest_exits() -> None:
    driven = Driven(otp.SupervisorSpec(id="root", intensity=otp.SlidingWindow(1000, 1.0),
                                       children=[worker("w"), worker("x")]))
    total = HISTORY_LENGTH + 5
    for i in range(total):
        driven.crash("w", reasons.Abnormal(i), now=1.0 + i, stderr=f"last words {i}")
    driven.crash("x", reasons.Exited(2), now=100.0)
    history = driven.core.child_history("w")
    assert len(history) == HISTORY_LENGTH == 10
    kept = range(total - HISTORY_LENGTH, total)
    assert [r.reason for r in history] == [reasons.Abnormal(i) for i in kept]  # oldest first
    assert [r.time for r in history] == [1.0 + i for i in kept]
    assert [r.stderr for r in history] == [f"last words {i}" for i in kept]
    assert all(r.uptime == 1.0 for r in history)  # each run lived from one exit to the next
    assert all(r.delay is None for r in history)  # restarted at once
    [x] = driven.core.child_history("x")
    assert (x.reason, x.uptime) == (reasons.Exited(2), 100.0)
    assert driven.core.child_history("nobody") == ()


def test_each_record_says_when_how_long_up_and_the_delay_chosen() -> None:
    spec = otp.SupervisorSpec(
        id="root",
        intensity=otp.SlidingWindow(2, 100) & otp.ExponentialBackoff(initial=1.0, jitter=0),
        children=[worker("w")],
    )
    sim = otp.simulate(spec, [(2.0, "w", "boom"), (5.0, "w", ValueError("bad")),
                              (10.0, "w", reasons.Exited(3))])
    [gave_up] = sim.of_type(rp.IntensityExceeded)
    assert [(child, r.time, r.reason, r.uptime, r.delay) for child, r in gave_up.history] == [
        ("w", 2.0, reasons.Abnormal("boom"), 2.0, 1.0),
        ("w", 5.0, reasons.Crashed("ValueError", "bad"), 2.0, 2.0),  # up at 3, backoff 2
        ("w", 10.0, reasons.Exited(3), 3.0, None),  # the one too many: not restarted
    ]
    assert gave_up.history[0][1].describe() == (
        "t=2.000: boom after 2 s up; restarted after 1 s")


def test_the_surrender_report_carries_the_supervisors_recent_exits_newest_last() -> None:
    spec = otp.SupervisorSpec(id="root", intensity=otp.SlidingWindow(40, 1000),
                              children=[worker("a"), worker("b")])
    script = [(float(i), "ab"[i % 2], reasons.Exited(i)) for i in range(41)]
    sim = otp.simulate(spec, script)
    [gave_up] = sim.of_type(rp.IntensityExceeded)
    assert gave_up.child_id == "a"
    assert gave_up.why == "41 restarts within 1000 s (at most 40 allowed)"
    assert len(gave_up.history) == RECENT_LENGTH == 32
    assert [(child, r.reason) for child, r in gave_up.history] == [
        ("ab"[i % 2], reasons.Exited(i)) for i in range(41 - RECENT_LENGTH, 41)]


# --------------------------------------------------------------- on a real tree

def history_of(sup: otp.Supervisor, child: str, *supervisor: str) -> tuple[rp.ExitRecord, ...]:
    """A running child's history, read from its supervisor's core on the tree's loop.
    The handles offer no accessor for it (reported as a gap), so this reaches in."""
    tree_ = sup._tree

    async def read() -> tuple[rp.ExitRecord, ...]:
        return tree_.nodes[(*sup.path, *supervisor)].core.child_history(child)

    return asyncio.run_coroutine_threadsafe(read(), tree_.loop).result(DEFAULT_TIMEOUT)


UP = 0.2
"""How long each failing run stays up before it fails."""

BACKOFF = 0.1

TWO_STRIKES = otp.SlidingWindow(1, 60) & otp.ExponentialBackoff(initial=BACKOFF, maximum=1.0,
                                                                 jitter=0)
"""The first failure restarts after BACKOFF s; the second gives up."""


def _runs(tmp_path: Path) -> str:
    return str(tmp_path / "runs")


CASES: dict[str, tuple[Any, reasons.ExitReason, str | None]] = {
    # id: (how to build the child, the reason expected, what its stderr ends with)
    "process-raise": (
        lambda p: PROCESS.spec("w", targets.proc_fail,
                               args=(_runs(p), "value", 99, UP, "parsing batch 7")),
        reasons.Crashed("ValueError", "boom"), "parsing batch 7"),
    "process-exit": (
        lambda p: PROCESS.spec("w", targets.proc_fail,
                               args=(_runs(p), "exit3", 99, UP, "giving up with 3")),
        reasons.Exited(3), "giving up with 3"),
    "process-signal": (
        lambda p: PROCESS.spec("w", targets.proc_fail,
                               args=(_runs(p), "sigkill", 99, UP, "about to die")),
        reasons.Signaled(9, "SIGKILL"), "about to die"),
    "command-exit": (
        lambda p: COMMAND.spec("w", f"sh -c 'sleep {UP}; echo codec not found >&2; exit 3'"),
        reasons.Exited(3), "codec not found"),
    "command-signal": (
        lambda p: COMMAND.spec("w", f"sh -c 'sleep {UP}; echo segfaulting >&2; kill -SEGV $$'"),
        reasons.Signaled(11, "SIGSEGV"), "segfaulting"),
    "command-not-captured": (
        lambda p: COMMAND.spec("w", f"sh -c 'sleep {UP}; echo hidden >&2; exit 3'",
                               capture_stderr=False),
        reasons.Exited(3), None),
    "thread-raise": (
        lambda p: THREAD.spec("w", targets.thread_fail, args=(_runs(p), "value", 99, UP)),
        reasons.Crashed("ValueError", "boom"), None),
    "task-raise": (
        lambda p: TASK.spec("w", targets.task_fail, args=(_runs(p), "value", 99, UP)),
        reasons.Crashed("ValueError", "boom"), None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_error_and_the_report_carry_the_history_of_a_crash_loop(
    case: str, tmp_path: Path
) -> None:
    build, expected, stderr = CASES[case]
    recorder = Recorder()
    sup = otp.start(tree(build(tmp_path), intensity=TWO_STRIKES), on_report=recorder)
    with pytest.raises(otp.IntensityExceededError) as caught:
        sup.wait(DEFAULT_TIMEOUT)
    error = caught.value
    [(first_id, first), (second_id, second)] = error.history
    assert (first_id, second_id) == ("w", "w")
    for record in (first, second):
        assert record.reason == expected
        assert record.uptime is not None and record.uptime >= UP * 0.9, record
        if stderr is None:
            assert record.stderr is None
        else:
            assert record.stderr is not None and record.stderr.splitlines()[-1] == stderr
        if isinstance(expected, reasons.Crashed):
            assert isinstance(record.reason, reasons.Crashed)
            text = record.reason.traceback
            assert text is not None
            assert text.startswith("Traceback (most recent call last):")
            assert "in _raise" in text and 'raise ValueError("boom")' in text
            assert text.rstrip().endswith("ValueError: boom")
    assert first.delay == BACKOFF
    assert second.delay is None  # given up: not restarted
    assert second.time - first.time >= BACKOFF + UP * 0.9
    # the last message says why, and names the child and what happened to it
    message = str(error)
    assert message.startswith("supervisor 'root' gave up: 2 restarts within 60 s "
                              "(at most 1 allowed)")
    exit_lines = [line for line in message.splitlines()[1:] if line.startswith("  w: ")]
    assert len(exit_lines) == 2
    assert all(str(expected) in line for line in exit_lines), exit_lines
    # the report says the same
    [gave_up] = recorder.of(rp.IntensityExceeded)
    assert gave_up.history == error.history
    assert gave_up.why == "2 restarts within 60 s (at most 1 allowed)"


@pytest.fixture(scope="module")
def resource_tracker() -> None:
    """spawn children start multiprocessing's resource tracker, a helper that lives as
    long as we do; start it before the leak snapshot (as test_backends.py does)."""
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()


@pytest.mark.usefixtures("resource_tracker")
def test_a_spawned_process_childs_stderr_is_in_its_history(tmp_path: Path) -> None:
    child = SPAWN.spec("w", targets.proc_fail, args=(_runs(tmp_path), "value", 99, UP, "spawned"))
    sup = otp.start(tree(child, intensity=TWO_STRIKES))
    with pytest.raises(otp.IntensityExceededError) as caught:
        sup.wait(DEFAULT_TIMEOUT)
    assert all(record.stderr is not None and "spawned" in record.stderr
               for _, record in caught.value.history)


def test_run_raises_with_the_history_of_every_child_that_used_up_the_budget(
    tmp_path: Path,
) -> None:
    spec = tree(
        TASK.spec("a", targets.task_fail, args=(str(tmp_path / "a"), "value", 99, 0.05)),
        THREAD.spec("b", targets.thread_fail, args=(str(tmp_path / "b"), "config", 99, 0.05)),
        THREAD.forever("calm"),
        intensity=otp.SlidingWindow(2, 60),
    )
    with pytest.raises(otp.IntensityExceededError) as caught:
        otp.run(spec, handle_signals=False)
    error = caught.value
    assert {child for child, _ in error.history} == {"a", "b"}
    assert len(error.history) == 3
    message = str(error)
    assert "3 restarts within 60 s (at most 2 allowed)" in message
    lines = message.splitlines()[1:]
    assert any(line.startswith("  a: ") and "ValueError: boom" in line for line in lines)
    assert any(line.startswith("  b: ") and "MissingSetting: missing setting 'api_key'" in line
               for line in lines)
    assert "calm" not in message


def test_a_nested_supervisors_surrender_carries_its_childrens_history(tmp_path: Path) -> None:
    pool = otp.SupervisorSpec(id="pool", intensity=otp.SlidingWindow(1, 60), children=[
        TASK.spec("w", targets.task_fail, args=(str(tmp_path / "w"), "value", 99, 0.05)),
        TASK.forever("calm"),
    ])
    recorder = Recorder()
    sup = otp.start(tree(pool, intensity=otp.SlidingWindow(0, 60)), on_report=recorder)
    with pytest.raises(otp.IntensityExceededError) as caught:
        sup.wait(DEFAULT_TIMEOUT)
    pool_gave_up, root_gave_up = recorder.of(rp.IntensityExceeded)
    assert pool_gave_up.where == "root/pool"
    assert [(child, r.reason) for child, r in pool_gave_up.history] == [
        ("w", reasons.Crashed("ValueError", "boom"))] * 2
    assert root_gave_up.where == "root"
    assert [(child, r.reason) for child, r in root_gave_up.history] == [
        ("pool", reasons.Shutdown())]
    assert caught.value.history == root_gave_up.history


@pytest.mark.parametrize("kind", [TASK, PROCESS], ids=str)
def test_a_running_childs_history_keeps_its_restarts(kind: Kind, tmp_path: Path) -> None:
    spec = tree(kind.spec("w", targets.FAIL[kind.backend],
                          args=(str(tmp_path / "w"), "value", 2, 0.05)),
                intensity=otp.SlidingWindow(5, 60) & otp.ExponentialBackoff(initial=BACKOFF,
                                                                             jitter=0))
    recorder = Recorder()
    with otp.start(spec, on_report=recorder) as sup:
        recorder.wait_kind(rp.ChildStarted, "w", count=3)
        history = history_of(sup, "w")
        assert [r.reason for r in history] == [reasons.Crashed("ValueError", "boom")] * 2
        assert [r.delay for r in history] == [BACKOFF, BACKOFF * 2]
        assert all(r.uptime is not None and r.uptime >= 0.05 * 0.9 for r in history)
        assert history[1].time - history[0].time >= BACKOFF + 0.05 * 0.9
    assert sup.wait(DEFAULT_TIMEOUT) == reasons.Shutdown()
