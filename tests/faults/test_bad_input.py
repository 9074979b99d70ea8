"""Bad input: invalid specs and API calls get a clear error, at once, naming the child
and the field; a bad call leaves a running tree exactly as it was.

Two tables. ``SPECS``: values refused where they are written (a
:class:`~otp_py.SpecError`, whose ``child_id`` and ``field`` say where, and whose
message names both). ``CALLS``: API calls on a running tree refused with the error
OTP would answer, naming the child; the tree's children, their pids and restart
counts, and its reports are checked to be untouched afterwards.
"""

from __future__ import annotations

import asyncio
import math
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
import targets as runtime_targets
from kit import PROCESS, TASK, THREAD, tree

import otp_py as otp
from tests.faults.helpers import Baseline
from tests.reports import Recorder


async def _coroutine_function() -> None:
    return None


def _function() -> None:
    return None


def _takes_anything(*args: Any, **kwargs: Any) -> None:
    return None


def _bad(child_id: str | None, field: str, build: Callable[[], Any], *,
         type_error: bool = False, mentions: str = "") -> Any:
    return pytest.param(child_id, field, build, type_error, mentions, id=f"{field}:{child_id}")


def _worker(**fields: Any) -> Any:
    fields.setdefault("id", "w")
    fields.setdefault("start", _function)
    fields.setdefault("backend", "thread")
    return lambda: otp.ChildSpec(**fields)


def _command(**fields: Any) -> Any:
    fields.setdefault("id", "c")
    fields.setdefault("start", ["sleep", "1"])
    fields.setdefault("backend", "command")
    return lambda: otp.ChildSpec(**fields)


def _supervisor(**fields: Any) -> Any:
    fields.setdefault("id", "s")
    return lambda: otp.SupervisorSpec(**fields)


_THREAD_W = otp.ChildSpec.thread("w", _function)

