"""How-to: write a restart strategy. Restart a failed child with its dependents."""

from collections.abc import Iterator, Mapping

import otp_py as otp


class OneForDependents(otp.RestartStrategy):
    """Restart the failed child and every child that depends on it, directly or not.

    ``needs`` maps a child id to the ids it depends on. Dependents are stopped in
    reverse start order and started again in start order, like rest_for_one, but
    siblings that do not depend on the failed child are left alone.
    """

    name = "one_for_dependents"

    def __init__(self, needs: Mapping[str, list[str]]) -> None:
        # Strategies are values: equality and hash come from the attributes, so
        # keep them immutable and hashable (tuples, not a dict of lists).
        self.needs = tuple((child, tuple(deps)) for child, deps in needs.items())

    def affected(self, failed: str) -> set[str]:
        group, grew = {failed}, True
        while grew:
            grew = False
            for child, deps in self.needs:
                if child not in group and group.intersection(deps):
                    group.add(child)
                    grew = True
        return group

    def plan(self, failed: str, siblings: otp.Siblings) -> otp.RestartPlan:
        group = self.affected(failed)
        return otp.RestartPlan.group(failed, [c for c in siblings if c in group])


class Row:
    """Siblings for a unit test: running permanent children, in start order."""

    def __init__(self, *ids: str) -> None:
        self.ids = ids

    def __iter__(self) -> Iterator[str]:
        return iter(self.ids)

    def __reversed__(self) -> Iterator[str]:
        return reversed(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, child_id: object) -> bool:
        return child_id in self.ids

    def after(self, child_id: str) -> Iterator[str]:
        return iter(self.ids[self.ids.index(child_id) + 1:])

    def restart_type(self, child_id: str) -> otp.Restart:
        return otp.Restart.PERMANENT

    def is_running(self, child_id: str) -> bool:
        return True


async def serve() -> None: ...


strategy = OneForDependents({"cache": ["db"], "api": ["cache"], "mailer": []})
tree = otp.SupervisorSpec(
    id="root",
    strategy=strategy,
    intensity=otp.SlidingWindow(max_restarts=3, period=5.0),
    children=[otp.ChildSpec.asyncio(cid, serve) for cid in ("db", "mailer", "cache", "api")],
)

if __name__ == "__main__":
    # A plan is plain data: test the strategy by calling it.
    plan = strategy.plan("db", Row("db", "mailer", "cache", "api"))
    assert plan == otp.RestartPlan(stop=("api", "cache"), start=("db", "cache", "api"))
    assert strategy.plan("mailer", Row("db", "mailer", "cache", "api")).stop == ()
    print("plan for db:", plan)

    # And see what a tree using it decides, on the fake clock.
    sim = otp.simulate(tree, [(1.0, "db", "connection lost"), (2.0, "mailer", "smtp down")])
    print("\n".join(sim.timeline()[6:]))
