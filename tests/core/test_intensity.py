"""Intensity policies: budgets driven directly with a fake clock, then end to end
through ``otp_py.simulate``. Nothing sleeps: time is the ``now`` passed in.

OTP's rule for the sliding window (``supervisor.erl``, ``add_restart/3``): the new
restart is stamped ``now``; a restart at ``t`` still counts when ``t >= now - period``;
the supervisor gives up when the count exceeds ``max_restarts``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import pytest

import otp_py as otp
from otp_py import reports as rp
from otp_py.reasons import Abnormal, Normal, Shutdown


def no_jitter() -> float:
    return 0.5


def fixed(draw: float) -> Callable[[], float]:
    return lambda: draw


def verdicts(policy: otp.IntensityPolicy, times: list[float], child: str = "a") -> list[Any]:
    """Feed failures of one child at ``times`` (no starts in between)."""
    budget = policy.budget(no_jitter)
    return [budget.on_failure(child, t) for t in times]


def allowed(policy: otp.IntensityPolicy, times: list[float]) -> list[bool]:
    return [v.allow for v in verdicts(policy, times)]


async def idle() -> None:  # never run: the simulation starts nothing
    pass


def flat(intensity: otp.IntensityPolicy, *ids: str, **fields: Any) -> otp.SupervisorSpec:
    return otp.SupervisorSpec(
        id="root",
        intensity=intensity,
        children=[otp.ChildSpec(id=cid, start=idle) for cid in ids or ("a",)],
        **fields,
    )


def crashes(*times: float, child: str = "a") -> list[tuple[float, str, Any]]:
    return [(t, child, Abnormal("boom")) for t in times]


def started_at(sim: otp.Simulation, child: str = "a") -> list[float]:
    """Times of the restarts of ``child`` (its first start excluded)."""
    return [r.time for r in sim.of_type(rp.ChildStarted) if r.child_id == child and r.restarts]


# ---------------------------------------------------------------------- Verdict


def test_verdict_after_zero_is_now() -> None:
    assert otp.Verdict.after(0) == otp.Verdict.now() == otp.Verdict(True, 0.0)


def test_verdict_after_a_delay_allows_later() -> None:
    assert otp.Verdict.after(2.5) == otp.Verdict(True, 2.5)


def test_verdict_give_up_refuses_and_says_why() -> None:
    verdict = otp.Verdict.give_up("too many")
    assert (verdict.allow, verdict.why) == (False, "too many")


# ---------------------------------------------------------------- SlidingWindow


def test_window_allows_up_to_max_restarts_in_period() -> None:
    assert allowed(otp.SlidingWindow(2, 5), [0, 1]) == [True, True]


def test_window_gives_up_when_count_exceeds_max_restarts() -> None:
    assert allowed(otp.SlidingWindow(2, 5), [0, 1, 2]) == [True, True, False]


def test_window_counts_a_restart_exactly_period_ago() -> None:
    # t=0 >= 5 - 5: still in the window, so 2 restarts > 1.
    assert allowed(otp.SlidingWindow(1, 5), [0, 5]) == [True, False]


def test_window_drops_a_restart_just_over_period_ago() -> None:
    assert allowed(otp.SlidingWindow(1, 5), [0, 5.25]) == [True, True]


def test_window_slides() -> None:
    # At 9 the restart at 0 has left the window (0 < 9 - 5); those at 4 and 9 remain.
    assert allowed(otp.SlidingWindow(2, 5), [0, 4, 9]) == [True, True, True]


def test_window_with_zero_intensity_gives_up_at_once() -> None:
    assert allowed(otp.SlidingWindow(0, 5), [0]) == [False]


def test_window_is_supervisor_wide() -> None:
    budget = otp.SlidingWindow(1, 5).budget(no_jitter)
    assert budget.on_failure("a", 0).allow
    assert not budget.on_failure("b", 1).allow


def test_window_never_delays() -> None:
    assert [v.delay for v in verdicts(otp.SlidingWindow(3, 5), [0, 1, 2])] == [0, 0, 0]


def test_window_refusal_says_why() -> None:
    [_, refusal] = verdicts(otp.SlidingWindow(1, 5), [0, 1])
    assert "2 restarts within 5 s" in refusal.why


def test_window_with_whole_second_stamps_shares_a_window_as_otp_does() -> None:
    # OTP stamps 0.2 s and 1.9 s as seconds 0 and 1: 0 >= 1 - 1, one window, give up.
    assert allowed(otp.SlidingWindow(1, 1, resolution=1.0), [0.2, 1.9]) == [True, False]
    assert allowed(otp.SlidingWindow(1, 1), [0.2, 1.9]) == [True, True]  # exact times
    # ... and 2.05 s is second 2: second 0 has left the window.
    assert allowed(otp.SlidingWindow(1, 1, resolution=1.0), [0.2, 2.05]) == [True, True]


def test_window_stamps_in_any_resolution() -> None:
    assert allowed(otp.SlidingWindow(1, 0.2, resolution=0.2), [0.05, 0.39]) == [True, False]


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "1", True])
def test_window_refuses_a_resolution_that_is_not_a_positive_time(bad: Any) -> None:
    with pytest.raises(otp.SpecError, match="resolution"):
        otp.SlidingWindow(1, 5, resolution=bad)


# ------------------------------------------------------------ ExponentialBackoff

BACKOFF = otp.ExponentialBackoff(initial=1, multiplier=2, maximum=10, jitter=0)


def test_backoff_delays_grow_by_multiplier_from_initial() -> None:
    assert [v.delay for v in verdicts(BACKOFF, [0, 1, 2, 3])] == [1, 2, 4, 8]


def test_backoff_delay_is_capped_at_maximum() -> None:
    assert [v.delay for v in verdicts(BACKOFF, [0, 1, 2, 3, 4, 5])][-2:] == [10, 10]


def test_backoff_never_gives_up() -> None:
    assert all(allowed(BACKOFF, [float(t) for t in range(100)]))


def test_backoff_counts_each_child_separately() -> None:
    budget = BACKOFF.budget(no_jitter)
    budget.on_failure("a", 0)
    budget.on_failure("a", 1)
    assert budget.on_failure("b", 2).delay == 1


@pytest.mark.parametrize(
    ("draw", "expected"),
    [
        pytest.param(0.0, 8.0, id="lowest-draw"),
        pytest.param(0.5, 10.0, id="middle-draw"),
        pytest.param(0.75, 11.0, id="high-draw"),
    ],
)
def test_backoff_jitter_spreads_the_delay(draw: float, expected: float) -> None:
    policy = otp.ExponentialBackoff(initial=10, maximum=100, jitter=0.2)
    assert policy.budget(fixed(draw)).on_failure("a", 0).delay == pytest.approx(expected)


def test_backoff_jitter_stays_below_its_upper_bound() -> None:
    policy = otp.ExponentialBackoff(initial=10, maximum=100, jitter=0.2)
    delay = policy.budget(fixed(0.999999)).on_failure("a", 0).delay
    assert 11.9 < delay < 12.0


def test_backoff_jitter_never_exceeds_maximum() -> None:
    policy = otp.ExponentialBackoff(initial=10, maximum=10, jitter=0.5)
    assert policy.budget(fixed(0.99)).on_failure("a", 0).delay <= 10


def test_backoff_without_jitter_does_not_draw() -> None:
    def forbidden() -> float:
        raise AssertionError("jitter=0 must not draw a random number")

    assert BACKOFF.budget(forbidden).on_failure("a", 0).delay == 1


def test_backoff_resets_after_reset_after_of_uptime() -> None:
    budget = otp.ExponentialBackoff(initial=1, maximum=10, jitter=0, reset_after=5).budget(
        no_jitter
    )
    budget.on_failure("a", 0)  # delay 1
    budget.on_started("a", 1)
    budget.on_failure("a", 3)  # up 2 s: delay 2
    budget.on_started("a", 5)
    assert budget.on_failure("a", 10).delay == 1  # up exactly 5 s: back to initial


def test_backoff_keeps_growing_when_uptime_is_short_of_reset_after() -> None:
    budget = otp.ExponentialBackoff(initial=1, maximum=10, jitter=0, reset_after=5).budget(
        no_jitter
    )
    budget.on_failure("a", 0)
    budget.on_started("a", 1)
    assert budget.on_failure("a", 5.75).delay == 2  # up 4.75 s


def test_backoff_reset_after_defaults_to_maximum() -> None:
    budget = BACKOFF.budget(no_jitter)  # maximum 10
    budget.on_failure("a", 0)
    budget.on_started("a", 1)
    budget.on_failure("a", 2)  # delay 2
    budget.on_started("a", 4)
    assert budget.on_failure("a", 14).delay == 1


def test_backoff_forget_starts_a_child_afresh() -> None:
    budget = BACKOFF.budget(no_jitter)
    budget.on_failure("a", 0)
    budget.forget("a")
    assert budget.on_failure("a", 1).delay == 1


@pytest.mark.parametrize(("failures", "expected"), [(1, 1.0), (2, 2.0), (4, 8.0), (5, 10.0)])
def test_backoff_delay_for(failures: int, expected: float) -> None:
    assert BACKOFF.delay_for(failures) == expected


def test_backoff_delay_for_a_huge_failure_count_is_the_maximum() -> None:
    assert BACKOFF.delay_for(10_000) == 10


# ---------------------------------------------------------- DecayingFailureCount


def test_decay_restarts_at_once_up_to_threshold() -> None:
    policy = otp.DecayingFailureCount(threshold=2, decay=10, backoff=15)
    assert [v.delay for v in verdicts(policy, [0, 0])] == [0, 0]


def test_decay_backs_off_above_threshold() -> None:
    policy = otp.DecayingFailureCount(threshold=2, decay=10, backoff=15)
    assert [v.delay for v in verdicts(policy, [0, 0, 0])] == [0, 0, 15]


def test_decay_count_halves_every_half_life() -> None:
    budget = otp.DecayingFailureCount(threshold=5, decay=10, backoff=15).budget(no_jitter)
    budget.on_failure("a", 0)
    budget.on_failure("a", 0)  # count 2
    budget.on_failure("a", 10)  # 2 halved to 1, plus 1
    assert budget.count == pytest.approx(2.0)  # type: ignore[attr-defined]


def test_decay_lets_restarts_through_again_once_decayed() -> None:
    policy = otp.DecayingFailureCount(threshold=2, decay=10, backoff=15)
    # 3 at t=0 (backoff); by t=20 the count is 3/4, so +1 is under the threshold.
    assert [v.delay for v in verdicts(policy, [0, 0, 0, 20])] == [0, 0, 15, 0]


def test_decay_count_is_supervisor_wide() -> None:
    budget = otp.DecayingFailureCount(threshold=1, decay=10, backoff=5).budget(no_jitter)
    budget.on_failure("a", 0)
    assert budget.on_failure("b", 0).delay == 5


def test_decay_never_gives_up() -> None:
    policy = otp.DecayingFailureCount(threshold=0, decay=10, backoff=1)
    assert all(allowed(policy, [0] * 50))


# --------------------------------------------------------------------- Combined


@attrs.frozen
class Recording(otp.IntensityPolicy):
    """A user policy: allows every restart after ``delay``; logs what its budget hears."""

    log: list[tuple[str, str, float | None]] = attrs.field(factory=list, eq=False)
    delay: float = 0.0

    def budget(self, random: Callable[[], float]) -> otp.Budget:
        return _RecordingBudget(self.log, self.delay)


class _RecordingBudget(otp.Budget):
    def __init__(self, log: list[tuple[str, str, float | None]], delay: float) -> None:
        self.log = log
        self.delay = delay

    def on_failure(self, child_id: str, now: float) -> otp.Verdict:
        self.log.append(("failure", child_id, now))
        return otp.Verdict.after(self.delay)

    def on_started(self, child_id: str, now: float) -> None:
        self.log.append(("started", child_id, now))

    def forget(self, child_id: str) -> None:
        self.log.append(("forget", child_id, None))


def test_and_builds_a_flat_combined() -> None:
    a, b, c = otp.SlidingWindow(), BACKOFF, otp.DecayingFailureCount()
    assert (a & b) & c == a & (b & c) == otp.Combined((a, b, c))


def test_combined_refusal_wins_over_a_delay() -> None:
    policy = otp.SlidingWindow(0, 5) & BACKOFF
    [verdict] = verdicts(policy, [0])
    assert not verdict.allow


def test_combined_refusal_wins_whatever_the_order() -> None:
    policy = BACKOFF & otp.SlidingWindow(0, 5)
    [verdict] = verdicts(policy, [0])
    assert not verdict.allow
    assert "1 restart within 5 s" in verdict.why


def test_combined_longest_delay_wins() -> None:
    policy = Recording(delay=3) & BACKOFF & Recording(delay=2)
    assert [v.delay for v in verdicts(policy, [0, 1, 2])] == [3, 3, 4]


def test_combined_every_part_sees_every_failure_even_after_a_refusal() -> None:
    log: list[tuple[str, str, float | None]] = []
    policy = otp.SlidingWindow(0, 5) & Recording(log=log)
    verdicts(policy, [0])
    assert log == [("failure", "a", 0)]


def test_combined_every_part_keeps_counting() -> None:
    # The window sees the failures the backoff delays, so it still gives up on time.
    assert allowed(BACKOFF & otp.SlidingWindow(2, 100), [0, 10, 20]) == [True, True, False]


def test_combined_passes_starts_and_forgets_to_every_part() -> None:
    first: list[tuple[str, str, float | None]] = []
    second: list[tuple[str, str, float | None]] = []
    budget = (Recording(log=first) & Recording(log=second)).budget(no_jitter)
    budget.on_started("a", 1)
    budget.forget("a")
    assert first == second == [("started", "a", 1), ("forget", "a", None)]


# ------------------------------------------------------------- end to end: window

WINDOW_2_IN_5 = otp.SlidingWindow(2, 5)


def test_third_crash_within_period_escalates() -> None:
    sim = otp.simulate(flat(WINDOW_2_IN_5), crashes(1, 2, 3))
    [exceeded] = sim.of_type(rp.IntensityExceeded)
    assert (exceeded.child_id, exceeded.time) == ("a", 3)
    assert sim.exit_reason == Shutdown()


def test_escalation_stops_every_child_in_reverse_order() -> None:
    sim = otp.simulate(flat(WINDOW_2_IN_5, "a", "b", "c"), crashes(1, 2, 3, child="b"))
    assert [r.child_id for r in sim.of_type(rp.ChildTerminated)] == ["c", "a"]
    [exited] = sim.of_type(rp.SupervisorExited)
    assert (exited.time, exited.reason) == (3, Shutdown())


def test_escalation_report_holds_the_crash_history() -> None:
    sim = otp.simulate(flat(WINDOW_2_IN_5), crashes(1, 2, 3))
    [exceeded] = sim.of_type(rp.IntensityExceeded)
    assert [(cid, rec.time) for cid, rec in exceeded.history] == [("a", 1), ("a", 2), ("a", 3)]


def test_crash_exactly_period_after_the_first_still_counts() -> None:
    sim = otp.simulate(flat(WINDOW_2_IN_5), crashes(1, 2, 6))
    assert sim.exit_reason == Shutdown()


def test_crash_just_over_period_after_the_first_does_not_escalate() -> None:
    sim = otp.simulate(flat(WINDOW_2_IN_5), crashes(1, 2, 6.5))
    assert sim.exit_reason is None
    assert started_at(sim) == [1, 2, 6.5]


def test_crashes_spaced_wider_than_period_never_escalate() -> None:
    sim = otp.simulate(flat(WINDOW_2_IN_5), crashes(*range(1, 62, 6)))
    assert sim.exit_reason is None
    assert sim.of_type(rp.IntensityExceeded) == []
    assert len(started_at(sim)) == 11


def test_crashes_of_different_children_share_the_window() -> None:
    events = [(1, "a", Abnormal("x")), (2, "b", Abnormal("x")), (3, "c", Abnormal("x"))]
    sim = otp.simulate(flat(WINDOW_2_IN_5, "a", "b", "c"), events)
    assert sim.exit_reason == Shutdown()


def test_exits_that_are_not_restarted_do_not_count() -> None:
    spec = otp.SupervisorSpec(
        id="root",
        intensity=otp.SlidingWindow(0, 5),
        children=[otp.ChildSpec(id="a", start=idle, restart="transient")],
    )
    sim = otp.simulate(spec, [(1, "a", Normal())])
    assert sim.exit_reason is None


def test_default_intensity_gives_up_on_the_second_restart_within_five_seconds() -> None:
    spec = otp.SupervisorSpec(id="root", children=[otp.ChildSpec(id="a", start=idle)])
    assert otp.simulate(spec, crashes(1, 4)).exit_reason == Shutdown()
    assert otp.simulate(spec, crashes(1, 7)).exit_reason is None


def test_each_supervisor_has_its_own_budget() -> None:
    window = otp.SlidingWindow(1, 5)  # one policy value, shared by both pools
    pools = [
        otp.SupervisorSpec(id=pid, intensity=window, children=[otp.ChildSpec(id="w", start=idle)])
        for pid in ("p1", "p2")
    ]
    root = otp.SupervisorSpec(id="root", children=pools)
    events = [(1, "p1/w", Abnormal("x")), (2, "p2/w", Abnormal("x"))]
    sim = otp.simulate(root, events)
    assert sim.of_type(rp.IntensityExceeded) == []


def test_nested_supervisor_giving_up_is_an_exit_its_parent_sees() -> None:
    pool = otp.SupervisorSpec(
        id="pool", intensity=otp.SlidingWindow(0, 5), children=[otp.ChildSpec(id="w", start=idle)]
    )
    sim = otp.simulate(otp.SupervisorSpec(id="root", children=[pool]), [(1, "pool/w", "boom")])
    [pool_exit] = [r for r in sim.of_type(rp.ChildExited) if r.child_id == "pool"]
    assert (pool_exit.reason, pool_exit.outcome) == (Shutdown(), "restart")


# ------------------------------------------------------------ end to end: backoff


def test_backoff_schedules_restarts_with_growing_delays() -> None:
    sim = otp.simulate(flat(BACKOFF), crashes(10, 12, 14.5))
    scheduled = sim.of_type(rp.RestartScheduled)
    assert [(r.child_id, r.time, r.delay) for r in scheduled] == [
        ("a", 10, 1),
        ("a", 12, 2),
        ("a", 14.5, 4),
    ]


def test_backoff_restart_happens_at_crash_time_plus_delay() -> None:
    sim = otp.simulate(flat(BACKOFF), crashes(10, 12, 14.5))
    assert started_at(sim) == [11, 14, 18.5]


def test_backoff_after_reset_restarts_after_initial_delay() -> None:
    sim = otp.simulate(flat(BACKOFF), crashes(10, 30))  # up 19 s > maximum 10
    assert [r.delay for r in sim.of_type(rp.RestartScheduled)] == [1, 1]


def test_backoff_uses_the_injected_random_source() -> None:
    policy = otp.ExponentialBackoff(initial=2, maximum=10, jitter=0.5)
    sim = otp.simulate(flat(policy), crashes(10), random=fixed(0.0))
    assert [r.delay for r in sim.of_type(rp.RestartScheduled)] == [1.0]
    assert started_at(sim) == [11]


def test_zero_delay_restart_is_not_scheduled() -> None:
    sim = otp.simulate(flat(otp.SlidingWindow(5, 5)), crashes(1))
    assert sim.of_type(rp.RestartScheduled) == []
    assert started_at(sim) == [1]


def test_shutdown_during_a_backoff_cancels_the_restart() -> None:
    sim = otp.simulate(flat(BACKOFF), crashes(10), stop_at=10.5)
    assert started_at(sim) == []
    assert sim.exit_reason == Shutdown()


def test_window_and_backoff_delay_then_give_up() -> None:
    policy = otp.SlidingWindow(2, 100) & BACKOFF
    sim = otp.simulate(flat(policy), crashes(10, 12, 15))
    assert [(r.time, r.delay) for r in sim.of_type(rp.RestartScheduled)] == [(10, 1), (12, 2)]
    assert started_at(sim) == [11, 14]
    [exceeded] = sim.of_type(rp.IntensityExceeded)
    assert exceeded.time == 15


def test_decaying_count_pauses_restarts_above_threshold() -> None:
    policy = otp.DecayingFailureCount(threshold=1, decay=10, backoff=5)
    sim = otp.simulate(flat(policy), crashes(1, 2))
    assert [(r.time, r.delay) for r in sim.of_type(rp.RestartScheduled)] == [(2, 5)]
    assert started_at(sim) == [1, 7]


# ----------------------------------------------------- a user policy, end to end


def test_user_policy_hears_starts_failures_and_forgets() -> None:
    log: list[tuple[str, str, float | None]] = []
    spec = otp.SupervisorSpec(
        id="root",
        intensity=Recording(log=log),
        children=[
            otp.ChildSpec(id="a", start=idle),
            otp.ChildSpec(id="t", start=idle, restart="temporary"),
        ],
    )
    otp.simulate(spec, [(1, "a", "boom"), (2, "t", "boom")])
    assert log == [
        ("started", "a", 0),
        ("started", "t", 0),
        ("failure", "a", 1),
        ("started", "a", 1),
        ("forget", "t", None),
    ]


def test_user_policy_delay_is_honoured() -> None:
    sim = otp.simulate(flat(Recording(delay=2.5)), crashes(1))
    assert started_at(sim) == [3.5]


# ------------------------------------------------------------- long crash loops
# A float multiplier**n overflows past n ~ 1024 (2.0) or ~ 308 (10.0): the delay must
# still be the maximum, not an OverflowError out of the core.


@pytest.mark.parametrize(
    ("multiplier", "failures"),
    [(2.0, 1025), (2.0, 10_000), (10.0, 400)],
)
def test_backoff_delay_for_many_failures_is_the_maximum(multiplier: float, failures: int) -> None:
    policy = otp.ExponentialBackoff(initial=1, maximum=10, multiplier=multiplier, jitter=0)
    assert policy.delay_for(failures) == 10


def test_default_backoff_budget_survives_a_long_crash_loop() -> None:
    budget = otp.ExponentialBackoff().budget(no_jitter)
    delays = [budget.on_failure("a", float(t)).delay for t in range(1100)]
    assert delays[-1] == 30.0


def test_supervisor_keeps_restarting_a_child_that_crash_loops_for_long() -> None:
    # Up 0.5 s each time (< reset_after), so the failure count is never reset.
    policy = otp.ExponentialBackoff(initial=0.001, maximum=1, jitter=0, reset_after=10)
    sim = otp.simulate(flat(policy), crashes(*(1.5 * i for i in range(1, 1100))))
    assert sim.of_type(rp.RestartScheduled)[-1].delay == 1