SPECS = [
    # ids
    _bad(None, "id", _worker(id=3), type_error=True),
    _bad("", "id", _worker(id=""), mentions="empty"),
    _bad("a/b", "id", _worker(id="a/b"), mentions="'/'"),
    _bad(None, "id", _supervisor(id=None), type_error=True),
    # what to run
    _bad("w", "start", _worker(start=42, backend="process"), type_error=True),
    _bad("w", "start", _worker(start=_function, backend="asyncio"), type_error=True,
         mentions="coroutine function"),
    _bad("w", "start", _worker(start=_coroutine_function, backend="thread"),
         mentions="asyncio"),
    _bad("c", "start", _command(start=[]), type_error=True, mentions="argv"),
    _bad("c", "start", _command(start=["sleep", 1]), type_error=True, mentions="argv"),
    _bad("w", "backend", _worker(backend="docker"), mentions="'process'"),
    _bad("w", "args", _worker(args=5), type_error=True),
    _bad("w", "kwargs", _worker(kwargs={1: 2}), type_error=True),
    _bad("c", "args", _command(args=("x",)), mentions="argv"),
    # a start that cannot be pickled for a forkserver or spawn child
    _bad("w", "start", _worker(start=lambda: None, backend="process"), mentions="picklable"),
    _bad("w", "start", _worker(start=lambda: None, backend="process", start_method="spawn"),
         mentions="'spawn'"),
    _bad("w", "args", _worker(start=_takes_anything, backend="process",
                              args=(threading.Lock(),)), mentions="picklable"),
    _bad("w", "kwargs", _worker(start=_takes_anything, backend="process",
                                kwargs={"lock": threading.Lock()}), mentions="picklable"),
    # restart types and their contradictions
    _bad("w", "restart", _worker(restart="sometimes"), mentions="TRANSIENT"),
    _bad("w", "restart", _worker(restart=3), type_error=True),
    _bad("w", "significant", _worker(significant=True), mentions="permanent"),
    _bad("w", "significant", _worker(significant="yes"), type_error=True),
    # absurd or wrongly typed timeouts
    _bad("w", "shutdown", _worker(shutdown=-1), mentions="non-negative"),
    _bad("w", "shutdown", _worker(shutdown=math.nan), mentions="non-negative"),
    _bad("w", "shutdown", _worker(shutdown="soon"), type_error=True),
    _bad("w", "shutdown", _worker(shutdown=5000 * 3600 * 24 * 365.0), mentions="milliseconds"),
    _bad("w", "start_timeout", _worker(start_timeout=0), mentions="positive"),
    _bad("w", "start_timeout", _worker(start_timeout=True), type_error=True),
    _bad("w", "start_timeout", _worker(start_timeout=1e10), mentions="a year"),
    _bad("s", "shutdown", _supervisor(shutdown=-0.5), mentions="non-negative"),
    # options for another backend, or contradicting each other
    _bad("w", "start_method", _worker(start_method="fork"), mentions="'thread'"),
    _bad("w", "start_method", _worker(backend="process", start_method="vfork"),
         mentions="'forkserver'"),
    _bad("w", "start_method", _worker(backend="process", start_method="fork",
                                      process_class=runtime_targets.SigtermOnHandlerInstall),
         mentions="process_class"),
    _bad("w", "process_class", _worker(backend="process", process_class=int),
         type_error=True),
    _bad("w", "stop_signal", _worker(stop_signal=signal.SIGINT), mentions="command"),
    _bad("c", "stop_signal", _command(stop_signal=999), mentions="signal"),
    _bad("w", "cwd", _worker(cwd="/tmp"), mentions="command"),
    _bad("c", "env", _command(env={"A": 1}), type_error=True),
    _bad("c", "notify_access", _command(ready=True, notify_access="exec"), mentions="'all'"),
    _bad("c", "notify_access", _command(notify_access="all"), mentions="ready=True"),
    _bad("w", "ready", _worker(ready="yes"), type_error=True),
    _bad("c", "heartbeat", _command(heartbeat=otp.Heartbeat()), mentions="ready=True"),
    _bad("w", "heartbeat", _worker(backend="asyncio", start=_coroutine_function,
                                   heartbeat=otp.Heartbeat()), mentions="'asyncio'"),
    _bad("w", "heartbeat", _worker(heartbeat=2.0), type_error=True),
    _bad("w", "decider", _worker(decider="restart"), type_error=True),
    _bad("w", "capture_stderr", _worker(capture_stderr="yes"), type_error=True),
    # supervisors
    _bad("w", "id", _supervisor(children=[_THREAD_W, _THREAD_W]), mentions="duplicate"),
    _bad("w", "significant", _supervisor(children=[otp.ChildSpec.thread(
        "w", _function, restart="transient", significant=True)]), mentions="auto_shutdown"),
    _bad("s", "strategy", _supervisor(strategy="one_for_some"), mentions="one_for_all"),
    _bad("s", "intensity", _supervisor(intensity=5), type_error=True),
    _bad("s", "children", _supervisor(strategy="simple_one_for_one",
                                      children=[_THREAD_W, otp.ChildSpec.thread("x", _function)]),
         mentions="exactly one"),
    _bad("s", "children", _supervisor(children=[_function]), type_error=True),
    _bad("s", "backend", _supervisor(backend="thread"), mentions="'inline'"),
    _bad("s", "auto_shutdown", _supervisor(auto_shutdown="sometimes"), mentions="NEVER"),
    _bad("s", "watchdog", _supervisor(watchdog=3), type_error=True),
    # value objects, built before any child exists: they name their field
    _bad(None, "interval", lambda: otp.Heartbeat(interval=0), mentions="positive"),
    _bad(None, "timeout", lambda: otp.Heartbeat(timeout=math.inf), mentions="finite"),
    _bad(None, "timeout", lambda: otp.LoopWatchdog(timeout=-1), mentions="positive"),
    _bad(None, "max_restarts", lambda: otp.SlidingWindow(max_restarts=-1), mentions=">= 0"),
    _bad(None, "max_restarts", lambda: otp.SlidingWindow(max_restarts=1.5), type_error=True),
    _bad(None, "timeout", lambda: otp.Heartbeat(timeout=1e10), mentions="a year"),
    _bad(None, "timeout", lambda: otp.LoopWatchdog(timeout=1e10), mentions="a year"),
    _bad(None, "period", lambda: otp.SlidingWindow(3, 1e10), mentions="a year"),
    # values every start would fail on
    _bad("c", "env", _command(env={"A=B": "x"}), mentions="'='"),
    _bad("c", "start", _command(start=["sleep", "1\x00"]), mentions="NUL"),
]


