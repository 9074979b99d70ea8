"""The reload plan (``otp_py._core.reload``) and its execution by the decision core.

Property tests, on random trees and random edits of them (removals, changed fields,
additions, workers turned into supervisors, new orders, new flags):

* applying the plan to the old spec yields the new spec;
* executed by the cores (on the simulator's fake clock, as the runtime walks the
  nested plans), the running tree becomes the new tree: each supervisor's children
  are the new spec's, in its order, with its specs, and every worker runs;
* unchanged children are never touched: same incarnation, no report about them.

Then the rules one by one: what counts as the same callable, what makes a nested
supervisor restart, what the root refuses, flags in place, and the restart budget
kept across a reload.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # for `tests.strategies`

import otp_py as otp
from otp_py import reports as rp
from otp_py._core import events as ev
from otp_py._core import simulate as simulate_module
from otp_py._core.reload import Reload, ReloadPlan, changed_fields, plan, same_value
from otp_py._core.supervisor import RUNNING
from tests import strategies as ts

EXAMPLES = 200


# ------------------------------------------------------------------ random edits


def _worker(child_id: str, draw: st.DrawFn) -> otp.ChildSpec:
    return draw(ts.workers(child_id))


@st.composite
def edits(draw: st.DrawFn, old: otp.SupervisorSpec) -> otp.SupervisorSpec:
    """A new version of ``old``: children removed, changed, added, turned into
    supervisors, reordered; flags changed; nested supervisors edited recursively."""
    fresh = iter(f"n{index}" for index in range(100))

    def edit(child: Any, what: str) -> Any:
        if what == "flip":  # worker -> supervisor, supervisor -> worker
            if child.is_supervisor:
                return _worker(child.id, draw)
            return otp.SupervisorSpec(id=child.id, children=[_worker("a", draw)])
        if what == "change":
            if child.is_supervisor:
                return attrs.evolve(level(child, False), shutdown=draw(ts.supervisor_shutdowns))
            return attrs.evolve(child, start_timeout=draw(st.sampled_from([1.0, 2.0])),
                                shutdown=draw(ts.shutdowns))
        return level(child, False) if child.is_supervisor else child

    def level(sup: otp.SupervisorSpec, is_root: bool) -> otp.SupervisorSpec:
        children: list[Any] = []
        for was in sup.children:
            what = draw(st.sampled_from(["keep", "keep", "keep", "remove", "change", "flip"]))
            if what != "remove":
                children.append(edit(was, what))
        for _ in range(draw(st.integers(0, 2))):
            at = draw(st.integers(0, len(children)))
            children.insert(at, _worker(next(fresh), draw))
        if draw(st.booleans()):
            children = draw(st.permutations(children))
        if is_root and not children:
            children = [_worker(next(fresh), draw)]
        flags: dict[str, Any] = {}
        if draw(st.booleans()):
            flags["strategy"] = draw(st.sampled_from(ts.STATIC_STRATEGIES))
        if draw(st.booleans()):
            flags["intensity"] = draw(ts.intensities())
        return attrs.evolve(sup, children=children, **flags)

    return level(old, True)


@st.composite
def reloads(draw: st.DrawFn) -> tuple[otp.SupervisorSpec, otp.SupervisorSpec]:
    old = draw(ts.nested_specs(max_depth=3, max_children=4))
    return old, draw(edits(old))


def apply(old: Any, done: ReloadPlan, new: Any) -> Any:
    """The plan applied to the old spec, as data: unchanged children are the old
    ones, changed and added ones come from the new spec, nested plans recurse; the
    supervisor's own fields are the new ones."""
    before = {c.id: c for c in old.children}
    after = {c.id: c for c in new.children}
    nested = {sub.path[-1]: sub for sub in done.nested}
    replaced = {cid for cid, _ in done.changed} | set(done.added)
    children = []
    for cid in done.order:
        if cid in nested:
            children.append(apply(before[cid], nested[cid], after[cid]))
        elif cid in replaced:
            children.append(after[cid])
        else:
            assert cid in done.unchanged
            children.append(before[cid])
    own = {f.name: getattr(new, f.name) for f in attrs.fields(type(new)) if f.name != "children"}
    return type(new)(children=children, **own)


