"""Shared restart budgets: one budget and one jitter source for a whole subtree, so
siblings failing on one outage neither get a private allowance each nor restart in
lockstep; a budget exhausted anywhere in the scope gives up to the top of the scope."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from kit import TASK, THREAD, tree

import otp_py as otp
from otp_py import reasons
from otp_py import reports as rp
from tests.beyond import targets
from tests.reports import DEFAULT_TIMEOUT, Recorder


async def idle() -> None:
    """Workers never run in a simulation."""


def worker(child_id: str, **fields: Any) -> otp.ChildSpec:
    return otp.ChildSpec.task(child_id, idle, **fields)


def group(sup_id: str, intensity: otp.IntensityPolicy, *children: str,
          **fields: Any) -> otp.SupervisorSpec:
    return otp.SupervisorSpec(id=sup_id, intensity=intensity,
                              children=[worker(c) for c in children], **fields)


OUTAGE = [(1.0, "s1/a", "db down"), (2.0, "s2/b", "db down"), (3.0, "s1/a", "db down")]
"""Three failures within 10 s, spread over two supervisors."""


# --------------------------------------------------------------- in the simulator

def test_failures_under_either_supervisor_charge_one_budget() -> None:
    shared = otp.SharedBudget("db", otp.SlidingWindow(2, 10))
    spec = otp.SupervisorSpec(id="root", intensity=otp.SlidingWindow(5, 10), children=[
        group("s1", shared, "a"), group("s2", shared, "b")])
    sim = otp.simulate(spec, OUTAGE)
    assert [(e.time, e.path, e.outcome) for e in sim.exits()] == [
        (1.0, "s1/a", "restart"),
        (2.0, "s2/b", "restart"),
        (3.0, "s1/a", "give_up"),   # the third restart in the shared window
        (3.0, "s1", "restart"),     # the root (own budget) restarts s1
    ]
    [gave_up] = sim.of_type(rp.IntensityExceeded)
    assert (gave_up.where, gave_up.why) == ("root/s1", "3 restarts within 10 s (at most 2 allowed)")
    assert sim.gave_up_at("s2") is None


def test_without_sharing_each_supervisor_has_its_own_budget() -> None:
    own = otp.SlidingWindow(2, 10)
    spec = otp.SupervisorSpec(id="root", intensity=otp.SlidingWindow(5, 10), children=[
        group("s1", own, "a"), group("s2", own, "b")])
    sim = otp.simulate(spec, OUTAGE)
    assert [e.outcome for e in sim.exits()] == ["restart"] * 3
    assert sim.of_type(rp.IntensityExceeded) == []


def test_giving_up_climbs_to_the_top_of_the_scope_and_no_further() -> None:
    """``scope`` and its two groups share the budget: when s1 gives up, its exit
    charges the same exhausted budget in ``scope``, which gives up too; ``top``, with a
    budget of its own, restarts ``scope``."""
    shared = otp.SharedBudget("db", otp.SlidingWindow(2, 10))
    scope = otp.SupervisorSpec(id="scope", intensity=shared, children=[
        group("s1", shared, "a"), group("s2", shared, "b")])
    spec = otp.SupervisorSpec(id="top", intensity=otp.SlidingWindow(5, 10), children=[scope])
    sim = otp.simulate(spec, [(t, f"scope/{path}", why) for t, path, why in OUTAGE])
    assert sim.gave_up_at("scope/s1") == 3.0
    assert sim.gave_up_at("scope") == 3.0
    assert sim.gave_up_at() is None
    assert sim.restart_times("scope") == [3.0]
    assert [r.where for r in sim.of_type(rp.IntensityExceeded)] == ["top/scope/s1", "top/scope"]
    assert sim.exit_reason is None


def test_the_first_supervisor_started_with_a_name_fixes_the_policy() -> None:
    spec = otp.SupervisorSpec(id="root", intensity=otp.SlidingWindow(5, 10), children=[
        group("s1", otp.SharedBudget("db", otp.SlidingWindow(0, 10)), "a"),
        group("s2", otp.SharedBudget("db", otp.SlidingWindow(100, 10)), "b")])
    sim = otp.simulate(spec, [(1.0, "s2/b", "boom")])
    assert sim.gave_up_at("s2") == 1.0  # s1's policy: not even one restart


def test_backoff_counts_are_kept_per_supervisor_and_child() -> None:
    """Two supervisors share a backoff, and both have a child ``w``: each ``w`` backs
    off on its own failures only."""
    shared = otp.SharedBudget("db", otp.ExponentialBackoff(initial=1.0, maximum=60.0,
                                                           jitter=0.0))
    spec = otp.SupervisorSpec(id="root", children=[group("s1", shared, "w"),
                                                   group("s2", shared, "w")])
    sim = otp.simulate(spec, [(0.0, "s1/w", "boom"), (5.0, "s1/w", "boom"),
                              (10.0, "s1/w", "boom"), (11.0, "s2/w", "boom")])
    assert sim.restart_delays("s1/w") == [1.0, 2.0, 4.0]
    assert sim.restart_delays("s2/w") == [1.0]


def test_siblings_under_one_shared_budget_do_not_restart_in_lockstep() -> None:
    shared = otp.SharedBudget("db", otp.SlidingWindow(20, 10) &
                              otp.ExponentialBackoff(initial=1.0, jitter=0.5))
    spec = otp.SupervisorSpec(id="root", children=[group("s1", shared, "a", "b", "c"),
                                                   group("s2", shared, "a", "b", "c")])
    outage = [(1.0, f"{s}/{c}", "db down") for s in ("s1", "s2") for c in "abc"]
    sim = otp.simulate(spec, outage, random=random.Random(20).random)
    delays = {e.path: e.delay for e in sim.exits()}
    assert len(delays) == 6
    assert len(set(delays.values())) == 6  # twenty siblings would not restart together
    assert all(d is not None and 0.5 <= d <= 1.5 for d in delays.values())
    assert sorted(t for p in delays for t in sim.restart_times(p)) == sorted(
        1.0 + d for d in delays.values() if d is not None)
    again = otp.simulate(spec, outage, random=random.Random(20).random)
    assert again.reports == sim.reports  # one seeded source: reproducible


def test_a_shared_budget_outside_a_tree_is_a_private_one() -> None:
    """A lone core (no tree registry) gets the policy's own bookkeeping."""
    policy = otp.SharedBudget("db", otp.SlidingWindow(1, 10))
    budget = policy.budget(random.Random(0).random)
    assert budget.on_failure("a", 0.0).allow
    assert not budget.on_failure("b", 1.0).allow
    assert "shared budget 'db'" in policy.describe()


