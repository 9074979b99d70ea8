"""``Supervisor.update(new_spec)``: reloading a running tree, with real children.

Command children give real pids to compare: an unchanged child keeps its process, a
changed one gets a new one, an added one runs, a removed one is gone. A subtree in a
process of its own is reloaded through its pipe like any nested supervisor. A spec
that cannot replace the running one is refused before anything changes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
import pytest
import targets
from kit import gone, pid_of, tree, wait_gone

import otp_py as otp


def sleeper(cid: str, seconds: int = 300, **fields: Any) -> otp.ChildSpec:
    return otp.ChildSpec.command(cid, ["sleep", str(seconds)], **fields)


def pids(sup: otp.Supervisor, supervisor: str = "") -> dict[str, int | None]:
    return {c.id: c.pid for c in sup.which_children(supervisor)}


def test_update_starts_stops_and_restarts_only_what_changed() -> None:
    old = tree(sleeper("keep"), sleeper("change"), sleeper("gone"))
    with otp.start(old) as sup:
        before = pids(sup)
        new = tree(sleeper("added"), sleeper("keep"), sleeper("change", 301))
        result = sup.update(new)
        assert result.summary() == {
            "added": ["root/added"], "removed": ["root/gone"],
            "changed": ["root/change (start)"], "unchanged": ["root/keep"], "updated": []}
        after = pids(sup)
        assert list(after) == ["added", "keep", "change"]  # the new spec's order
        assert after["keep"] == before["keep"]
        assert after["change"] not in (None, before["change"])
        assert after["added"] is not None
        wait_gone([before["gone"], before["change"]])  # type: ignore[list-item]
        assert sup.get_childspec("change").start == ("sleep", "301")
        assert sup.update(new).is_empty  # applied: nothing left to do


def test_a_dry_run_changes_nothing() -> None:
    old = tree(sleeper("a"), sleeper("b"))
    with otp.start(old) as sup:
        before = pids(sup)
        result = sup.update(tree(sleeper("a", 301)), dry_run=True)
        assert result.removed == ("b",) and result.changed == (("a", ("start",)),)
        assert pids(sup) == before
        assert sup.update(tree(sleeper("a", 301)), dry_run=True) == result


def test_nested_supervisors_are_reloaded_in_place_even_in_their_own_process() -> None:
    inline = otp.SupervisorSpec(id="pool", children=[sleeper("w1")])
    far = otp.SupervisorSpec(id="far", backend="process", children=[sleeper("x1")])
    with otp.start(tree(inline, far)) as sup:
        w1, x1, far_pid = pid_of(sup, "pool/w1"), pid_of(sup, "far/x1"), pid_of(sup, "far")
        sup.update(tree(attrs.evolve(inline, strategy="one_for_all",
                                     children=[sleeper("w1"), sleeper("w2")]),
                        attrs.evolve(far, children=[sleeper("x2")])))
        assert pid_of(sup, "pool/w1") == w1 and pid_of(sup, "far") == far_pid
        assert [c.id for c in sup.which_children("pool")] == ["w1", "w2"]
        assert [c.id for c in sup.which_children("far")] == ["x2"]
        wait_gone([x1])
        assert not gone(pid_of(sup, "far/x2"))
        # the nested supervisor's new strategy is in force: one_for_all
        sup.terminate_child("pool/w2")
        sup.restart_child("pool/w2")
        assert sup.get_childspec("pool").strategy.name == "one_for_all"


@pytest.mark.parametrize("new, error", [
    ("not a spec", TypeError),
    (otp.SupervisorSpec(id="other", children=[]), otp.SpecError),
    (otp.SupervisorSpec(id="root", strategy="simple_one_for_one",
                        children=[otp.ChildSpec.command("t", ["sleep", "1"])]), otp.SpecError),
    (otp.SupervisorSpec(id="root", backend="process"), otp.SpecError),
])
def test_a_spec_that_cannot_replace_the_tree_changes_nothing(new: Any, error: type) -> None:
    with otp.start(tree(sleeper("a"))) as sup:
        before = pids(sup)
        with pytest.raises(error):
            sup.update(new)
        assert pids(sup) == before


def test_update_is_for_the_root_handle() -> None:
    inner = otp.SupervisorSpec(id="pool", children=[sleeper("w")])
    with otp.start(tree(inner)) as sup, pytest.raises(otp.NotSupportedError):
        sup.at("pool").update(inner)


def test_a_name_held_by_an_added_child_is_refused() -> None:
    old = tree(otp.ChildSpec(id="t", start=targets.task_forever))
    with otp.start(old) as sup:
        sup.start_child(otp.ChildSpec(id="extra", start=targets.task_forever, name="db"))
        with pytest.raises(otp.NameTakenError):
            sup.update(tree(otp.ChildSpec(id="t", start=targets.task_forever, name="db")))
        assert [c.id for c in sup.which_children()] == ["t", "extra"]  # unchanged
        # A name the new spec declares is found where it now lives.
        sup.update(tree(otp.ChildSpec(id="t", start=targets.task_forever, name="cache")))
        found = sup.whereis("cache")
        assert found is not None and found.id == "t"
        # start_child's extra child, declared by neither spec, is left running.
        assert [c.id for c in sup.which_children()] == ["t", "extra"]


def test_the_async_handle_updates_too() -> None:
    async def main() -> None:
        old = tree(otp.ChildSpec(id="a", start=targets.task_forever))
        async with otp.supervise(old) as sup:
            new = tree(otp.ChildSpec(id="a", start=targets.task_forever),
                       otp.ChildSpec(id="b", start=targets.task_forever))
            result = await sup.update(new)
            assert result.added == ("b",)
            assert [c.id for c in await sup.which_children()] == ["a", "b"]

    asyncio.run(main())
