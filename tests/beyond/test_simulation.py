"""The simulation API: otp.simulate drives the pure cores on a fake clock and returns
the timeline of decisions (restarts and their delays, stops, escalations and when),
fast enough to run thousands of failures in a unit test."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

import otp_py as otp
from otp_py import reasons
from otp_py import reports as rp


async def idle() -> None:
    """Workers never run in a simulation."""


def worker(child_id: str, **fields: Any) -> otp.ChildSpec:
    return otp.ChildSpec.task(child_id, idle, **fields)


POLICY = otp.SlidingWindow(3, 10.0) & otp.ExponentialBackoff(
    initial=1.0, multiplier=2.0, maximum=8.0, jitter=0.0)
"""At most 3 restarts in 10 s; 1, 2, 4, 8 s between consecutive failures of a child
(reset once it stays up 8 s)."""


def backoff_tree() -> otp.SupervisorSpec:
    return otp.SupervisorSpec(id="root", intensity=POLICY, children=[
        worker("db"), worker("job", restart="transient"), worker("cache")])


def test_the_timeline_of_a_backoff_and_window_policy() -> None:
    sim = otp.simulate(backoff_tree(), [
        (0.0, "db", ConnectionError("refused")),  # restart after 1 s, at 1
        (2.0, "db", "boom"),                      # after 2 s, at 4
        (3.0, "job", "normal"),                   # transient, normal: stopped
        (3.5, "db", "boom"),                      # not running (waiting): nothing
        (5.0, "db", "boom"),                      # after 4 s, at 9
        (9.5, "db", "boom"),                      # 4th restart within 10 s: give up
    ])
    assert [(e.time, e.path, e.outcome, e.delay) for e in sim.exits()] == [
        (0.0, "db", "restart", 1.0),
        (2.0, "db", "restart", 2.0),
        (3.0, "job", "keep", None),
        (5.0, "db", "restart", 4.0),
        (9.5, "db", "give_up", None),
    ]
    assert sim.restart_delays("db") == [1.0, 2.0, 4.0]
    assert sim.restart_times("db") == [1.0, 4.0, 9.0]
    assert sim.restart_times("job") == []
    assert sim.gave_up_at() == 9.5
    assert sim.exit_reason == reasons.Shutdown()
    assert sim.end_time == 9.5 + 3600.0
    [gave_up] = sim.of_type(rp.IntensityExceeded)
    assert gave_up.why == "4 restarts within 10 s (at most 3 allowed)"
    assert [(r.time, r.child_id) for r in sim.of_type(rp.ChildTerminated)] == [
        (9.5, "cache")]
    assert [line for line in sim.timeline() if "db" in line] == [
        "t=0.000 root: started db",
        "t=0.000 root: db exited: ConnectionError: refused; restart",
        "t=0.000 root: restarting db in 1 s",
        "t=1.000 root: started db (restart 1)",
        "t=2.000 root: db exited: boom; restart",
        "t=2.000 root: restarting db in 2 s",
        "t=4.000 root: started db (restart 2)",
        "t=5.000 root: db exited: boom; restart",
        "t=5.000 root: restarting db in 4 s",
        "t=9.000 root: started db (restart 3)",
        "t=9.500 root: db exited: boom; give_up",
        "t=9.500 root: giving up after db failed: 4 restarts within 10 s (at most 3 allowed)",
    ]


def test_a_child_that_stays_up_starts_its_backoff_again() -> None:
    sim = otp.simulate(backoff_tree(), [(0.0, "db", "boom"), (2.0, "db", "boom"),
                                        (20.0, "db", "boom")])  # up 16 s >= 8 s
    assert sim.restart_delays("db") == [1.0, 2.0, 1.0]
    assert sim.gave_up_at() is None
    assert sim.exit_reason is None  # still running at the end


# -------------------------------- how a delayed restart counts against the window

WINDOW_WITH_LONG_BACKOFF = otp.SlidingWindow(1, 5.0) & otp.ExponentialBackoff(
    initial=4.0, maximum=4.0, jitter=0.0)


@pytest.mark.parametrize(("second_failure", "gives_up"), [
    (4.5, True),    # decisions at 0 and 4.5: both within 5 s
    (5.0, True),    # OTP's boundary: a restart exactly `period` ago still counts
    (5.25, False),  # the first decision (t=0) has left the window, though its start (t=4) has not
])
def test_a_delayed_restart_counts_when_it_is_decided_not_when_it_starts(
    second_failure: float, gives_up: bool
) -> None:
    spec = otp.SupervisorSpec(id="root", intensity=WINDOW_WITH_LONG_BACKOFF,
                              children=[worker("w")])
    sim = otp.simulate(spec, [(0.0, "w", "boom"), (second_failure, "w", "boom")])
    assert sim.restart_times("w")[0] == 4.0
    assert sim.gave_up_at() == (second_failure if gives_up else None)


def test_a_failure_during_the_delay_is_no_failure() -> None:
    """While a child waits for its delayed restart it is not running: an event for it
    is ignored, and charges nothing."""
    spec = otp.SupervisorSpec(id="root", intensity=WINDOW_WITH_LONG_BACKOFF,
                              children=[worker("w")])
    sim = otp.simulate(spec, [(0.0, "w", "boom"), (1.0, "w", "boom"), (2.0, "w", "boom")])
    assert [e.time for e in sim.exits("w")] == [0.0]
    assert sim.gave_up_at() is None


def test_a_failed_delayed_start_is_retried_and_charged_again() -> None:
    spec = otp.SupervisorSpec(id="root", intensity=otp.SlidingWindow(2, 100) &
                              otp.ExponentialBackoff(initial=1.0, jitter=0.0),
                              children=[worker("w")])
    sim = otp.simulate(spec, [(0.0, "w", "boom")], start_failures={"w": [2]})
    # decided at 0 (charge 1); the start at 1 fails; its retry is charged (2) and
    # waits the backoff's next delay
    assert [(r.time, r.delay) for r in sim.of_type(rp.RestartScheduled)] == [
        (0.0, 1.0), (1.0, 2.0)]
    assert sim.restart_times("w") == [3.0]
    sim = otp.simulate(spec, [(0.0, "w", "boom"), (10.0, "w", "boom")],
                       start_failures={"w": [2]})
    assert sim.gave_up_at() == 10.0  # the third charge


# ------------------------------------------------------------ nested trees, paths

def nested() -> otp.SupervisorSpec:
    pool = otp.SupervisorSpec(id="pool", intensity=otp.SlidingWindow(1, 10), children=[
        worker("w"), worker("v", restart="temporary")])
    return otp.SupervisorSpec(id="root", intensity=otp.SlidingWindow(1, 10),
                              children=[worker("db"), pool])


def test_escalation_and_when_in_a_nested_tree() -> None:
    sim = otp.simulate(nested(), [(1.0, "pool/w", "boom"), (2.0, "root/pool/w", "boom"),
                                  (3.0, "pool/v", "boom"), (4.0, "pool/w", "boom"),
                                  (5.0, "pool/w", "boom")])
    assert sim.gave_up_at("pool") == 2.0
    assert sim.gave_up_at("root/pool") == 2.0
    assert [(e.time, e.path, e.outcome) for e in sim.exits()] == [
        (1.0, "pool/w", "restart"),
        (2.0, "pool/w", "give_up"),
        (2.0, "pool", "restart"),      # the root restarts the group
        (3.0, "pool/v", "remove"),     # temporary
        (4.0, "pool/w", "restart"),    # a new pool: a new budget
        (5.0, "pool/w", "give_up"),
        (5.0, "pool", "give_up"),      # the root's second restart within 10 s
    ]
    assert sim.exits("root/pool") == sim.exits("pool")
    assert [e.supervisor for e in sim.exits("pool/w")] == ["pool"] * 4
    assert {e.child_id for e in sim.exits("pool/w")} == {"w"}
    assert sim.restart_times("pool") == [2.0]
    assert sim.restart_times("pool/w") == [1.0, 4.0]
    assert sim.gave_up_at() == sim.gave_up_at("root") == 5.0
    assert [r.time for r in sim.of_type(rp.IntensityExceeded)] == [2.0, 5.0, 5.0]  # first
    assert sim.exit_reason == reasons.Shutdown()


def test_jitter_comes_from_the_random_source_given() -> None:
    spec = otp.SupervisorSpec(
        id="root",
        intensity=otp.SlidingWindow(100, 10) & otp.ExponentialBackoff(initial=1.0, jitter=0.5),
        children=[worker(c) for c in "abcdef"],
    )
    script = [(1.0, c, "outage") for c in "abcdef"]
    lockstep = otp.simulate(spec, script)
    assert {r.delay for r in lockstep.of_type(rp.RestartScheduled)} == {1.0}
    spread = otp.simulate(spec, script, random=random.Random(7).random)
    delays = [r.delay for r in spread.of_type(rp.RestartScheduled)]
    assert len(set(delays)) == 6
    assert all(0.5 <= d <= 1.5 for d in delays)
    again = otp.simulate(spec, script, random=random.Random(7).random)
    assert again.reports == spread.reports  # reproducible


# ------------------------------------------------------------------------ speed

def test_a_thousand_failures_simulate_in_well_under_a_second(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = otp.SupervisorSpec(
        id="root",
        intensity=otp.SlidingWindow(10_000, 5) & otp.ExponentialBackoff(initial=0.01,
                                                                        maximum=0.5),
        children=[worker(c) for c in "abcde"],
    )
    events = [(i * 0.7, "abcde"[i % 5], "boom") for i in range(1000)]
    otp.simulate(spec, events[:50])  # warm up (imports, caches)
    started = time.perf_counter()
    sim = otp.simulate(spec, events, random=random.Random(1).random)
    elapsed = time.perf_counter() - started
    assert len(sim.exits()) == 1000
    assert len(sim.restart_delays("a")) == 200
    with capsys.disabled():
        print(f"\n1000 failures simulated in {elapsed * 1000:.1f} ms "
              f"({elapsed * 1e6 / 1000:.0f} us per failure)")
    assert elapsed < 5.0  # typically ~40 ms; the bound only catches a pathology