@pytest.mark.parametrize("bad", [
    {"name": ""},
    {"name": 3},
    {"name": "db", "policy": otp.SharedBudget("inner")},
    {"name": "db", "policy": "1 in 5"},
])
def test_bad_shared_budgets_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(otp.SpecTypeError):
        otp.SharedBudget(**bad)


# ------------------------------------------------------------------ on a real tree

def _groups(tmp_path: Path, intensity: otp.IntensityPolicy) -> otp.SupervisorSpec:
    """s1 over ``a``, s2 over ``b``: each crashes once, at once, then runs well."""
    def crash_once(child_id: str) -> otp.ChildSpec:
        return TASK.spec(child_id, targets.task_fail,
                         args=(str(tmp_path / child_id), "value", 1, 0.0))

    return tree(
        otp.SupervisorSpec(id="s1", intensity=intensity, children=[crash_once("a")]),
        otp.SupervisorSpec(id="s2", intensity=intensity, children=[crash_once("b")]),
        THREAD.forever("bystander"),
    )


def test_a_shared_budget_is_shared_on_a_running_tree(tmp_path: Path) -> None:
    spec = _groups(tmp_path, otp.SharedBudget("db", otp.SlidingWindow(1, 60)))
    recorder = Recorder()
    with otp.start(spec, on_report=recorder) as sup:
        [gave_up] = recorder.wait_kind(rp.IntensityExceeded)
        assert gave_up.where in ("root/s1", "root/s2")  # whichever failed second
        assert gave_up.why == "2 restarts within 60 s (at most 1 allowed)"
        loser = gave_up.path[-1]
        recorder.wait_for(lambda r: isinstance(r, rp.ChildStarted) and r.child_id == loser
                          and r.restarts == 1)  # the root restarted the group
        assert {c.id: c.state for c in sup.which_children()} == {
            "s1": "running", "s2": "running", "bystander": "running"}
    assert sup.wait(DEFAULT_TIMEOUT) == reasons.Shutdown()


def test_without_sharing_the_same_failures_are_absorbed(tmp_path: Path) -> None:
    spec = _groups(tmp_path, otp.SlidingWindow(1, 60))
    recorder = Recorder()
    with otp.start(spec, on_report=recorder):
        # a restart is decided (and any surrender reported) before the child starts
        recorder.wait_kind(rp.ChildStarted, "a", count=2)
        recorder.wait_kind(rp.ChildStarted, "b", count=2)
        assert recorder.of(rp.IntensityExceeded) == []
    assert [r.outcome for r in recorder.of(rp.ChildExited)] == ["restart", "restart"]


def test_jitter_spreads_the_restarts_of_a_running_tree(tmp_path: Path) -> None:
    shared = otp.SharedBudget("db", otp.SlidingWindow(10, 60) &
                              otp.ExponentialBackoff(initial=0.2, jitter=0.5))
    children = [TASK.spec(c, targets.task_fail, args=(str(tmp_path / c), "value", 1, 0.0))
                for c in "abcd"]
    spec = tree(otp.SupervisorSpec(id="pool", intensity=shared, children=children))
    recorder = Recorder()
    with otp.start(spec, on_report=recorder, random=random.Random(4).random):
        for c in "abcd":
            recorder.wait_kind(rp.ChildStarted, c, count=2)
        delays = [r.delay for r in recorder.of(rp.RestartScheduled)]
    assert len(delays) == 4 and len(set(delays)) == 4
    assert all(0.1 <= d <= 0.3 for d in delays)
