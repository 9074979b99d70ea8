"""How-to: one restart budget for many supervisors (SharedBudget).

Three connection pools share one database. When it goes down, every pool fails at
once. With a budget each, each pool absorbs its own failures; with one shared
budget the outage is counted once, as a whole, and the pools give up together.
"""

import otp_py as otp


async def connect() -> None: ...


def tree(pool_intensity: otp.IntensityPolicy) -> otp.SupervisorSpec:
    pools = [
        otp.SupervisorSpec(
            id=f"pool{n}", intensity=pool_intensity,
            children=[otp.ChildSpec.asyncio("conn", connect)],
        )
        for n in range(3)
    ]
    return otp.SupervisorSpec(
        id="root",
        intensity=otp.SlidingWindow(max_restarts=5, period=60.0),
        children=[
            otp.ChildSpec.asyncio("web", connect),
            otp.SupervisorSpec(id="pools", intensity=pool_intensity, children=pools),
        ],
    )


def decisions(sim: otp.Simulation, after: float = 0.0) -> None:
    for report, line in zip(sim.reports, sim.timeline(), strict=True):
        if report.time > after and ("exited" in line or "giving up" in line
                                    or "(restart" in line):
            print("   ", line)


# The database is down from t=1: the connections of pool0, pool1, pool2, pool0 fail.
outage = [(1.0, "pools/pool0/conn", "refused"), (1.1, "pools/pool1/conn", "refused"),
          (1.2, "pools/pool2/conn", "refused"), (2.0, "pools/pool0/conn", "refused")]
window = otp.SlidingWindow(max_restarts=3, period=10.0)

if __name__ == "__main__":
    print("A budget each: no pool failed more than 3 times in 10 s.")
    decisions(otp.simulate(tree(window), outage))

    print("One budget: 4 failures in 10 s, the 4th is one too many for all of them.")
    shared = otp.SharedBudget("database", window)
    decisions(otp.simulate(tree(shared), outage))

    print("A restarted scope starts afresh: the outage was counted against the old one.")
    later = [(3.0, "pools/pool1/conn", "refused"), (15.0, "pools/pool1/conn", "refused")]
    decisions(otp.simulate(tree(shared), outage + later, until=20.0), after=2.0)
