"""How-to: test a tree's recovery on a fake clock, with otp.simulate.

The functions named test_* are ordinary pytest tests; run as a script, this file
runs them and prints one simulated timeline.
"""

import otp_py as otp
from otp_py import reasons, reports


async def serve() -> None: ...


tree = otp.SupervisorSpec(
    id="root",
    intensity=otp.SlidingWindow(max_restarts=2, period=60.0),
    children=[
        otp.ChildSpec.asyncio("db", serve),
        otp.SupervisorSpec(
            id="workers",
            strategy=otp.OneForAll(),
            intensity=otp.SlidingWindow(max_restarts=2, period=10.0),
            children=[otp.ChildSpec.asyncio("fetch", serve), otp.ChildSpec.asyncio("parse", serve)],
        ),
    ],
)


def test_a_crash_restarts_the_whole_group() -> None:
    sim = otp.simulate(tree, [(1.0, "workers/parse", ValueError("bad input"))])
    restarted = [r.child_id for r in sim.of_type(reports.ChildStarted) if r.restarts]
    assert restarted == ["fetch", "parse"]
    assert sim.exit_reason is None  # the root still runs at the end


def test_three_quick_crashes_escalate_to_the_root() -> None:
    sim = otp.simulate(tree, [(t, "workers/fetch", "timeout") for t in (1.0, 2.0, 3.0)])
    [gave_up] = sim.of_type(reports.IntensityExceeded)
    assert gave_up.where == "root/workers"
    assert gave_up.why == "3 restarts within 10 s (at most 2 allowed)"
    restarts = [r for r in sim.of_type(reports.ChildStarted) if r.child_id == "workers"]
    assert restarts[-1].restarts == 1  # the root restarted the group


def test_spread_out_crashes_are_absorbed() -> None:
    sim = otp.simulate(tree, [(t, "workers/fetch", "timeout") for t in (1.0, 12.0, 23.0)])
    assert not sim.of_type(reports.IntensityExceeded)


def test_a_failed_restart_is_retried_and_counted() -> None:
    # The next start of db fails once; then db crashes, and its restart fails.
    events = [(1.0, "db", otp.StartFails(times=1)), (1.0, "db", "crash")]
    sim = otp.simulate(tree, events)
    [failed] = sim.of_type(reports.ChildStartFailed)
    assert failed.child_id == "db"
    assert sim.of_type(reports.ChildStarted)[-1].child_id == "db"  # the retry worked
    # The crash and the retry were two restarts: one more crash is one too many.
    sim = otp.simulate(tree, [*events, (2.0, "db", "crash")])
    assert sim.exit_reason == reasons.Shutdown()


def test_decider_rules_by_exit_code() -> None:
    spec = otp.SupervisorSpec(
        id="root",
        decider=otp.Decider({otp.OnExitCode(78): otp.Decision.ESCALATE}),
        children=[otp.ChildSpec.asyncio("app", serve)],
    )
    sim = otp.simulate(spec, [(1.0, "app", reasons.Exited(78))])
    assert sim.exit_reason == reasons.Shutdown()


def test_an_orderly_stop() -> None:
    sim = otp.simulate(tree, stop_at=5.0)
    stopped = [r.child_id for r in sim.of_type(reports.ChildTerminated)]
    assert stopped == ["parse", "fetch", "workers", "db"]  # reverse order, depth first
    assert sim.exit_reason == reasons.Shutdown()


if __name__ == "__main__":
    for name, test in sorted(globals().items()):
        if name.startswith("test_"):
            test()
            print("passed:", name)
    print()
    sim = otp.simulate(tree, [(t, "workers/fetch", "timeout") for t in (1.0, 2.0, 3.0)])
    print("\n".join(sim.timeline()))
