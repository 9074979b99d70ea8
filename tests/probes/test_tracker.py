"""The pure verdicts of probes (otp_py._core.probes.ProbeTracker), on a fake clock.

A driver below plays the runtime's part with time passed in: it runs attempts when
the tracker says, each taking a drawn duration (an overrun is a failure, as the
runtime's timeout makes it), against a child that answers until a drawn moment."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otp_py import probes
from otp_py._core.probes import AGAIN, HUNG, READY, ProbeTracker

TIMING = st.fixed_dictionaries({
    "interval": st.floats(0.01, 10.0),
    "timeout": st.floats(0.001, 10.0),
    "failure_threshold": st.integers(1, 6),
    "initial_delay": st.floats(0.0, 5.0),
})


def _probe(success_threshold: int = 1, **timing: float) -> probes.Tcp:
    return probes.Tcp(8000, success_threshold=success_threshold, **timing)  # type: ignore[arg-type]


@given(results=st.lists(st.booleans(), max_size=40), threshold=st.integers(1, 6))
def test_liveness_is_hung_exactly_at_the_first_run_of_failure_threshold_failures(
        results: list[bool], threshold: int) -> None:
    tracker = ProbeTracker(_probe(failure_threshold=threshold), "liveness")
    run = 0
    now = 0.0
    for ok in results:
        run = 0 if ok else run + 1
        step = tracker.record(ok, "x", now, now + 0.5)
        now += 1.0
        if run == threshold:
            assert step.verdict == HUNG
            assert step.next_at is None
            assert f"failed {'once' if threshold == 1 else f'{threshold} times'}" in step.detail
            break
        assert step.verdict == AGAIN
    else:
        assert tracker.verdict is None


@given(results=st.lists(st.booleans(), max_size=40), threshold=st.integers(1, 6))
def test_readiness_is_ready_exactly_at_the_first_run_of_success_threshold_passes(
        results: list[bool], threshold: int) -> None:
    tracker = ProbeTracker(_probe(success_threshold=threshold, failure_threshold=1),
                           "readiness")
    run = 0
    for index, ok in enumerate(results):
        run = run + 1 if ok else 0
        step = tracker.record(ok, "x", float(index), index + 0.1)
        if run == threshold:
            assert step.verdict == READY
            break
        assert step.verdict == AGAIN  # failures never end a start: start_timeout does
    else:
        assert tracker.verdict is None


@given(timing=TIMING, began=st.floats(0, 1e6), took=st.floats(0, 20))
def test_attempts_never_overlap_and_begin_one_interval_apart(
        timing: dict[str, float], began: float, took: float) -> None:
    probe = _probe(**timing)
    tracker = ProbeTracker(probe, "liveness")
    assert tracker.first_at(began) == began + probe.initial_delay
    step = tracker.record(True, "ok", began, began + took)
    assert step.verdict == AGAIN
    assert step.next_at is not None
    assert step.next_at >= began + took  # not before this attempt ended
    assert step.next_at == max(began + probe.interval, began + took)


def test_a_verdict_ends_the_tracker() -> None:
    tracker = ProbeTracker(_probe(failure_threshold=1), "liveness")
    assert tracker.record(False, "refused", 0.0, 0.1).verdict == HUNG
    with pytest.raises(RuntimeError):
        tracker.record(True, "ok", 1.0, 1.1)
    assert tracker.status()["verdict"] == HUNG
    assert tracker.status()["last"] == {"ok": False, "detail": "refused", "took": 0.1}


def test_a_pass_resets_the_failure_count() -> None:
    tracker = ProbeTracker(_probe(failure_threshold=2), "liveness")
    steps = [tracker.record(ok, "", t, t) for t, ok in enumerate([False, True, False, True])]
    assert [s.verdict for s in steps] == [AGAIN] * 4


@attrs.define
class _Driver:
    """The runtime's loop, on a fake clock: attempts when the tracker says."""

    tracker: ProbeTracker
    broken_at: float  # the child answers attempts that end before this moment

    def run(self, durations: list[float], start: float = 0.0) -> tuple[str, float, float]:
        """Run until a verdict; return it, its time and the begin of the last pass."""
        timeout = self.tracker.probe.timeout
        at = self.tracker.first_at(start)
        last_pass = at  # (no pass yet: the reference is the first attempt)
        for took in durations:
            ended = at + min(took, timeout)  # the runtime cuts an attempt at its timeout
            ok = took < timeout and ended < self.broken_at
            if ok:
                last_pass = at
            step = self.tracker.record(ok, "", at, ended)
            if step.verdict != AGAIN:
                return step.verdict, ended, last_pass
            assert step.next_at is not None
            at = step.next_at
        return AGAIN, at, last_pass


@settings(max_examples=300)
@given(timing=TIMING, broken_at=st.floats(0, 100),
       durations=st.lists(st.floats(0, 12), min_size=200, max_size=200))
def test_a_broken_child_is_found_hung_within_the_detection_bound(
        timing: dict[str, float], broken_at: float, durations: list[float]) -> None:
    probe = _probe(**timing)
    driver = _Driver(ProbeTracker(probe, "liveness"), broken_at)
    verdict, when, last_pass = driver.run(durations)
    if verdict == HUNG:
        # found within the bound of its last pass (or of the first attempt), and so
        # within the bound of its breaking
        assert when - last_pass <= probes.detection_bound(probe) + 1e-6
        first = driver.tracker.first_at(0.0)
        assert when <= max(broken_at, first) + probes.detection_bound(probe) + 1e-6
    else:  # enough attempts ran to pass the breakage: only timeouts could keep it going
        assert verdict == AGAIN


@given(timing=TIMING, durations=st.lists(st.floats(0, 12), min_size=60, max_size=60))
def test_a_child_broken_from_the_start_is_found_hung_after_failure_threshold_attempts(
        timing: dict[str, float], durations: list[float]) -> None:
    probe = _probe(**timing)
    tracker = ProbeTracker(probe, "liveness")
    verdict, when, _ = _Driver(tracker, broken_at=-1.0).run(durations)
    assert verdict == HUNG
    assert tracker.attempts == probe.failure_threshold
    assert when <= probe.initial_delay + probes.detection_bound(probe) + 1e-6