def assert_same_tree(got: Any, want: Any) -> None:
    assert changed_fields(got, want) == (), (got, want)
    if want.is_supervisor:
        assert [c.id for c in got.children] == [c.id for c in want.children]
        for mine, theirs in zip(got.children, want.children, strict=True):
            assert_same_tree(mine, theirs)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reloads())
def test_applying_the_plan_to_the_old_tree_yields_the_new_tree(
    pair: tuple[otp.SupervisorSpec, otp.SupervisorSpec],
) -> None:
    old, new = pair
    done = plan(old, new)
    assert_same_tree(apply(old, done, new), new)
    ids = {cid for cid, _ in done.changed} | set(done.added) | set(done.unchanged) \
        | {sub.path[-1] for sub in done.nested}
    assert sorted(ids) == sorted(done.order)  # every new child is in exactly one list
    assert not set(done.removed) & set(done.order)
    assert plan(new, new).is_empty


# ----------------------------------------------------- executed by the cores


def simulated(spec: otp.SupervisorSpec) -> simulate_module._Sim:
    sim = simulate_module._Sim(spec, None, {})
    sim.post(sim.root, ev.Init())
    sim.run_mailbox()
    return sim


def reload(sim: simulate_module._Sim, spec: otp.SupervisorSpec, path: str = "") -> None:
    """What ``Supervisor.update`` does: reload a supervisor, then the nested ones it
    kept whose specs changed."""
    reply = sim.call(path, Reload(spec))
    assert reply is not None and reply.error is None, reply
    nested, failed = reply.value
    assert failed == ()
    by_id = {c.id: c for c in spec.children}
    for child_id in nested:
        reload(sim, by_id[child_id], f"{path}/{child_id}" if path else child_id)


def untouched_workers(done: ReloadPlan, new: otp.SupervisorSpec) -> Iterator[str]:
    """The worker paths (relative to the root) a plan leaves alone."""
    sups = ts.supervisors_by_path(new)
    for sub in done.walk():
        here = "/".join(sub.path[1:])
        prefix = f"{here}/" if here else ""
        for cid in sub.unchanged:
            spec = {c.id: c for c in sups[sub.path].children}[cid]
            if spec.is_supervisor:
                yield from ts.worker_paths(spec, f"{prefix}{cid}/")
            else:
                yield f"{prefix}{cid}"


def _mentions(report: rp.Report, path: str) -> bool:
    child = getattr(report, "child_id", None)
    if child is None:
        return False
    full = "/".join((*report.path[1:], child))
    return full == path or full.startswith(path + "/") or path.startswith(full + "/")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reloads())
def test_the_cores_become_the_new_tree_and_never_touch_unchanged_children(
    pair: tuple[otp.SupervisorSpec, otp.SupervisorSpec],
) -> None:
    old, new = pair
    sim = simulated(old)
    before = dict(sim.path_of_worker)
    assert sorted(before) == sorted(ts.worker_paths(old))
    seen = len(sim.reports)
    done = plan(old, new)
    reload(sim, new)
    # The running tree is the new one: same supervisors, children in the new order
    # with the new specs, every worker running.
    for path, sup in ts.supervisors_by_path(new).items():
        core = sim.core_at("/".join(path[1:]))
        assert core is not None, path
        assert_same_tree(core.spec, sup)
        records = list(core._children.values())
        assert [c.id for c in records] == [c.id for c in sup.children]
        for record, spec in zip(records, sup.children, strict=True):
            assert changed_fields(record.spec, spec) == ()
            assert record.state == RUNNING
    assert sorted(sim.path_of_worker) == sorted(ts.worker_paths(new))
    # Unchanged children: the same incarnation, and not a word about them.
    for path in untouched_workers(done, new):
        assert sim.path_of_worker[path] == before[path], path
        assert not any(_mentions(r, path) for r in sim.reports[seen:]), path
    assert sim.exit_reason is None


# ------------------------------------------------------------------- the rules


def work(*_: Any) -> None:
    """A module-level start function."""


async def task(*_: Any) -> None:
    """A module-level coroutine function."""


