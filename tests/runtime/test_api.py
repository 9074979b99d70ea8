"""The handles: the sync Supervisor (otp.start), the AsyncSupervisor (otp.supervise),
and otp.run. Both handles offer the same API with the same errors."""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import sys
from typing import Any

import pytest
import targets
from kit import THREAD, info, tree

import otp_py as otp
from otp_py import reasons
from otp_py import reports as rp
from tests.reports import DEFAULT_TIMEOUT, Recorder

RUN_TREE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run_tree.py")


def api_tree() -> otp.SupervisorSpec:
    sub = otp.SupervisorSpec(id="sub", children=[THREAD.forever("inner")])
    return tree(
        otp.ChildSpec.process("p", targets.ready_then_run, ready=True),
        THREAD.forever("t"),
        otp.ChildSpec.task("k", targets.task_forever),
        sub,
    )


async def _(result: Any) -> Any:
    """The same scenario drives both handles: await what the async one returns."""
    if inspect.isawaitable(result):
        return await result
    return result


async def scenario(sup: otp.Supervisor | otp.AsyncSupervisor) -> None:
    children = await _(sup.which_children())
    assert [(c.id, c.state, c.is_supervisor) for c in children] == [
        ("p", "running", False), ("t", "running", False), ("k", "running", False),
        ("sub", "running", True),
    ]
    assert isinstance(info(children, "p").pid, int)
    assert "thread" in info(children, "t").details
    assert await _(sup.count_children()) == otp.ChildCounts(4, 4, 1, 3)
    assert (await _(sup.get_childspec("t"))).id == "t"

    # a listener sees what follows; removing it stops that
    seen = Recorder()
    remove = sup.add_listener(seen)
    assert callable(remove)

    extra = THREAD.forever("extra")
    assert await _(sup.start_child(extra)) == "extra"
    assert info(await _(sup.which_children()), "extra").state == "running"
    with pytest.raises(otp.AlreadyStartedError):
        await _(sup.start_child(extra))
    with pytest.raises(otp.ChildRunningError):
        await _(sup.restart_child("extra"))
    with pytest.raises(otp.ChildRunningError):
        await _(sup.delete_child("extra"))

    await _(sup.terminate_child("extra"))
    assert info(await _(sup.which_children()), "extra").state == "stopped"
    assert seen.wait_kind(rp.ChildTerminated, "extra")[0].reason == reasons.Shutdown()
    with pytest.raises(otp.AlreadyPresentError):
        await _(sup.start_child(extra))
    assert await _(sup.restart_child("extra")) == "extra"
    assert seen.wait_kind(rp.ChildStarted, "extra", count=2)[1].restarts == 1
    await _(sup.terminate_child("extra"))
    await _(sup.delete_child("extra"))
    assert [c.id for c in await _(sup.which_children())] == ["p", "t", "k", "sub"]

    remove()
    await _(sup.terminate_child("k"))
    assert seen.of(rp.ChildTerminated, "k") == []
    await _(sup.restart_child("k"))

    for call in (sup.terminate_child, sup.restart_child, sup.delete_child,
                 sup.get_childspec):
        with pytest.raises(otp.ChildNotFoundError) as caught:
            await _(call("nope"))
        assert isinstance(caught.value, LookupError)
        assert "nope" in str(caught.value)

    failing = THREAD.spec("bad", targets.thread_fail_before_ready, ready=True)
    with pytest.raises(otp.StartChildError) as failed:
        await _(sup.start_child(failing))
    assert failed.value.reason == reasons.Crashed("RuntimeError", "cannot start")
    with pytest.raises(TypeError):
        await _(sup.start_child("not a spec"))

    # a handle on the nested supervisor, and paths through it
    inner = sup.at("sub")
    assert [c.id for c in await _(inner.which_children())] == ["inner"]
    assert await _(inner.count_children()) == otp.ChildCounts(1, 1, 0, 1)
    await _(sup.terminate_child("sub/inner"))
    assert info(await _(inner.which_children()), "inner").state == "stopped"
    assert await _(inner.restart_child("inner")) == "inner"
    assert info(await _(sup.which_children("sub")), "inner").state == "running"
    with pytest.raises(otp.SupervisorNotRunningError):
        await _(sup.at("nope").which_children())

    assert sup.running
    assert await _(sup.stop()) == reasons.Shutdown()
    assert not sup.running
    assert await _(sup.wait()) == reasons.Shutdown()
    with pytest.raises(otp.SupervisorNotRunningError):
        await _(sup.which_children())


def test_the_sync_handle() -> None:
    sup = otp.start(api_tree())
    try:
        asyncio.run(scenario(sup))
    finally:
        sup.stop()


