"""Hang detection: the loop-lag watchdog for asyncio children (a blocked event loop
is a hang of the children on it, reported with the lag measured), and the progress
ticker for thread children (otp.heartbeat(); missing it counts as hung)."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from kit import TASK, THREAD, tree

import otp_py as otp
from otp_py import reasons
from otp_py import reports as rp
from tests.beyond import targets
from tests.reports import DEFAULT_TIMEOUT, Recorder

WATCHDOG = otp.LoopWatchdog(interval=0.05, timeout=0.5, threshold=0.1)
BLOCK = 1.5
"""How long a misbehaving child blocks the loop: three times the watchdog's timeout,
so a busy machine's ordinary lag cannot be mistaken for it, nor it for ordinary lag."""

LAG = re.compile(r"^blocked the event loop for ([0-9.]+) s \(timeout 0\.5 s\)$")


def lag_of(reason: reasons.ExitReason | None) -> float:
    """The lag a watchdog report measured, from its Hung reason."""
    assert isinstance(reason, reasons.Hung), reason
    found = LAG.match(reason.detail)
    assert found, reason.detail
    return float(found.group(1))


def test_a_task_blocking_the_loop_is_reported_hung_with_the_lag_and_restarted(
    tmp_path: Path,
) -> None:
    blocker = TASK.spec("blocker", targets.block_loop_once,
                        args=(str(tmp_path / "runs"), 0.1, BLOCK))
    pool = otp.SupervisorSpec(id="pool", children=[TASK.spec("calm", targets.behave),
                                                   blocker])
    spec = tree(TASK.spec("neighbour", targets.behave), pool, watchdog=WATCHDOG)
    recorder = Recorder()
    with otp.start(spec, on_report=recorder) as sup:
        [hung] = recorder.wait_kind(rp.ChildExited, "blocker")
        assert hung.where == "root/pool"
        assert WATCHDOG.timeout <= lag_of(hung.reason) <= BLOCK + 5.0
        assert hung.outcome == "restart"  # permanent: hung is abnormal
        restarted = recorder.wait_kind(rp.ChildStarted, "blocker", count=2)[1]
        assert restarted.restarts == 1
        # A call is served after whatever the supervisor still had to do: had the
        # watchdog suspected the well-behaved tasks too, it would show by now.
        children = {c.id: (c.state, c.restarts) for c in sup.which_children("pool")}
        assert children == {"calm": ("running", 0), "blocker": ("running", 1)}
        assert [c.restarts for c in sup.which_children()] == [0, 0]
        assert [r.child_id for r in recorder.of(rp.ChildExited)] == ["blocker"]
    assert sup.wait(DEFAULT_TIMEOUT) == reasons.Shutdown()


def test_with_no_task_child_on_the_loops_stack_every_task_child_is_suspect(
    tmp_path: Path,
) -> None:
    """A plain callback blocks the loop (scheduled by one task, run by the loop
    itself): no culprit on the stack, so every task child is reported hung. Thread
    children do not run on the loop and are not suspects."""
    spec = tree(
        TASK.spec("scheduler", targets.schedule_blocking_callback_once,
                  args=(str(tmp_path / "runs"), 0.1, BLOCK)),
        TASK.spec("bystander", targets.behave),
        THREAD.spec("thread", targets.thread_until_stopped),
        watchdog=WATCHDOG,
    )
    recorder = Recorder()
    with otp.start(spec, on_report=recorder) as sup:
        exits = {r.child_id: r for r in recorder.wait_kind(rp.ChildExited, count=2)}
        assert set(exits) == {"scheduler", "bystander"}
        lags = [lag_of(r.reason) for r in exits.values()]
        assert all(WATCHDOG.timeout <= lag <= BLOCK + 5.0 for lag in lags)
        assert lags[0] == lags[1]  # one blockage, one measurement
        recorder.wait_kind(rp.ChildStarted, "scheduler", count=2)
        recorder.wait_kind(rp.ChildStarted, "bystander", count=2)
        children = {c.id: (c.state, c.restarts) for c in sup.which_children()}
        assert children == {"scheduler": ("running", 1), "bystander": ("running", 1),
                            "thread": ("running", 0)}
    assert sup.wait(DEFAULT_TIMEOUT) == reasons.Shutdown()


