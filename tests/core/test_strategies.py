"""Restart strategies: their plans as data, a user strategy end to end, and what a
broken strategy does to its supervisor (it exits abnormally; it never hangs)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import otp_py as otp
from otp_py import reports as rp
from otp_py.reasons import Abnormal


class FakeSiblings:
    """A Siblings view over a fixed list of children, in start order."""

    def __init__(self, *ids: str, temporary: tuple[str, ...] = ()) -> None:
        self._ids = ids
        self._temporary = set(temporary)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __reversed__(self) -> Iterator[str]:
        return reversed(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, child_id: object) -> bool:
        return child_id in self._ids

    def after(self, child_id: str) -> Iterator[str]:
        return iter(self._ids[self._ids.index(child_id) + 1 :])

    def restart_type(self, child_id: str) -> otp.Restart:
        return otp.Restart.TEMPORARY if child_id in self._temporary else otp.Restart.PERMANENT

    def is_running(self, child_id: str) -> bool:
        return True


async def idle() -> None:  # never run: the simulation starts nothing
    pass


def plan(stop: tuple[str, ...], start: tuple[str, ...]) -> otp.RestartPlan:
    return otp.RestartPlan(stop=stop, start=start)


# ----------------------------------------------------------------------- RestartPlan


def test_just_restarts_only_the_failed_child() -> None:
    assert otp.RestartPlan.just("b") == plan((), ("b",))


def test_group_stops_the_others_in_reverse_and_starts_all_in_order() -> None:
    assert otp.RestartPlan.group("b", ["a", "b", "c", "d"]) == plan(("d", "c", "a"),
                                                                    ("a", "b", "c", "d"))


def test_group_of_the_failed_child_alone_stops_nothing() -> None:
    assert otp.RestartPlan.group("b", ["b"]) == plan((), ("b",))


def test_plan_converts_iterables_to_tuples() -> None:
    result = otp.RestartPlan(stop=iter(["c"]), start=["b", "c"])
    assert (result.stop, result.start) == (("c",), ("b", "c"))


@pytest.mark.parametrize(
    ("stop", "start"), [pytest.param("db", ("db",), id="stop"), pytest.param((), "db", id="start")]
)
def test_plan_refuses_a_bare_string_of_ids(stop: Any, start: Any) -> None:
    # A str is iterable: taken as is, "db" would become the ids "d" and "b".
    with pytest.raises(TypeError, match="'db'"):
        otp.RestartPlan(stop=stop, start=start)


# ------------------------------------------------------------ built-in strategy plans

ABCD = FakeSiblings("a", "b", "c", "d")


@pytest.mark.parametrize(
    ("strategy", "failed", "expected"),
    [
        pytest.param(otp.OneForOne(), "b", plan((), ("b",)), id="one_for_one"),
        pytest.param(otp.SimpleOneForOne(), "b", plan((), ("b",)), id="simple_one_for_one"),
        pytest.param(otp.OneForAll(), "b", plan(("d", "c", "a"), ("a", "b", "c", "d")),
                     id="one_for_all-middle"),
        pytest.param(otp.OneForAll(), "a", plan(("d", "c", "b"), ("a", "b", "c", "d")),
                     id="one_for_all-first"),
        pytest.param(otp.OneForAll(), "d", plan(("c", "b", "a"), ("a", "b", "c", "d")),
                     id="one_for_all-last"),
        pytest.param(otp.RestForOne(), "b", plan(("d", "c"), ("b", "c", "d")),
                     id="rest_for_one-middle"),
        pytest.param(otp.RestForOne(), "a", plan(("d", "c", "b"), ("a", "b", "c", "d")),
                     id="rest_for_one-first"),
        pytest.param(otp.RestForOne(), "d", plan((), ("d",)), id="rest_for_one-last"),
    ],
)
def test_builtin_strategy_plan(
    strategy: otp.RestartStrategy, failed: str, expected: otp.RestartPlan
) -> None:
    assert strategy.plan(failed, ABCD) == expected


def test_one_for_all_plan_names_temporary_siblings_too() -> None:
    # The core, not the strategy, skips restarting temporary children.
    siblings = FakeSiblings("a", "b", "c", temporary=("c",))
    assert otp.OneForAll().plan("b", siblings) == plan(("c", "a"), ("a", "b", "c"))


def test_one_for_one_plan_does_not_look_at_siblings() -> None:
    class Untouchable(FakeSiblings):
        def __iter__(self) -> Iterator[str]:
            raise AssertionError("one_for_one must not scan its siblings")

    assert otp.OneForOne().plan("b", Untouchable("a", "b")) == plan((), ("b",))


@pytest.mark.parametrize(
    ("strategy", "name", "dynamic"),
    [
        (otp.OneForOne(), "one_for_one", False),
        (otp.OneForAll(), "one_for_all", False),
        (otp.RestForOne(), "rest_for_one", False),
        (otp.SimpleOneForOne(), "simple_one_for_one", True),
    ],
)
def test_builtin_strategy_names(strategy: otp.RestartStrategy, name: str, dynamic: bool) -> None:
    assert (strategy.name, strategy.dynamic) == (name, dynamic)


def test_strategies_are_values() -> None:
    assert otp.OneForAll() == otp.OneForAll()
    assert hash(otp.OneForAll()) == hash(otp.OneForAll())
    assert otp.OneForAll() != otp.OneForOne()


def test_base_strategy_has_no_plan() -> None:
    with pytest.raises(NotImplementedError):
        otp.RestartStrategy().plan("a", ABCD)


# ------------------------------------------------------------- a user strategy, run


class OneForPrefix(otp.RestartStrategy):
    """Restart the failed child and every sibling sharing its id prefix."""

    name = "one_for_prefix"

    def plan(self, failed: str, siblings: otp.Siblings) -> otp.RestartPlan:
        prefix = failed.partition(".")[0]
        group = [c for c in siblings if c.partition(".")[0] == prefix]
        return otp.RestartPlan.group(failed, group)


PREFIX_TREE = otp.SupervisorSpec(
    id="root",
    strategy=OneForPrefix(),
    children=[
        otp.ChildSpec(id=cid, start=idle)
        for cid in ("db.reader", "cache", "db.writer", "db.pool")
    ],
)


def after(sim: otp.Simulation, when: float) -> list[rp.Report]:
    return [r for r in sim.reports if r.time >= when]


def test_user_strategy_stops_its_group_in_reverse_start_order() -> None:
    sim = otp.simulate(PREFIX_TREE, [(1.0, "db.writer", Abnormal("boom"))])
    stopped = [r.child_id for r in after(sim, 1.0) if isinstance(r, rp.ChildTerminated)]
    assert stopped == ["db.pool", "db.reader"]


def test_user_strategy_restarts_its_group_in_start_order() -> None:
    sim = otp.simulate(PREFIX_TREE, [(1.0, "db.writer", Abnormal("boom"))])
    started = [r.child_id for r in after(sim, 1.0) if isinstance(r, rp.ChildStarted)]
    assert started == ["db.reader", "db.writer", "db.pool"]


def test_user_strategy_leaves_other_children_alone() -> None:
    sim = otp.simulate(PREFIX_TREE, [(1.0, "cache", Abnormal("boom"))])
    touched = [
        r.child_id
        for r in after(sim, 1.0)
        if isinstance(r, rp.ChildTerminated | rp.ChildStarted)
    ]
    assert touched == ["cache"]


def test_user_strategy_name_is_reported() -> None:
    sim = otp.simulate(PREFIX_TREE)
    assert sim.of_type(rp.SupervisorStarting)[0].strategy == "one_for_prefix"


def test_user_strategy_sees_siblings_in_start_order() -> None:
    seen: list[list[str]] = []

    class Recording(otp.RestartStrategy):
        def plan(self, failed: str, siblings: otp.Siblings) -> otp.RestartPlan:
            seen.append(list(siblings))
            return otp.RestartPlan.just(failed)

    spec = otp.SupervisorSpec(
        id="root",
        strategy=Recording(),
        children=[otp.ChildSpec(id=cid, start=idle) for cid in ("z", "a", "m")],
    )
    otp.simulate(spec, [(1.0, "a", Abnormal("boom"))])
    assert seen == [["z", "a", "m"]]


# -------------------------------------------------------------- a broken strategy


class Broken(otp.RestartStrategy):
    """A strategy whose plan is whatever it was given, or raises it."""

    name = "broken"

    def __init__(self, result: Any) -> None:
        self.result = result

    def plan(self, failed: str, siblings: otp.Siblings) -> otp.RestartPlan:
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result  # type: ignore[no-any-return]


class NoPlan(otp.RestartStrategy):
    """A subclass that forgot to implement plan()."""


BROKEN = [
    pytest.param(Broken(None), id="returns-none"),
    pytest.param(Broken(["b"]), id="returns-a-list"),
    pytest.param(Broken(("b",)), id="returns-a-tuple"),
    pytest.param(Broken(RuntimeError("bug in plan")), id="raises"),
    pytest.param(Broken(KeyError("x")), id="raises-lookup-error"),
    pytest.param(Broken(otp.RestartPlan(stop=["nobody"], start=["b"])), id="stops-unknown-id"),
    pytest.param(Broken(otp.RestartPlan(stop=[], start=["nobody"])), id="starts-unknown-id"),
    pytest.param(NoPlan(), id="not-implemented"),
]


def broken_tree(strategy: otp.RestartStrategy) -> otp.SupervisorSpec:
    return otp.SupervisorSpec(
        id="root",
        strategy=strategy,
        children=[otp.ChildSpec(id=cid, start=idle) for cid in ("a", "b", "c")],
    )


@pytest.mark.parametrize("strategy", BROKEN)
def test_broken_strategy_makes_the_supervisor_exit_abnormally(
    strategy: otp.RestartStrategy,
) -> None:
    sim = otp.simulate(broken_tree(strategy), [(1.0, "b", Abnormal("boom"))])
    [exited] = sim.of_type(rp.SupervisorExited)
    assert exited.time == 1.0
    assert exited.reason.is_abnormal
    assert sim.exit_reason == exited.reason


@pytest.mark.parametrize("strategy", BROKEN)
def test_broken_strategy_stops_the_other_children_in_reverse_order(
    strategy: otp.RestartStrategy,
) -> None:
    sim = otp.simulate(broken_tree(strategy), [(1.0, "b", Abnormal("boom"))])
    assert [r.child_id for r in sim.of_type(rp.ChildTerminated)] == ["c", "a"]
    assert [r.child_id for r in after(sim, 1.0) if isinstance(r, rp.ChildStarted)] == []


def test_broken_strategy_reason_names_the_error() -> None:
    sim = otp.simulate(broken_tree(Broken(RuntimeError("bug in plan"))),
                       [(1.0, "b", Abnormal("boom"))])
    assert "bug in plan" in str(sim.exit_reason)


def test_broken_nested_strategy_escalates_to_the_parent() -> None:
    root = otp.SupervisorSpec(
        id="root",
        children=[otp.SupervisorSpec(
            id="pool", strategy=Broken(None), children=[otp.ChildSpec(id="w", start=idle)]
        )],
    )
    sim = otp.simulate(root, [(1.0, "pool/w", Abnormal("boom"))])
    pool_exit = [r for r in sim.of_type(rp.ChildExited) if r.child_id == "pool"]
    assert len(pool_exit) == 1
    assert pool_exit[0].reason.is_abnormal
    assert pool_exit[0].outcome == "restart"
