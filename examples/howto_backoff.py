"""How-to: back off between restarts, and see when a delayed restart counts.

Run on the fake clock of otp.simulate: the cores that decide are the runtime's own,
so the timelines are what a real tree would do for the same failures.
"""

import otp_py as otp


async def serve() -> None: ...


def crash_loop(intensity: otp.IntensityPolicy, crashes: list[float]) -> None:
    tree = otp.SupervisorSpec(
        id="root", intensity=intensity, children=[otp.ChildSpec.asyncio("db", serve)]
    )
    events = [(at, "db", "connection refused") for at in crashes]
    sim = otp.simulate(tree, events)
    print(f"-- {intensity.describe()}")
    for line in sim.timeline()[3:]:  # skip the start-up
        print(line)


if __name__ == "__main__":
    # 1. Exponential backoff: 0.5 s, 1 s, 2 s... before each consecutive restart.
    backoff = otp.ExponentialBackoff(initial=0.5, maximum=4.0, jitter=0)
    crash_loop(backoff, [1.0, 2.0, 4.0])

    # 2. A child that stays up for reset_after seconds starts again from initial.
    crash_loop(otp.ExponentialBackoff(initial=0.5, jitter=0, reset_after=10.0), [1.0, 2.0, 20.0])

    # 3. Backoff with a limit: the window gives up, the backoff paces the restarts.
    crash_loop(otp.SlidingWindow(3, 30.0) & backoff, [1.0, 2.0, 4.0, 8.0])

    # 4. A restart counts when it is decided, not when its delayed start runs:
    #    the failure at 0 s is restarted at 4 s but counts at 0 s, so the one at
    #    6 s is alone in the window (1 s to 6 s) and is allowed.
    crash_loop(otp.SlidingWindow(1, 5.0) & otp.ExponentialBackoff(initial=4.0, jitter=0),
               [0.0, 6.0])

    # 5. Go's suture: a supervisor-wide failure count that halves every 10 s;
    #    above 2, the supervisor pauses 5 s, then the count starts over at 0.
    crash_loop(otp.DecayingFailureCount(threshold=2, decay=10.0, backoff=5.0),
               [1.0, 1.5, 2.0, 7.5, 60.0])