def make_closure(value: int) -> Any:
    def run() -> int:
        return value

    return run


def tree(*children: Any, **fields: Any) -> otp.SupervisorSpec:
    return otp.SupervisorSpec(id="root", children=list(children), **fields)


def worker(child_id: str, **fields: Any) -> otp.ChildSpec:
    return otp.ChildSpec.task(child_id, task, **fields)


def test_callables_are_the_same_by_what_they_name() -> None:
    copy = type(work)(work.__code__, work.__globals__, "work")
    copy.__qualname__ = work.__qualname__
    assert copy is not work and same_value(work, copy)  # a module imported again
    assert not same_value(work, task)
    one, other = make_closure(1), make_closure(2)
    assert not same_value(one, other)  # closures: by identity only
    assert same_value(one, one)
    assert same_value(functools.partial(work, 1, a=2), functools.partial(copy, 1, a=2))
    assert not same_value(functools.partial(work, 1), functools.partial(work, 2))
    assert same_value({"k": (work, [1])}, {"k": (copy, [1])})
    assert not same_value((1,), [1])


def test_a_plan_names_what_changed() -> None:
    old = tree(worker("a"), worker("b"), worker("c"), worker("d"))
    new = tree(worker("e"), worker("d"), worker("b", args=(1,)), worker("a"),
               strategy="one_for_all")
    done = plan(old, new)
    assert done.flags == ("strategy",)
    assert done.removed == ("c",)
    assert done.changed == (("b", ("args",)),)
    assert done.added == ("e",)
    assert done.unchanged == ("d", "a")
    assert done.order == ("e", "d", "b", "a")
    assert done.summary() == {"added": ["root/e"], "removed": ["root/c"],
                              "changed": ["root/b (args)"], "unchanged": ["root/d", "root/a"],
                              "updated": ["root (strategy, order)"]}


def test_removed_children_stop_in_reverse_start_order() -> None:
    old = tree(worker("a"), worker("b"), worker("c"), worker("d"))
    assert plan(old, tree(worker("c"))).removed == ("d", "b", "a")


def test_nested_supervisors_are_updated_in_place_or_restarted() -> None:
    inner = otp.SupervisorSpec(id="pool", children=[worker("w")])
    old = tree(inner)
    flags = plan(old, tree(attrs.evolve(inner, strategy="rest_for_one", shutdown=5.0)))
    assert flags.changed == () and flags.unchanged == ()
    [sub] = flags.nested
    assert sub.path == ("root", "pool") and sub.flags == ("strategy", "shutdown")
    grown = plan(old, tree(attrs.evolve(inner, children=[worker("w"), worker("x")])))
    assert grown.nested[0].added == ("x",) and grown.nested[0].unchanged == ("w",)
    for new, field in [
        (worker("pool"), "kind"),
        (attrs.evolve(inner, strategy="simple_one_for_one"), "strategy"),
        (attrs.evolve(inner, intensity=otp.SharedBudget("db")), "intensity"),
    ]:
        done = plan(old, tree(new))
        assert done.changed == (("pool", (field,)),) and done.nested == ()


def test_a_simple_one_for_one_template_changes_for_later_children_only() -> None:
    old = otp.SupervisorSpec(id="root", strategy="simple_one_for_one",
                             children=[worker("conn")])
    new = attrs.evolve(old, children=[worker("conn", args=("x",))], max_children=3)
    done = plan(old, new)
    assert done.template == ("args",) and done.flags == ("max_children",)
    assert done.changed == () and done.removed == () and done.added == ()
    sim = simulated(old)
    reply = sim.call("", ev.StartChildRequest(extra_args=(1,)))
    assert reply is not None and reply.value == "conn#1"
    first = sim.path_of_worker["conn#1"]
    reload(sim, new)
    assert sim.path_of_worker["conn#1"] == first  # running: untouched
    reply = sim.call("", ev.StartChildRequest(extra_args=(2,)))
    assert reply is not None and reply.value == "conn#2"
    started = [r for r in sim.reports if isinstance(r, rp.ChildStarted)]
    assert [r.child_id for r in started] == ["conn#1", "conn#2"]
    specs = {r.child_id: r for r in started}
    assert specs  # the template now carries the new args:
    core = sim.core_at("")
    assert core is not None and core._children["conn#2"].spec.args == ("x", 2)
    assert core._children["conn#1"].spec.args == (1,)


