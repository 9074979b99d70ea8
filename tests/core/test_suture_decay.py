"""``DecayingFailureCount`` does what suture v4's supervisor does, on a fake clock.

Suture (``v4/supervisor.go``): ``handleFailedService`` decays the supervisor-wide
failure count (``failures * 0.5 ** (elapsed / FailureDecay) + 1``) and, when it then
exceeds ``FailureThreshold``, enters the *paused* state and (re)arms a resume timer for
``FailureBackoff``; while paused, every failed service is queued instead of restarted;
when the timer fires (``Serve``'s ``<-s.resumeTimer`` case) the state is normal again,
**the failure count is reset to 0**, and the queued services restart.

:func:`suture` below is that loop, written from those rules as an event loop (a resume
due at the same instant as a failure is handled first). The property test replays
random failure scripts through ``otp_py.simulate`` and through it, and compares every
restart time.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import otp_py as otp
from otp_py import reports as rp
from otp_py.reasons import Abnormal

CHILDREN = ("a", "b", "c")


async def idle() -> None:  # never run: the simulation starts nothing
    pass


def flat(policy: otp.IntensityPolicy) -> otp.SupervisorSpec:
    return otp.SupervisorSpec(
        id="root",
        intensity=policy,
        children=[otp.ChildSpec(id=cid, start=idle) for cid in CHILDREN],
    )


def restarts(sim: otp.Simulation) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {cid: [] for cid in CHILDREN}
    for report in sim.of_type(rp.ChildStarted):
        if report.restarts:
            found[report.child_id].append(report.time)
    return found


def suture(
    threshold: float, decay: float, backoff: float, script: list[tuple[float, str]]
) -> dict[str, list[float]]:
    """Suture v4's Serve loop and handleFailedService, for failures at given times."""
    found: dict[str, list[float]] = {cid: [] for cid in CHILDREN}
    running = set(CHILDREN)
    failures = 0.0
    last_fail: float | None = None
    resume_at: float | None = None  # paused while set
    queue: list[str] = []

    def resume() -> None:
        nonlocal failures, resume_at, queue
        assert resume_at is not None
        failures = 0.0
        for cid in queue:
            found[cid].append(resume_at)
            running.add(cid)
        queue, resume_at = [], None

    for now, cid in script:
        if resume_at is not None and resume_at <= now:
            resume()
        if cid not in running:
            continue  # a queued service cannot fail again
        running.discard(cid)
        decayed = 0.0 if last_fail is None else failures * 0.5 ** ((now - last_fail) / decay)
        failures = decayed + 1
        if failures > threshold:
            resume_at = now + backoff
        last_fail = now
        if resume_at is None:
            found[cid].append(now)
            running.add(cid)
        else:
            queue.append(cid)
    if resume_at is not None:
        resume()
    return found


def simulate(
    threshold: float, decay: float, backoff: float, script: list[tuple[float, str]]
) -> dict[str, list[float]]:
    policy = otp.DecayingFailureCount(threshold=threshold, decay=decay, backoff=backoff)
    events = [(t, cid, Abnormal("boom")) for t, cid in script]
    return restarts(otp.simulate(flat(policy), events))


# -- suture's sequence, case by case ---------------------------------------------------


def test_after_the_pause_the_count_is_reset_so_the_next_failure_restarts_at_once() -> None:
    """Three quick failures pause 15 s; the failure at 16 s restarts at once (the
    decayed count, 3 * 0.5 ** (16 / 30) + 1 = 3.07, would still be over 2)."""
    script = [(0, "a"), (0, "a"), (0, "a"), (16, "a")]
    assert simulate(2, 30, 15, script) == {"a": [0, 0, 15, 16], "b": [], "c": []}


def test_the_budget_reports_the_reset() -> None:
    budget = otp.DecayingFailureCount(threshold=2, decay=30, backoff=15).budget(lambda: 0.5)
    assert [budget.on_failure("a", 0).delay for _ in range(3)] == [0, 0, 15]
    assert budget.on_failure("a", 16) == otp.Verdict.now()
    assert budget.count == 1.0  # type: ignore[attr-defined]


def test_while_paused_a_failure_under_the_threshold_still_waits_for_the_resume() -> None:
    """A fast decay: b's failure at 10 s brings the count only to 1.001, but the
    supervisor is paused until 15 s: b waits too."""
    script = [(0, "a"), (0, "a"), (0, "a"), (10, "b")]
    assert simulate(2, 1, 15, script) == {"a": [0, 0, 15], "b": [15], "c": []}


def test_a_failure_that_passes_the_threshold_while_paused_rearms_the_pause() -> None:
    """b's failure at 5 s (count 3.67 > 2) starts the 15 s pause again: a, queued
    since 0 s, restarts with b at 20 s, not at 15 s."""
    script = [(0, "a"), (0, "a"), (0, "a"), (5, "b")]
    assert simulate(2, 30, 15, script) == {"a": [0, 0, 20], "b": [20], "c": []}


def test_jitter_stretches_the_pause_like_suture_default_jitter() -> None:
    policy = otp.DecayingFailureCount(threshold=0, decay=30, backoff=10, jitter=0.5)
    assert policy.budget(lambda: 0.5).on_failure("a", 0).delay == pytest.approx(12.5)
    assert policy.budget(lambda: 0.0).on_failure("a", 0).delay == 10


def test_jitter_is_validated() -> None:
    with pytest.raises(otp.SpecError) as info:
        otp.DecayingFailureCount(jitter=-0.1)
    assert info.value.field == "jitter"


class Raising(otp.IntensityPolicy):
    def budget(self, random: Any) -> otp.Budget:
        return RaisingBudget()


class RaisingBudget(otp.Budget):
    def on_failure(self, child_id: str, now: float) -> otp.Verdict:
        return otp.Verdict.after(1.0)

    def held(self, now: float) -> float:
        raise RuntimeError("bug")


def test_a_budget_whose_held_raises_ends_the_supervisor_abnormally() -> None:
    sim = otp.simulate(flat(Raising()), [(0, "a", Abnormal("boom"))])
    assert isinstance(sim.exit_reason, Abnormal) and "held()" in str(sim.exit_reason.term)


# -- the whole sequence, against suture's loop -------------------------------------------

GRID = 0.5


@st.composite
def scripts(draw: st.DrawFn) -> list[tuple[float, str]]:
    steps = draw(st.lists(st.integers(0, 12), min_size=1, max_size=25))
    times, now = [], 0
    for step in steps:
        now += step
        times.append(now * GRID)
    return [(t, draw(st.sampled_from(CHILDREN))) for t in times]


@settings(max_examples=300, deadline=None)
@given(
    threshold=st.sampled_from([0, 1, 2, 3.5, 5]),
    decay=st.sampled_from([0.5, 1, 3, 30]),
    backoff=st.integers(0, 10).map(lambda n: n * GRID),
    script=scripts(),
)
def test_every_restart_is_when_suture_would_restart(
    threshold: float, decay: float, backoff: float, script: list[tuple[float, str]]
) -> None:
    assert simulate(threshold, decay, backoff, script) == suture(
        threshold, decay, backoff, script
    )
