"""Dynamic-supervisor limits and lookup, as Elixir has them: ``max_children`` on a
simple_one_for_one supervisor (``DynamicSupervisor``), tree-wide names and
``whereis`` (``Registry``), and partitioned supervisors (``PartitionSupervisor``).

Children are asyncio tasks (nothing to leak); waits are on reports, never sleeps.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import targets
from kit import tree

import otp_py as otp
from otp_py import reports as rp
from tests.reports import Recorder


def task(cid: str, **fields: Any) -> otp.ChildSpec:
    return otp.ChildSpec(id=cid, start=targets.task_forever, **fields)


def pool(start: Any = targets.task_forever, **fields: Any) -> otp.SupervisorSpec:
    template = otp.ChildSpec(id="w", start=start)
    return otp.SupervisorSpec(id="pool", strategy="simple_one_for_one", children=[template],
                              **fields)


def restarted(seen: Recorder, child_id: str) -> None:
    seen.wait_for(lambda r: isinstance(r, rp.ChildStarted) and r.child_id == child_id
                  and r.restarts == 1)


# -- max_children -------------------------------------------------------------------


def test_start_child_beyond_max_children_is_refused() -> None:
    with otp.start(tree(pool(max_children=2))) as sup:
        assert [sup.start_child(supervisor="pool") for _ in (1, 2)] == ["w#1", "w#2"]
        with pytest.raises(otp.MaxChildrenError) as info:
            sup.start_child(supervisor="pool")
        assert info.value.supervisor == ("root", "pool") and info.value.max_children == 2
        assert "max_children=2" in str(info.value) and "'root/pool'" in str(info.value)
        assert [c.id for c in sup.which_children("pool")] == ["w#1", "w#2"]


def test_a_freed_place_can_be_taken_again() -> None:
    with otp.start(tree(pool(max_children=1))) as sup:
        first = sup.start_child(supervisor="pool")
        sup.terminate_child(f"pool/{first}")
        assert sup.start_child(supervisor="pool") == "w#2"


def test_max_children_zero_refuses_every_start() -> None:
    with otp.start(tree(pool(max_children=0))) as sup, pytest.raises(otp.MaxChildrenError):
        sup.start_child(supervisor="pool")


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"max_children": -1}, otp.SpecError),
        ({"max_children": 2.0}, otp.SpecTypeError),
        ({"max_children": True}, otp.SpecTypeError),
    ],
)
def test_bad_max_children_is_refused_naming_the_field(fields: Any, error: type) -> None:
    with pytest.raises(error) as info:
        pool(**fields)
    assert (info.value.child_id, info.value.field) == ("pool", "max_children")


def test_max_children_on_a_static_supervisor_is_refused() -> None:
    with pytest.raises(otp.SpecError, match="simple_one_for_one") as info:
        otp.SupervisorSpec(id="s", children=[task("a")], max_children=3)
    assert info.value.field == "max_children"


# -- names and whereis ----------------------------------------------------------------


def test_whereis_finds_a_named_child_anywhere_in_the_tree() -> None:
    inner = otp.SupervisorSpec(id="inner", children=[task("db", name="database")])
    with otp.start(tree(task("a"), inner)) as sup:
        found = sup.whereis("database")
        assert found is not None and (found.id, found.state) == ("db", "running")
        assert found.details  # what the runtime knows (the task)
        assert sup.at("inner").whereis("database") == found  # names are tree-wide
        assert sup.whereis("inner/db") == found  # a path works too
        assert sup.whereis("a") is not None and sup.whereis("nobody") is None


def test_a_restarted_child_keeps_its_name(tmp_path: Any) -> None:
    seen = Recorder()
    child = otp.ChildSpec(id="db", start=targets.task_once, args=(str(tmp_path / "m"), "raise"),
                          name="database")
    with otp.start(tree(child), on_report=seen) as sup:
        restarted(seen, "db")
        found = sup.whereis("database")
        assert found is not None and (found.id, found.restarts) == ("db", 1)


def test_a_dynamic_child_gets_its_name_from_start_child_and_keeps_it(tmp_path: Any) -> None:
    seen = Recorder()
    with otp.start(tree(pool(targets.task_once)), on_report=seen) as sup:
        cid = sup.start_child(args=(str(tmp_path / "m"), "raise"), supervisor="pool",
                              name="alice")
        restarted(seen, cid)
        found = sup.whereis("alice")
        assert found is not None and (found.id, found.restarts) == (cid, 1)
        assert found.spec.name == "alice"


def test_duplicate_names_in_a_spec_are_refused_at_start() -> None:
    inner = otp.SupervisorSpec(id="inner", children=[task("b", name="x")])
    with pytest.raises(otp.SpecError, match="unique across the whole tree") as info:
        otp.start(tree(task("a", name="x"), inner))
    assert (info.value.child_id, info.value.field) == ("b", "name")
    with pytest.raises(otp.SpecError):
        otp.simulate(tree(task("a", name="x"), inner))


def test_a_name_in_a_simple_one_for_one_template_is_refused() -> None:
    spec = otp.SupervisorSpec(id="pool", strategy="simple_one_for_one",
                              children=[task("w", name="x")])
    with pytest.raises(otp.SpecError, match="start_child") as info:
        otp.start(tree(spec))
    assert info.value.field == "name"


def test_start_child_with_a_taken_name_is_refused() -> None:
    with otp.start(tree(task("a", name="x"), pool())) as sup:
        with pytest.raises(otp.NameTakenError, match="'root/a'") as info:
            sup.start_child(supervisor="pool", name="x")
        assert (info.value.name, info.value.path) == ("x", ("root", "a"))
        assert isinstance(info.value, otp.AlreadyStartedError)  # OTP's answer
        assert sup.which_children("pool") == []  # nothing started
        sup.start_child(supervisor="pool", name="y")
        with pytest.raises(otp.NameTakenError):
            sup.start_child(task("b", name="y"))
        with pytest.raises(otp.NameTakenError):
            sup.start_child(otp.SupervisorSpec(id="s", children=[task("c", name="y")]))
        assert [c.id for c in sup.which_children()] == ["a", "pool"]


def test_the_name_of_a_child_that_left_is_free_again() -> None:
    with otp.start(tree(pool())) as sup:
        cid = sup.start_child(supervisor="pool",
                              name="alice")
        sup.terminate_child(f"pool/{cid}")
        assert sup.whereis("alice") is None
        again = sup.start_child(supervisor="pool",
                                name="alice")
        found = sup.whereis("alice")
        assert found is not None and found.id == again


def test_a_failed_start_frees_its_name() -> None:
    with otp.start(tree()) as sup:
        bad = otp.ChildSpec(id="bad", start=targets.task_raise, name="x", ready=True)
        with pytest.raises(otp.StartChildError):
            sup.start_child(bad)
        sup.start_child(task("good", name="x"))
        found = sup.whereis("x")
        assert found is not None and found.id == "good"


def test_names_of_a_started_subtree_are_registered() -> None:
    with otp.start(tree()) as sup:
        sup.start_child(otp.SupervisorSpec(id="s", name="sub", children=[task("c", name="c1")]))
        found = sup.whereis("c1")
        assert found is not None and found.id == "c"
        sub = sup.whereis("sub")
        assert sub is not None and sub.is_supervisor


@pytest.mark.parametrize(
    ("name", "error"), [("", otp.SpecError), ("a/b", otp.SpecError), (3, otp.SpecTypeError)]
)
def test_a_bad_name_is_refused_naming_the_child(name: Any, error: type) -> None:
    with pytest.raises(error) as info:
        task("a", name=name)
    assert (info.value.child_id, info.value.field) == ("a", "name")


def test_start_child_name_is_checked_and_only_for_dynamic_children() -> None:
    with otp.start(tree(pool())) as sup:
        with pytest.raises(ValueError, match="'/'"):
            sup.start_child(supervisor="pool", name="a/b")
        with pytest.raises(TypeError, match="ChildSpec"):
            sup.start_child(task("b"), name="x")


def test_whereis_on_the_async_handle() -> None:
    async def main() -> None:
        async with otp.supervise(tree(pool())) as sup:
            cid = await sup.start_child(supervisor="pool",
                                        name="bob")
            found = await sup.whereis("bob")
            assert found is not None and found.id == cid

    asyncio.run(main())


# -- partitioned supervisors ---------------------------------------------------------


def partitions(n: int = 4, **fields: Any) -> otp.SupervisorSpec:
    return otp.partitioned("conns", pool(**fields), partitions=n)


def test_partitioned_builds_n_identical_partitions() -> None:
    spec = partitions(3)
    assert [c.id for c in spec.children] == ["0", "1", "2"]
    assert all(isinstance(c, otp.SupervisorSpec) and c.strategy == otp.SimpleOneForOne()
               for c in spec.children)
    assert spec.strategy == otp.OneForOne()


def test_a_key_is_routed_to_one_partition_by_a_stable_hash() -> None:
    with otp.start(tree(partitions(4))) as sup:
        conns = sup.at("conns")
        assert conns.partition(10) == "2" and conns.partition(-7) == "3"
        assert conns.partition("user-42") == conns.partition("user-42")
        # the same in every process: a hash of the bytes, not Python's hash()
        assert conns.partition("user-42") == str(__import__("zlib").crc32(b"user-42") % 4)
        assert conns.partition(b"user-42") == conns.partition("user-42")
        path = conns.start_child_in("user-42",
                                    name="u42")
        assert path == f"{conns.partition('user-42')}/w#1"
        found = sup.whereis("u42")
        assert found is not None and found.id == "w#1"
        assert conns.whereis(path) == found


def test_max_children_applies_per_partition() -> None:
    with otp.start(tree(partitions(2, max_children=1))) as sup:
        conns = sup.at("conns")
        conns.start_child_in(0)
        conns.start_child_in(1)
        with pytest.raises(otp.MaxChildrenError):
            conns.start_child_in(2)


def test_partition_refuses_a_key_without_a_stable_hash_and_an_unpartitioned_supervisor() -> None:
    with otp.start(tree(partitions(2), task("a"))) as sup:
        with pytest.raises(TypeError, match="int, str or bytes"):
            sup.at("conns").partition(1.5)
        with pytest.raises(otp.NotSupportedError, match="not partitioned"):
            sup.partition("k")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"partitions": 0}, "partitions"),
        ({"partitions": "3"}, "partitions"),
        ({"partitions": 2, "children": []}, "children"),
    ],
)
def test_partitioned_refuses_bad_arguments_naming_the_field(kwargs: Any, field: str) -> None:
    with pytest.raises(otp.SpecError) as info:
        otp.partitioned("conns", pool(), **kwargs)
    assert (info.value.child_id, info.value.field) == ("conns", field)


def test_partitioned_refuses_a_named_template() -> None:
    with pytest.raises(otp.SpecError, match="share") as info:
        otp.partitioned("conns", task("w", name="x"), partitions=2)
    assert info.value.field == "name"

