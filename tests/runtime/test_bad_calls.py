"""Bad calls on a running tree are refused before they do anything (found by an
adversarial audit: each of these used to stop, wedge or blind the tree)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import targets
from kit import tree

import otp_py as otp
from otp_py import reports as rp
from tests.reports import Recorder


def _lambda_child() -> otp.ChildSpec:
    return otp.ChildSpec.thread("x", lambda: otp.wait_for_stop(None))


def test_a_process_subtree_that_cannot_be_pickled_is_refused_where_it_is_written() -> None:
    with pytest.raises(otp.SpecError, match="must be picklable") as caught:
        otp.SupervisorSpec(id="sub", backend="process", children=[_lambda_child()])
    assert (caught.value.child_id, caught.value.field) == ("sub", "backend")


def test_generator_functions_are_not_children() -> None:
    def gen() -> Iterator[int]:
        yield 1

    async def agen() -> Any:
        yield 1

    for make, start in ((otp.ChildSpec.thread, gen), (otp.ChildSpec.process, gen),
                        (otp.ChildSpec.thread, agen)):
        with pytest.raises(otp.SpecError, match="generator function") as caught:
            make("g", start)
        assert caught.value.field == "start"


@pytest.fixture
def running() -> Iterator[otp.Supervisor]:
    sup = otp.start(tree(otp.ChildSpec.thread("t", targets.thread_until_stopped),
                         otp.ChildSpec.task("k", targets.task_forever)))
    try:
        yield sup
    finally:
        sup.stop(30)


def _running_ids(sup: otp.Supervisor) -> list[str]:
    return [c.id for c in sup.which_children() if c.state == "running"]


def test_a_bad_timeout_is_refused_before_the_tree_is_stopped(running: otp.Supervisor) -> None:
    for call in (running.stop, running.kill):
        for timeout in ("x", -1, float("nan"), True):
            with pytest.raises(TypeError, match="timeout must be a number of seconds"):
                call(timeout)
    assert running.running
    assert _running_ids(running) == ["t", "k"]


def test_stop_from_the_trees_own_thread_is_refused_and_harms_nothing() -> None:
    refused: list[BaseException] = []
    done = threading.Event()
    box: dict[str, otp.Supervisor] = {}

    def listener(report: rp.Report) -> None:
        if isinstance(report, rp.ChildTerminated) and "sup" in box:
            try:
                box["sup"].stop()
            except RuntimeError as exc:
                refused.append(exc)
            done.set()

    sup = otp.start(tree(otp.ChildSpec.thread("t", targets.thread_until_stopped),
                         otp.ChildSpec.task("k", targets.task_forever)), on_report=listener)
    box["sup"] = sup
    try:
        sup.terminate_child("k")
        assert done.wait(20)
        assert "from the tree's own thread" in str(refused[0])
        assert sup.running
        assert _running_ids(sup) == ["t"]
    finally:
        sup.stop(30)


def test_start_child_refuses_what_is_not_a_spec(running: otp.Supervisor) -> None:
    class Impostor:
        id = "z"
        is_supervisor = False

    with pytest.raises(TypeError, match="start_child needs a ChildSpec or SupervisorSpec"):
        running.start_child(Impostor())
    watched = otp.SupervisorSpec(id="s", watchdog=otp.LoopWatchdog(),
                                 children=[otp.ChildSpec.task("k2", targets.task_forever)])
    with pytest.raises(otp.SpecError, match="only the tree's root can watch"):
        running.start_child(watched)
    assert _running_ids(running) == ["t", "k"]


def test_listeners_must_be_callable_and_may_remove_themselves(
    running: otp.Supervisor,
) -> None:
    with pytest.raises(TypeError, match="a listener is a function"):
        running.add_listener(None)  # type: ignore[arg-type]
    second = Recorder()

    def first(report: rp.Report) -> None:
        remove_first()

    remove_first = running.add_listener(first)
    running.add_listener(second)
    running.terminate_child("k")
    # the second listener still sees the report during which the first removed itself
    assert second.wait_kind(rp.ChildTerminated, "k")