def test_the_async_handle() -> None:
    async def main() -> None:
        async with otp.supervise(api_tree()) as sup:
            assert isinstance(sup, otp.AsyncSupervisor)
            await scenario(sup)

    asyncio.run(main())


def test_the_sync_handle_refuses_calls_from_the_trees_own_thread() -> None:
    errors: list[BaseException] = []
    sup: otp.Supervisor | None = None

    def listener(report: rp.Report) -> None:
        if isinstance(report, rp.ChildTerminated) and sup is not None:
            try:
                sup.which_children()
            except RuntimeError as exc:
                errors.append(exc)

    sup = otp.start(tree(THREAD.forever("t")), on_report=listener)
    sup.terminate_child("t")
    sup.stop()
    assert len(errors) == 1 and "own thread" in str(errors[0])


def test_a_simple_one_for_one_supervisor_through_the_handle() -> None:
    spec = tree(otp.ChildSpec.thread("w", targets.thread_until_stopped),
                strategy="simple_one_for_one")
    with otp.start(spec) as sup:
        assert sup.start_child(args=()) == "w#1"
        assert sup.start_child() == "w#2"
        assert [c.id for c in sup.which_children()] == ["w#1", "w#2"]
        assert sup.count_children() == otp.ChildCounts(1, 2, 0, 2)
        with pytest.raises(otp.NotSupportedError):
            sup.restart_child("w#1")
        with pytest.raises(otp.NotSupportedError):
            sup.delete_child("w#1")
        sup.terminate_child("w#1")
        assert [c.id for c in sup.which_children()] == ["w#2"]


# ------------------------------------------------------------ when the root gives up


def _giving_up() -> otp.SupervisorSpec:
    return tree(THREAD.forever("steady"),
                otp.ChildSpec.thread("crasher", targets.thread_raise),
                intensity=otp.SlidingWindow(2, 30))


def _assert_gave_up(error: otp.IntensityExceededError) -> None:
    assert isinstance(error, otp.SupervisorExitError)
    assert error.path == ("root",)
    assert error.reason == reasons.Shutdown()
    assert [child for child, _ in error.history] == ["crasher"] * 3
    assert all(record.reason == reasons.Crashed("ValueError", "boom")
               for _, record in error.history)
    assert "gave up" in str(error) and "crasher" in str(error)


def test_run_raises_when_the_root_gives_up() -> None:
    recorder = Recorder()
    with pytest.raises(otp.IntensityExceededError) as caught:
        otp.run(_giving_up(), handle_signals=False, on_report=recorder)
    _assert_gave_up(caught.value)
    assert [r.child_id for r in recorder.of(rp.ChildTerminated)] == ["steady"]


def test_run_raises_when_the_root_fails_to_start() -> None:
    spec = tree(otp.ChildSpec.thread("bad", targets.thread_fail_before_ready, ready=True))
    with pytest.raises(otp.SupervisorExitError) as caught:
        otp.run(spec, handle_signals=False)
    assert not isinstance(caught.value, otp.IntensityExceededError)
    assert caught.value.reason == reasons.Shutdown(reasons.FailedToStartChild(
        "bad", reasons.Crashed("RuntimeError", "cannot start")))


def test_the_sync_handle_waits_and_raises_when_the_root_gives_up() -> None:
    sup = otp.start(_giving_up())
    with pytest.raises(otp.IntensityExceededError) as caught:
        sup.wait(DEFAULT_TIMEOUT)
    _assert_gave_up(caught.value)
    assert not sup.running


def test_the_async_handle_raises_when_the_root_gave_up_in_the_block() -> None:
    async def wait_in_the_block() -> None:
        async with otp.supervise(_giving_up()) as sup:
            with pytest.raises(otp.IntensityExceededError) as in_block:
                await sup.wait()
            _assert_gave_up(in_block.value)

    # the error reaches the block's wait(), and leaving the block raises it as well
    with pytest.raises(otp.IntensityExceededError):
        asyncio.run(wait_in_the_block())

    async def leave_without_waiting() -> None:
        recorder = Recorder()
        async with otp.supervise(_giving_up(), on_report=recorder):
            await asyncio.get_running_loop().run_in_executor(
                None, recorder.wait_kind, rp.SupervisorExited, None)

    with pytest.raises(otp.IntensityExceededError) as caught:
        asyncio.run(leave_without_waiting())
    _assert_gave_up(caught.value)


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_run_stops_the_tree_in_order_on_a_signal_and_returns_its_reason(signame: str) -> None:
    done = subprocess.run([sys.executable, RUN_TREE, signame], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "result: Shutdown(term=NO_TERM)"
    assert [line for line in lines if "terminated" in line] == [
        "root: terminated t: shutdown",
        "root: terminated c: shutdown",
        "root: terminated p: shutdown",
    ]
