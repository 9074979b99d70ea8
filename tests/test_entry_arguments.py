"""What is handed to run(), start(), supervise() and simulate() is checked where the
call is written, with an error that says what was expected."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from typing import Any

import pytest

import otp_py as otp


async def task() -> None:
    await asyncio.sleep(3600)


TREE = otp.SupervisorSpec(id="root", children=[otp.ChildSpec.task("t", task)])


def _supervise(spec: Any, **kwargs: Any) -> None:
    async def main() -> None:
        async with otp.supervise(spec, **kwargs):
            pass

    asyncio.run(main())


def _start(spec: Any, **kwargs: Any) -> None:
    otp.start(spec, **kwargs).stop()


def _simulate(spec: Any, **kwargs: Any) -> None:
    kwargs.pop("on_report", None)
    otp.simulate(spec, **kwargs)


ENTRIES: dict[str, Callable[..., Any]] = {
    "run": otp.run, "start": _start, "supervise": _supervise, "simulate": _simulate,
}


@pytest.fixture(params=sorted(ENTRIES))
def entry(request: pytest.FixtureRequest) -> tuple[str, Callable[..., Any]]:
    return request.param, ENTRIES[request.param]


def test_a_child_spec_is_not_a_tree(entry: tuple[str, Callable[..., Any]]) -> None:
    name, call = entry
    threads = threading.active_count()
    with pytest.raises(TypeError, match=rf"^{name}\(\) needs a SupervisorSpec as the root "
                                        r".*a ChildSpec is a child: put it in a tree"):
        call(otp.ChildSpec.task("t", task))
    assert threading.active_count() == threads  # refused before anything started


def test_random_must_be_callable(entry: tuple[str, Callable[..., Any]]) -> None:
    name, call = entry
    with pytest.raises(TypeError, match=rf"^{name}\(\): random must be a function .*"
                                        r"random.Random\(7\).random"):
        call(TREE, random=random.Random(7))


def test_on_report_must_be_callable() -> None:
    for call in (otp.run, _start, _supervise):
        with pytest.raises(TypeError, match=r"on_report must be a function taking one report"):
            call(TREE, on_report=[])


def test_the_root_runs_where_it_is_run(entry: tuple[str, Callable[..., Any]]) -> None:
    name, call = entry
    root = otp.SupervisorSpec(id="root", backend="process",
                              children=[otp.ChildSpec.task("t", task)])
    with pytest.raises(otp.SpecError, match=rf"child 'root': field 'backend': the root "
                                            rf"supervisor runs in the process that calls "
                                            rf"{name}\(\)") as caught:
        call(root)
    assert (caught.value.child_id, caught.value.field) == ("root", "backend")


def test_a_nested_supervisor_on_its_parents_loop_cannot_have_a_watchdog() -> None:
    inner = otp.SupervisorSpec(id="inner", watchdog=otp.LoopWatchdog(),
                               children=[otp.ChildSpec.task("t", task)])
    with pytest.raises(otp.SpecError, match="only the tree's root can watch") as caught:
        otp.SupervisorSpec(id="root", children=[inner])
    assert (caught.value.child_id, caught.value.field) == ("inner", "watchdog")
    # a subtree in a process of its own is the root of its own loop
    own = otp.SupervisorSpec(id="inner", watchdog=otp.LoopWatchdog(), backend="process",
                             children=[otp.ChildSpec.task("t", task)])
    assert otp.SupervisorSpec(id="root", children=[own]).children == (own,)


def test_a_seeded_random_source_is_accepted() -> None:
    sim = otp.simulate(TREE, [(1.0, "t", "crash")], random=random.Random(7).random)
    assert [e.outcome for e in sim.exits()] == ["restart"]


POOL = otp.SupervisorSpec(id="root", children=[
    otp.ChildSpec.task("db", task),
    otp.SupervisorSpec(id="pool", strategy="simple_one_for_one",
                       children=[otp.ChildSpec.task("w", task)]),
])


@pytest.mark.parametrize(("event", "message"), [
    ((1.0, "dbb", "crash"), r"no child 'dbb' under 'root' \(its children: 'db', 'pool'\)"),
    ((1.0, "db/", "crash"), "empty part"),
    ((1.0, "pool//w#1", "crash"), "empty part"),
    ((1.0, "pool", "crash"), "'pool' is a supervisor; events end workers"),
    ((1.0, "pool/x#1", "crash"), "no child 'x#1' under 'root/pool'"),
    ((float("nan"), "db", "crash"), "the time must be a finite number"),
    ((-1, "db", "crash"), "the time must be a finite number"),
    (("1", "db", "crash"), "the time must be a finite number"),
])
def test_simulate_refuses_events_that_cannot_mean_anything(event: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        otp.simulate(POOL, [event])


def test_simulate_refuses_malformed_events_and_options() -> None:
    with pytest.raises(TypeError, match=r"an event is \(time, path, reason\)"):
        otp.simulate(POOL, [(1.0, "db")])
    with pytest.raises(TypeError, match="a path is a string"):
        otp.simulate(POOL, [(1.0, None, "crash")])
    with pytest.raises(ValueError, match="until must be a finite number"):
        otp.simulate(POOL, until=float("inf"))
    with pytest.raises(ValueError, match="start_failures key 'dbx'"):
        otp.simulate(POOL, start_failures={"dbx": [1]})


def test_simulate_accepts_every_path_the_tree_can_have() -> None:
    sim = otp.simulate(POOL, [(1.0, "db", "crash"), (2.0, "root/db", "crash"),
                              (3.0, "pool/w#1", "crash")])
    assert [e.path for e in sim.exits()] == ["db", "db"]  # no dynamic child was started