@pytest.mark.parametrize(("child_id", "field", "build", "type_error", "mentions"), SPECS)
def test_an_invalid_spec_is_refused_naming_the_child_and_the_field(
    child_id: str | None, field: str, build: Callable[[], Any], type_error: bool,
    mentions: str,
) -> None:
    with pytest.raises(otp.SpecError) as caught:
        build()
    error = caught.value
    assert (error.child_id, error.field) == (child_id, field)
    message = str(error)
    assert f"field {field!r}" in message
    if child_id is not None:
        assert f"child {child_id!r}" in message
    assert isinstance(error, ValueError)  # callers may catch the builtin
    assert isinstance(error, TypeError) is type_error, message
    assert mentions in message


def test_the_spec_table_is_at_least_thirty_rows() -> None:
    assert len(SPECS) >= 30


# ----------------------------------------------------------- calls on a running tree


@attrs.frozen
class Running:
    sup: otp.Supervisor
    recorder: Recorder


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    """One tree for every bad call: a static root (a process, a command, a thread, a
    task, one stopped child), a nested supervisor and a simple_one_for_one pool."""
    recorder = Recorder()
    spec = tree(
        PROCESS.forever("p"),
        otp.ChildSpec.command("c", ["sleep", "3600"]),
        THREAD.forever("t"),
        TASK.forever("k"),
        THREAD.forever("stopped"),
        otp.SupervisorSpec(id="sub", children=[THREAD.forever("inner")]),
        otp.SupervisorSpec(id="pool", strategy="simple_one_for_one",
                           children=[THREAD.spec("worker", runtime_targets.thread_until_stopped)]),
    )
    leaks = Baseline()
    sup = otp.start(spec, on_report=recorder)
    sup.terminate_child("stopped")
    sup.at("pool").start_child(args=())
    try:
        yield Running(sup, recorder)
    finally:
        sup.stop()
    leaks.assert_clean()


def _snapshot(sup: otp.Supervisor) -> list[Any]:
    rows = []
    for where in ("", "sub", "pool"):
        rows += [(where, c.id, c.state, c.pid, c.restarts, c.spec)
                 for c in sup.which_children(where)]
    return rows


def _call(name: str, *args: Any, **kwargs: Any) -> Callable[[otp.Supervisor], Any]:
    def call(sup: otp.Supervisor) -> Any:
        target = sup
        if "at" in kwargs:
            target = sup.at(kwargs.pop("at"))
        return getattr(target, name)(*args, **kwargs)

    return call


def _api(call: Callable[[otp.Supervisor], Any], error: type[BaseException], *names: str,
         label: str) -> Any:
    return pytest.param(call, error, names, id=label)