def test_a_hang_is_decided_about_like_any_other_exit(tmp_path: Path) -> None:
    """A hung task is decided about like any other exit: here a decider stops it."""
    spec = tree(TASK.spec("blocker", targets.block_loop_once,
                          args=(str(tmp_path / "runs"), 0.1, BLOCK)),
                decider=otp.Decider({reasons.Hung: otp.Decision.STOP}), watchdog=WATCHDOG)
    recorder = Recorder()
    with otp.start(spec, on_report=recorder) as sup:
        [hung] = recorder.wait_kind(rp.ChildExited, "blocker")
        assert hung.outcome == "keep"
        assert [c.state for c in sup.which_children()] == ["stopped"]
    assert sup.wait(DEFAULT_TIMEOUT) == reasons.Shutdown()


class _Lagged(logging.Handler):
    """Catches the watchdog's lag warnings (logged from its thread)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lags: list[float] = []
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("otp_py: the event loop lagged"):
            self.lags.append(float(record.args[0]))  # type: ignore[index]
            self.seen.set()


@pytest.fixture
def lag_warnings() -> Iterator[_Lagged]:
    handler = _Lagged()
    logger = logging.getLogger("otp_py")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def test_a_lag_under_the_timeout_is_only_logged(tmp_path: Path, lag_warnings: _Lagged) -> None:
    patient = otp.LoopWatchdog(interval=0.05, timeout=2.0, threshold=0.1)
    spec = tree(TASK.spec("sleepy", targets.block_loop_once,
                          args=(str(tmp_path / "runs"), 0.1, 0.3)),
                TASK.spec("calm", targets.behave), watchdog=patient)
    recorder = Recorder()
    with otp.start(spec, on_report=recorder) as sup:
        assert lag_warnings.seen.wait(DEFAULT_TIMEOUT)
        # measured from the first check sent after the blockage began, so a little
        # less than the whole blockage; above the threshold, or it would not be logged
        assert all(patient.threshold < lag < patient.timeout for lag in lag_warnings.lags)
        assert [c.restarts for c in sup.which_children()] == [0, 0]
    assert sup.wait(DEFAULT_TIMEOUT) == reasons.Shutdown()
    assert recorder.of(rp.ChildExited) == []


# ---------------------------------------------------------------- thread tickers

HEARTBEAT = otp.Heartbeat(interval=0.1, timeout=1.0)
TICK = 0.05


def test_a_thread_that_ticks_is_never_hung_and_one_that_stops_ticking_is(
    tmp_path: Path,
) -> None:
    spec = tree(
        THREAD.spec("ticker", targets.tick_steadily, args=(TICK,), heartbeat=HEARTBEAT),
        # ticks for 0.5 s, then falls silent while still running
        THREAD.spec("quitter", targets.tick_then_fall_silent_once,
                    args=(str(tmp_path / "runs"), 10, TICK), heartbeat=HEARTBEAT),
    )
    recorder = Recorder()
    with otp.start(spec, on_report=recorder) as sup:
        [hung] = recorder.wait_kind(rp.ChildExited, "quitter")
        assert isinstance(hung.reason, reasons.Hung)
        silent = re.match(r"^no heartbeat for ([0-9.]+) s \(timeout 1 s\)$", hung.reason.detail)
        assert silent, hung.reason.detail
        assert float(silent.group(1)) > HEARTBEAT.timeout
        assert hung.uptime is not None and hung.uptime >= 10 * TICK + HEARTBEAT.timeout - 0.1
        assert hung.outcome == "restart"
        recorder.wait_kind(rp.ChildStarted, "quitter", count=2)
        # the steady ticker lived through more than a whole heartbeat timeout
        assert recorder.of(rp.ChildExited, "ticker") == []
        children = {c.id: (c.state, c.restarts) for c in sup.which_children()}
        assert children == {"ticker": ("running", 0), "quitter": ("running", 1)}
    assert sup.wait(DEFAULT_TIMEOUT) == reasons.Shutdown()
    assert [r.child_id for r in recorder.of(rp.ChildExited)] == ["quitter"]