@pytest.mark.parametrize("new, field", [
    (otp.SupervisorSpec(id="other", children=[worker("a")]), "id"),
    (otp.SupervisorSpec(id="root", strategy="simple_one_for_one", children=[worker("a")]),
     "strategy"),
    (otp.SupervisorSpec(id="root", intensity=otp.SharedBudget("x"), children=[worker("a")]),
     "intensity"),
])
def test_the_root_refuses_what_only_a_restart_could_do(new: Any, field: str) -> None:
    old = tree(worker("a"))
    with pytest.raises(otp.SpecError) as caught:
        plan(old, new)
    assert caught.value.field == field
    sim = simulated(old)
    reply = sim.call("", Reload(new))
    assert reply is not None and isinstance(reply.error, otp.SpecError)
    core = sim.core_at("")
    assert core is not None and core.spec is old  # nothing changed


def test_a_new_strategy_applies_to_the_next_failure() -> None:
    old = tree(worker("a"), worker("b"), intensity=otp.SlidingWindow(5, 10))
    sim = simulated(old)
    reload(sim, attrs.evolve(old, strategy="one_for_all"))
    seen = len(sim.reports)
    b = sim.path_of_worker["b"]
    sim.fail("a", "boom")
    sim.run_mailbox()
    assert sim.path_of_worker["b"] != b  # one_for_all: b restarted with a
    restarted = [r.child_id for r in sim.reports[seen:] if isinstance(r, rp.ChildStarted)]
    assert restarted == ["a", "b"]


def _crash(sim: simulate_module._Sim, path: str, at: float) -> None:
    sim.advance_to(at)
    sim.fail(path, "boom")
    sim.run_mailbox()


@pytest.mark.parametrize("intensity", [otp.SlidingWindow(2, 10), otp.SlidingWindow(3, 10)])
def test_the_restart_budget_is_kept_across_a_reload(intensity: otp.SlidingWindow) -> None:
    old = tree(worker("a"), worker("b"), intensity=otp.SlidingWindow(2, 10))
    sim = simulated(old)
    _crash(sim, "a", 1.0)
    _crash(sim, "a", 2.0)  # two restarts charged: the window is full
    # A reload with another child (and maybe a larger window) does not reset it.
    reload(sim, attrs.evolve(old, children=[worker("a"), worker("c")], intensity=intensity))
    _crash(sim, "a", 3.0)
    gave_up = [r for r in sim.reports if isinstance(r, rp.IntensityExceeded)]
    if intensity.max_restarts == 2:
        assert gave_up and sim.exit_reason is not None
    else:
        assert not gave_up and sim.exit_reason is None  # the 3rd restart fits
        _crash(sim, "a", 4.0)
        assert sim.exit_reason is not None  # the 4th does not: 3 were remembered


def test_a_reload_does_not_touch_a_supervisor_that_is_not_running() -> None:
    old = tree(worker("a"))
    sim = simulate_module._Sim(old, None, {})  # never initialised
    request_id = 1
    actions = sim.root.handle(ev.Call(request_id, Reload(tree(worker("b")))), 0.0)
    [reply] = [a for a in actions if isinstance(a, ev.Reply)]
    assert isinstance(reply.error, otp.SupervisorNotRunningError)


def test_a_child_that_fails_to_start_at_a_reload_stays_stopped() -> None:
    old = tree(worker("a"))
    sim = simulated(old)
    sim.extra_failures["b"] = 1
    reply = sim.call("", Reload(tree(worker("a"), worker("b"))))
    assert reply is not None and reply.error is None
    _nested, failed = reply.value
    assert [cid for cid, _ in failed] == ["b"]
    core = sim.core_at("")
    assert core is not None and core._children["b"].state == "stopped"
    assert sim.exit_reason is None
    reply = sim.call("", ev.RestartChild("b"))  # and can be started again
    assert reply is not None and reply.error is None and "b" in sim.path_of_worker