CALLS = [
    _api(_call("start_child", THREAD.forever("t")), otp.AlreadyStartedError, "'t'",
         label="start_child-duplicate-running"),
    _api(_call("start_child", PROCESS.forever("p")), otp.AlreadyStartedError, "'p'",
         label="start_child-duplicate-process"),
    _api(_call("start_child", THREAD.forever("stopped")), otp.AlreadyPresentError,
         "'stopped'", label="start_child-duplicate-stopped"),
    _api(_call("start_child", otp.SupervisorSpec(id="sub")), otp.AlreadyStartedError,
         "'sub'", label="start_child-duplicate-supervisor"),
    _api(_call("start_child", THREAD.forever("inner"), supervisor="sub"),
         otp.AlreadyStartedError, "'inner'", label="start_child-duplicate-nested"),
    _api(_call("start_child", "not a spec"), TypeError, "'not a spec'",
         label="start_child-not-a-spec"),
    _api(_call("start_child", None), TypeError, "ChildSpec", label="start_child-nothing"),
    _api(_call("start_child", THREAD.forever("x"), args=(1,)), TypeError, "args",
         label="start_child-args-on-static"),
    _api(_call("start_child", THREAD.forever("x"), args="ab"), TypeError, "args",
         label="start_child-args-not-a-tuple"),
    _api(_call("start_child", THREAD.forever("x"), at="pool"), TypeError,
         "simple_one_for_one", label="start_child-spec-on-dynamic"),
    _api(_call("start_child", otp.ChildSpec.thread("sig", runtime_targets.thread_until_stopped,
                                                   restart="transient", significant=True)),
         otp.SpecError, "'sig'", "significant", label="start_child-significant-under-never"),
    _api(_call("terminate_child", "nope"), otp.ChildNotFoundError, "'nope'",
         label="terminate_child-unknown"),
    _api(_call("terminate_child", "sub/nope"), otp.ChildNotFoundError, "'nope'", "sub",
         label="terminate_child-unknown-nested"),
    _api(_call("terminate_child", "nosuch/t"), otp.SupervisorNotRunningError, "nosuch",
         label="terminate_child-unknown-supervisor"),
    _api(_call("terminate_child", 3), TypeError, "3", label="terminate_child-not-a-string"),
    _api(_call("terminate_child", ""), ValueError, "''", label="terminate_child-empty"),
    _api(_call("terminate_child", "worker", at="pool"), otp.NotSupportedError, "template",
         label="terminate_child-template-id"),
    _api(_call("restart_child", "nope"), otp.ChildNotFoundError, "'nope'",
         label="restart_child-unknown"),
    _api(_call("restart_child", "t"), otp.ChildRunningError, "'t'",
         label="restart_child-running"),
    _api(_call("restart_child", "worker#1", at="pool"), otp.NotSupportedError,
         "restart_child", label="restart_child-dynamic"),
    _api(_call("delete_child", "nope"), otp.ChildNotFoundError, "'nope'",
         label="delete_child-unknown"),
    _api(_call("delete_child", "p"), otp.ChildRunningError, "'p'",
         label="delete_child-running"),
    _api(_call("delete_child", "sub"), otp.ChildRunningError, "'sub'",
         label="delete_child-running-supervisor"),
    _api(_call("delete_child", "worker#1", at="pool"), otp.NotSupportedError,
         "delete_child", label="delete_child-dynamic"),
    _api(_call("get_childspec", "nope"), otp.ChildNotFoundError, "'nope'",
         label="get_childspec-unknown"),
    _api(_call("which_children", "nope"), otp.SupervisorNotRunningError, "nope",
         label="which_children-unknown-supervisor"),
    _api(_call("count_children", 7), TypeError, "7", label="count_children-not-a-string"),
]


@pytest.mark.parametrize(("call", "error", "names"), CALLS)
def test_a_bad_call_is_refused_and_leaves_the_running_tree_untouched(
    running: Running, call: Callable[[otp.Supervisor], Any], error: type[BaseException],
    names: tuple[str, ...],
) -> None:
    before = _snapshot(running.sup)
    reports = len(running.recorder.reports)
    with pytest.raises(error) as caught:
        call(running.sup)
    for name in names:
        assert name in str(caught.value), str(caught.value)
    assert isinstance(caught.value, otp.OtpError | TypeError | ValueError)
    assert _snapshot(running.sup) == before
    assert running.recorder.reports[reports:] == []
    assert running.sup.running


def test_the_call_table_is_at_least_twenty_rows() -> None:
    assert len(CALLS) >= 20


def test_bad_calls_through_the_async_handle_are_refused_the_same_way() -> None:
    spec = tree(THREAD.forever("t"), TASK.forever("k"))

    async def scenario() -> None:
        recorder = Recorder()
        async with otp.supervise(spec, on_report=recorder) as sup:
            reports = len(recorder.reports)
            with pytest.raises(otp.AlreadyStartedError, match="'t'"):
                await sup.start_child(THREAD.forever("t"))
            with pytest.raises(otp.ChildNotFoundError, match="'nope'"):
                await sup.terminate_child("nope")
            with pytest.raises(TypeError, match="args"):
                await sup.start_child(THREAD.forever("x"), args=5)  # type: ignore[arg-type]
            assert [(c.id, c.state) for c in await sup.which_children()] == [
                ("t", "running"), ("k", "running")]
            assert recorder.reports[reports:] == []

    asyncio.run(scenario())


def test_a_start_child_whose_start_fails_leaves_the_tree_untouched(running: Running) -> None:
    """Not bad input as such, but the same promise: a start that fails is reported to
    the caller, named, and the tree carries on as it was."""
    before = _snapshot(running.sup)
    with pytest.raises(otp.StartChildError) as caught:
        running.sup.start_child(THREAD.spec("bad", runtime_targets.thread_fail_before_ready,
                                            ready=True))
    assert caught.value.child_id == "bad"
    assert "'bad'" in str(caught.value) and "cannot start" in str(caught.value)
    assert _snapshot(running.sup) == before
