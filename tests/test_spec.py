"""Spec validation: every rule of ChildSpec, SupervisorSpec, Heartbeat and the intensity
policies, and the spellings and defaults they accept.

Each refusal is checked three ways: the exact exception class (SpecTypeError for a
value of the wrong type, SpecError for a wrong value), the message (it names the child
and the field), and the ``child_id`` / ``field`` attributes programs read.
"""

from __future__ import annotations

import contextlib
import functools
import math
import multiprocessing
import re
import signal
import threading
import types
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

import otp_py as otp
from otp_py import ChildSpec, Heartbeat, SpecError, SpecTypeError, SupervisorSpec


def work() -> None:
    """A plain callable child."""


def work_with(*args: object, **kwargs: object) -> None:
    """A plain callable child that takes any arguments."""


async def awork() -> None:
    """A coroutine function child."""


class AsyncCallable:
    """An object whose ``__call__`` is a coroutine function."""

    async def __call__(self) -> None:
        pass


@contextlib.contextmanager
def refused(
    cls: type[SpecError], child_id: str | None, field: str, *, mentions: str = ""
) -> Iterator[pytest.ExceptionInfo[SpecError]]:
    """Expect exactly ``cls``, naming ``child_id`` and ``field`` in message and attributes."""
    label = "spec" if child_id is None else f"child {child_id!r}"
    pattern = re.escape(f"{label}: field {field!r}") + ".*" + re.escape(mentions)
    with pytest.raises(cls, match=pattern) as info:
        yield info
    assert type(info.value) is cls
    assert info.value.child_id == child_id
    assert info.value.field == field


# ---------------------------------------------------------------- exception classes


def test_spec_error_is_a_value_error() -> None:
    assert issubclass(SpecError, ValueError)
    assert issubclass(SpecError, otp.OtpError)


def test_spec_type_error_is_both_a_spec_error_and_a_type_error() -> None:
    assert issubclass(SpecTypeError, SpecError)
    assert issubclass(SpecTypeError, TypeError)


# ------------------------------------------------------------------ ChildSpec rules

CHILD_REFUSALS = [
    # start
    pytest.param(dict(start=42), SpecTypeError, "start", id="start-not-callable"),
    pytest.param(dict(start=None), SpecTypeError, "start", id="start-none"),
    pytest.param(dict(start=awork, backend="process"), SpecError, "start",
                 id="coroutine-function-on-process"),
    pytest.param(dict(start=awork, backend="thread"), SpecError, "start",
                 id="coroutine-function-on-thread"),
    pytest.param(dict(start=work, backend="asyncio"), SpecTypeError, "start",
                 id="plain-function-on-asyncio"),
    pytest.param(dict(start=work, backend="command"), SpecTypeError, "start",
                 id="callable-on-command"),
    pytest.param(dict(start=[], backend="command"), SpecTypeError, "start",
                 id="empty-argv"),
    pytest.param(dict(start="", backend="command"), SpecError, "start",
                 id="empty-command-line"),
    pytest.param(dict(start=["ls", 1], backend="command"), SpecTypeError, "start",
                 id="argv-with-non-string"),
    pytest.param(dict(start="echo 'unclosed", backend="command"), SpecError, "start",
                 id="command-line-unbalanced-quote"),
    # args / kwargs
    pytest.param(dict(args="abc"), SpecTypeError, "args", id="args-as-str"),
    pytest.param(dict(args=None), SpecTypeError, "args", id="args-none"),
    pytest.param(dict(kwargs=[("a", 1)]), SpecTypeError, "kwargs", id="kwargs-not-mapping"),
    pytest.param(dict(kwargs={1: "a"}), SpecTypeError, "kwargs", id="kwargs-non-str-key"),
    pytest.param(dict(start=["ls"], backend="command", args=("-l",)), SpecError, "args",
                 id="args-on-command"),
    # restart
    pytest.param(dict(restart="bogus"), SpecError, "restart", id="restart-bogus-string"),
    # shutdown
    pytest.param(dict(shutdown=-1), SpecError, "shutdown", id="shutdown-negative"),
    pytest.param(dict(shutdown=-math.inf), SpecError, "shutdown", id="shutdown-minus-inf"),
    pytest.param(dict(shutdown=math.nan), SpecError, "shutdown", id="shutdown-nan"),
    pytest.param(dict(shutdown=True), SpecTypeError, "shutdown", id="shutdown-bool"),
    pytest.param(dict(shutdown="5"), SpecTypeError, "shutdown", id="shutdown-str"),
    pytest.param(dict(shutdown=None), SpecTypeError, "shutdown", id="shutdown-none"),
    # significant
    pytest.param(dict(significant=True), SpecError, "significant",
                 id="significant-permanent"),
    pytest.param(dict(significant=True, restart="permanent"), SpecError, "significant",
                 id="significant-permanent-spelled"),
    pytest.param(dict(significant="yes", restart="transient"), SpecTypeError, "significant",
                 id="significant-not-bool"),
    # backend
    pytest.param(dict(backend="green"), SpecError, "backend", id="backend-bogus"),
    # start_timeout
    pytest.param(dict(start_timeout=0), SpecError, "start_timeout", id="start-timeout-zero"),
    pytest.param(dict(start_timeout=-1), SpecError, "start_timeout",
                 id="start-timeout-negative"),
    pytest.param(dict(start_timeout=math.nan), SpecError, "start_timeout",
                 id="start-timeout-nan"),
    pytest.param(dict(start_timeout=True), SpecTypeError, "start_timeout",
                 id="start-timeout-bool"),
    pytest.param(dict(start_timeout="30"), SpecTypeError, "start_timeout",
                 id="start-timeout-str"),
    # ready
    pytest.param(dict(ready="yes"), SpecTypeError, "ready", id="ready-not-bool"),
    # notify_access
    pytest.param(dict(ready=True, notify_access="exec"), SpecError, "notify_access",
                 id="notify_access-unknown"),
    pytest.param(dict(ready=True, notify_access=1), SpecTypeError, "notify_access",
                 id="notify_access-not-str"),
    # heartbeat
    pytest.param(dict(heartbeat=5), SpecTypeError, "heartbeat", id="heartbeat-not-heartbeat"),
    pytest.param(dict(heartbeat=(2, 30)), SpecTypeError, "heartbeat",
                 id="heartbeat-tuple"),
    # values of the backend-specific options
    pytest.param(dict(start_method="vfork"), SpecError, "start_method",
                 id="start-method-bogus"),
    pytest.param(dict(start=["ls"], stop_signal=99999), SpecError, "stop_signal",
                 id="stop-signal-not-a-signal"),
    pytest.param(dict(start=["ls"], cwd=3), SpecTypeError, "cwd", id="cwd-not-str"),
    pytest.param(dict(start=["ls"], env={"A": 1}), SpecTypeError, "env",
                 id="env-value-not-str"),
    pytest.param(dict(start=["ls"], env=["A=1"]), SpecTypeError, "env",
                 id="env-not-mapping"),
    pytest.param(dict(process_class=dict), SpecTypeError, "process_class",
                 id="process-class-not-a-process"),
    pytest.param(dict(process_class=multiprocessing.Process()), SpecTypeError,
                 "process_class", id="process-class-an-instance"),
    pytest.param(dict(process_class=multiprocessing.Process, start_method="fork"), SpecError,
                 "start_method", id="process-class-and-start-method"),
    # picklability, for process children that do not fork
    pytest.param(dict(start=lambda: None), SpecError, "start",
                 id="unpicklable-start-forkserver"),
    pytest.param(dict(start=lambda: None, start_method="spawn"), SpecError, "start",
                 id="unpicklable-start-spawn"),
    pytest.param(dict(args=(threading.Lock(),)), SpecError, "args", id="unpicklable-args"),
    pytest.param(dict(kwargs={"lock": threading.Lock()}), SpecError, "kwargs",
                 id="unpicklable-kwargs"),
    pytest.param(dict(start=AsyncCallable(), backend="process"), SpecError, "start",
                 id="async-callable-object-on-process"),
]


@pytest.mark.parametrize(("fields", "cls", "field"), CHILD_REFUSALS)
def test_child_spec_refuses(fields: dict[str, Any], cls: type[SpecError], field: str) -> None:
    fields = {"start": work, **fields}
    with refused(cls, "w", field):
        ChildSpec(id="w", **fields)


def test_refusal_message_says_what_was_given() -> None:
    with refused(SpecError, "w", "shutdown", mentions="got -3"):
        ChildSpec(id="w", start=work, shutdown=-3)


BACKEND_OPTION_REFUSALS = [
    pytest.param("thread", dict(start_method="fork"), "start_method", id="start_method-thread"),
    pytest.param("asyncio", dict(start_method="spawn"), "start_method",
                 id="start_method-asyncio"),
    pytest.param("command", dict(start_method="fork"), "start_method",
                 id="start_method-command"),
    pytest.param("process", dict(stop_signal=signal.SIGINT), "stop_signal",
                 id="stop_signal-process"),
    pytest.param("thread", dict(stop_signal=signal.SIGINT), "stop_signal",
                 id="stop_signal-thread"),
    pytest.param("asyncio", dict(stop_signal=signal.SIGINT), "stop_signal",
                 id="stop_signal-asyncio"),
    pytest.param("process", dict(cwd="/tmp"), "cwd", id="cwd-process"),
    pytest.param("thread", dict(cwd="/tmp"), "cwd", id="cwd-thread"),
    pytest.param("asyncio", dict(cwd="/tmp"), "cwd", id="cwd-asyncio"),
    pytest.param("process", dict(env={"A": "1"}), "env", id="env-process"),
    pytest.param("thread", dict(env={"A": "1"}), "env", id="env-thread"),
    pytest.param("asyncio", dict(env={"A": "1"}), "env", id="env-asyncio"),
    pytest.param("command", dict(heartbeat=Heartbeat()), "heartbeat", id="heartbeat-command"),
    pytest.param("asyncio", dict(heartbeat=Heartbeat()), "heartbeat", id="heartbeat-asyncio"),
    pytest.param("thread", dict(ready=True, notify_access="all"), "notify_access",
                 id="notify_access-thread"),
    pytest.param("command", dict(notify_access="all"), "notify_access",
                 id="notify_access-without-ready"),
    pytest.param("thread", dict(process_class=multiprocessing.Process), "process_class",
                 id="process_class-thread"),
    pytest.param("asyncio", dict(process_class=multiprocessing.Process), "process_class",
                 id="process_class-asyncio"),
    pytest.param("command", dict(process_class=multiprocessing.Process), "process_class",
                 id="process_class-command"),
]

_START_FOR = {"process": work, "thread": work, "asyncio": awork, "command": ["ls"]}


@pytest.mark.parametrize(("backend", "fields", "field"), BACKEND_OPTION_REFUSALS)
def test_backend_specific_option_is_refused_on_other_backends(
    backend: str, fields: dict[str, Any], field: str
) -> None:
    with refused(SpecError, "w", field, mentions=backend):
        ChildSpec(id="w", start=_START_FOR[backend], backend=backend, **fields)


@pytest.mark.parametrize(
    ("backend", "fields"),
    [
        pytest.param("process", dict(start_method="spawn"), id="start_method-process"),
        pytest.param("process", dict(process_class=multiprocessing.get_context("spawn").Process),
                     id="process_class-process"),
        pytest.param("command", dict(stop_signal=signal.SIGINT), id="stop_signal-command"),
        pytest.param("command", dict(cwd="/tmp", env={"A": "1"}), id="cwd-env-command"),
        pytest.param("process", dict(heartbeat=Heartbeat()), id="heartbeat-process"),
        pytest.param("thread", dict(heartbeat=Heartbeat()), id="heartbeat-thread"),
        pytest.param("thread", dict(ready=True), id="ready-thread"),
        pytest.param("asyncio", dict(ready=True), id="ready-asyncio"),
        pytest.param("command", dict(ready=True), id="ready-command"),
        pytest.param("command", dict(ready=True, heartbeat=Heartbeat()),
                     id="heartbeat-command-ready"),
        pytest.param("command", dict(ready=True, notify_access="all"),
                     id="notify_access-command"),
        pytest.param("process", dict(ready=True, notify_access="all"),
                     id="notify_access-process"),
    ],
)
def test_backend_specific_option_is_accepted_on_its_backend(
    backend: str, fields: dict[str, Any]
) -> None:
    spec = ChildSpec(id="w", start=_START_FOR[backend], backend=backend, **fields)
    for name, value in fields.items():
        assert getattr(spec, name) == value


def test_kwargs_on_command_child_names_the_kwargs_field() -> None:
    with refused(SpecError, "w", "kwargs"):
        ChildSpec.command("w", ["ls"], kwargs={"a": 1})


@pytest.mark.parametrize(
    ("factory", "child_id", "field"),
    [
        pytest.param(lambda: ChildSpec(id="w", start=work, restart=3), "w", "restart",
                     id="child-restart-int"),
        pytest.param(lambda: ChildSpec(id="w", start=work, backend=3), "w", "backend",
                     id="child-backend-int"),
        pytest.param(lambda: ChildSpec.process("w", work, start_method=3), "w",
                     "start_method", id="child-start_method-int"),
        pytest.param(lambda: ChildSpec.command("w", ["ls"], stop_signal="SIGTERM"), "w",
                     "stop_signal", id="child-stop_signal-str"),
        pytest.param(lambda: SupervisorSpec(id="root", restart=3), "root", "restart",
                     id="supervisor-restart-int"),
        pytest.param(lambda: SupervisorSpec(id="root", auto_shutdown=3), "root",
                     "auto_shutdown", id="supervisor-auto_shutdown-int"),
    ],
)
def test_wrongly_typed_enum_field_raises_spec_type_error(
    factory: Any, child_id: str, field: str
) -> None:
    with refused(SpecTypeError, child_id, field):
        factory()


# ------------------------------------------------------------------------------ ids

BAD_IDS = [
    pytest.param("a/b", id="slash"),
    pytest.param("", id="empty"),
    pytest.param(" w", id="leading-space"),
    pytest.param("w ", id="trailing-space"),
]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_child_id_is_refused(bad: str) -> None:
    with refused(SpecError, bad, "id", mentions="this one holds"):
        ChildSpec(id=bad, start=work)


@pytest.mark.parametrize("bad", BAD_IDS)
def test_supervisor_id_is_refused(bad: str) -> None:
    with refused(SpecError, bad, "id", mentions="this one holds"):
        SupervisorSpec(id=bad)


@pytest.mark.parametrize("bad", [3, None, b"w"])
def test_non_string_id_is_a_type_error(bad: object) -> None:
    with refused(SpecTypeError, None, "id", mentions=f"got {bad!r}"):
        ChildSpec(id=bad, start=work)


def test_duplicate_sibling_ids_are_refused() -> None:
    with refused(SpecError, "w", "id", mentions="'root'"):
        SupervisorSpec(
            id="root", children=[ChildSpec(id="w", start=work), ChildSpec(id="w", start=work)]
        )


def test_duplicate_id_between_worker_and_supervisor_sibling_is_refused() -> None:
    with refused(SpecError, "w", "id"):
        SupervisorSpec(id="root", children=[ChildSpec(id="w", start=work), SupervisorSpec(id="w")])


def test_same_id_at_different_levels_is_accepted() -> None:
    inner = SupervisorSpec(id="pool", children=[ChildSpec(id="w", start=work)])
    outer = SupervisorSpec(id="root", children=[ChildSpec(id="w", start=work), inner])
    assert [c.id for c in outer.children] == ["w", "pool"]


# ------------------------------------------------------------- SupervisorSpec rules

SIGNIFICANT = ChildSpec(id="w", start=work, restart="transient", significant=True)

SUPERVISOR_REFUSALS = [
    pytest.param(dict(strategy="one_for_some"), SpecError, "strategy", id="strategy-bogus"),
    pytest.param(dict(strategy=3), SpecTypeError, "strategy", id="strategy-int"),
    pytest.param(dict(strategy=object()), SpecTypeError, "strategy", id="strategy-object"),
    pytest.param(dict(intensity=5), SpecTypeError, "intensity", id="intensity-int"),
    pytest.param(dict(intensity=(1, 5)), SpecTypeError, "intensity", id="intensity-tuple"),
    pytest.param(dict(intensity=otp.SlidingWindow), SpecTypeError, "intensity",
                 id="intensity-class-not-instance"),
    pytest.param(dict(children="abc"), SpecTypeError, "children", id="children-str"),
    pytest.param(dict(children=[1]), SpecTypeError, "children", id="children-not-specs"),
    pytest.param(dict(children=[work]), SpecTypeError, "children", id="children-callable"),
    pytest.param(dict(children={"w": ChildSpec(id="w", start=work)}), SpecTypeError,
                 "children", id="children-dict"),
    pytest.param(dict(auto_shutdown="sometimes"), SpecError, "auto_shutdown",
                 id="auto-shutdown-bogus"),
    pytest.param(dict(restart="bogus"), SpecError, "restart", id="restart-bogus"),
    pytest.param(dict(shutdown=-1), SpecError, "shutdown", id="shutdown-negative"),
    pytest.param(dict(shutdown=math.nan), SpecError, "shutdown", id="shutdown-nan"),
    pytest.param(dict(shutdown=False), SpecTypeError, "shutdown", id="shutdown-bool"),
    pytest.param(dict(significant=True), SpecError, "significant",
                 id="significant-permanent"),
    pytest.param(dict(backend="thread"), SpecError, "backend", id="backend-bogus"),
    pytest.param(dict(strategy="simple_one_for_one"), SpecError, "children",
                 id="simple-one-for-one-no-template"),
    pytest.param(
        dict(
            strategy="simple_one_for_one",
            children=[ChildSpec(id="a", start=work), ChildSpec(id="b", start=work)],
        ),
        SpecError,
        "children",
        id="simple-one-for-one-two-templates",
    ),
]


@pytest.mark.parametrize(("fields", "cls", "field"), SUPERVISOR_REFUSALS)
def test_supervisor_spec_refuses(
    fields: dict[str, Any], cls: type[SpecError], field: str
) -> None:
    with refused(cls, "root", field):
        SupervisorSpec(id="root", **fields)


@pytest.mark.parametrize(
    "child",
    [
        pytest.param(SIGNIFICANT, id="worker"),
        pytest.param(SupervisorSpec(id="w", restart="transient", significant=True),
                     id="supervisor"),
    ],
)
def test_significant_child_under_auto_shutdown_never_is_refused(child: Any) -> None:
    with refused(SpecError, "w", "significant", mentions="'root'"):
        SupervisorSpec(id="root", children=[child])


@pytest.mark.parametrize("auto", ["any_significant", "all_significant"])
def test_significant_child_is_accepted_under_auto_shutdown(auto: str) -> None:
    spec = SupervisorSpec(id="root", auto_shutdown=auto, children=[SIGNIFICANT])
    assert spec.auto_shutdown is otp.AutoShutdown(auto)


def test_significant_temporary_child_is_accepted() -> None:
    spec = ChildSpec(id="w", start=work, restart="temporary", significant=True)
    assert spec.significant is True


def test_simple_one_for_one_template_is_its_only_child() -> None:
    template = ChildSpec(id="w", start=work)
    spec = SupervisorSpec(id="root", strategy="simple_one_for_one", children=[template])
    assert spec.template is template


def test_only_simple_one_for_one_has_a_template() -> None:
    spec = SupervisorSpec(id="root", children=[ChildSpec(id="w", start=work)])
    with refused(SpecError, "root", "strategy"):
        _ = spec.template


# -------------------------------------------------------------------------- Heartbeat


@pytest.mark.parametrize("field", ["interval", "timeout"])
@pytest.mark.parametrize(
    ("value", "cls"),
    [
        pytest.param(0, SpecError, id="zero"),
        pytest.param(-1, SpecError, id="negative"),
        pytest.param(math.nan, SpecError, id="nan"),
        pytest.param(math.inf, SpecError, id="infinite"),
        pytest.param(True, SpecTypeError, id="bool"),
        pytest.param("2", SpecTypeError, id="str"),
        pytest.param(None, SpecTypeError, id="none"),
    ],
)
def test_heartbeat_refuses(field: str, value: object, cls: type[SpecError]) -> None:
    with refused(cls, None, field, mentions=f"got {value!r}"):
        Heartbeat(**{field: value})


def test_heartbeat_defaults() -> None:
    assert Heartbeat() == Heartbeat(interval=2.0, timeout=30.0)


# ------------------------------------------------------------------ intensity policies

POLICY_REFUSALS = [
    pytest.param(lambda: otp.SlidingWindow(-1, 5), SpecError, "max_restarts",
                 id="window-negative-intensity"),
    pytest.param(lambda: otp.SlidingWindow(1.0, 5), SpecTypeError, "max_restarts",
                 id="window-float-intensity"),
    pytest.param(lambda: otp.SlidingWindow(True, 5), SpecTypeError, "max_restarts",
                 id="window-bool-intensity"),
    pytest.param(lambda: otp.SlidingWindow(1, 0), SpecError, "period", id="window-zero-period"),
    pytest.param(lambda: otp.SlidingWindow(1, -5), SpecError, "period",
                 id="window-negative-period"),
    pytest.param(lambda: otp.SlidingWindow(1, math.nan), SpecError, "period",
                 id="window-nan-period"),
    pytest.param(lambda: otp.SlidingWindow(1, math.inf), SpecError, "period",
                 id="window-infinite-period"),
    pytest.param(lambda: otp.SlidingWindow(1, "5"), SpecTypeError, "period",
                 id="window-str-period"),
    pytest.param(lambda: otp.ExponentialBackoff(initial=-1), SpecError, "initial",
                 id="backoff-negative-initial"),
    pytest.param(lambda: otp.ExponentialBackoff(initial=math.nan), SpecError, "initial",
                 id="backoff-nan-initial"),
    pytest.param(lambda: otp.ExponentialBackoff(initial="1"), SpecTypeError, "initial",
                 id="backoff-str-initial"),
    pytest.param(lambda: otp.ExponentialBackoff(initial=2, maximum=1), SpecError, "maximum",
                 id="backoff-maximum-below-initial"),
    pytest.param(lambda: otp.ExponentialBackoff(maximum=math.inf), SpecError, "maximum",
                 id="backoff-infinite-maximum"),
    pytest.param(lambda: otp.ExponentialBackoff(multiplier=0.5), SpecError, "multiplier",
                 id="backoff-multiplier-below-one"),
    pytest.param(lambda: otp.ExponentialBackoff(jitter=-0.1), SpecError, "jitter",
                 id="backoff-negative-jitter"),
    pytest.param(lambda: otp.ExponentialBackoff(jitter=1.5), SpecError, "jitter",
                 id="backoff-jitter-above-one"),
    pytest.param(lambda: otp.ExponentialBackoff(reset_after=0), SpecError, "reset_after",
                 id="backoff-zero-reset"),
    pytest.param(lambda: otp.ExponentialBackoff(reset_after=True), SpecTypeError,
                 "reset_after", id="backoff-bool-reset"),
    pytest.param(lambda: otp.DecayingFailureCount(threshold=-1), SpecError, "threshold",
                 id="decay-negative-threshold"),
    pytest.param(lambda: otp.DecayingFailureCount(decay=0), SpecError, "decay",
                 id="decay-zero-half-life"),
    pytest.param(lambda: otp.DecayingFailureCount(decay=math.nan), SpecError, "decay",
                 id="decay-nan-half-life"),
    pytest.param(lambda: otp.DecayingFailureCount(backoff=-1), SpecError, "backoff",
                 id="decay-negative-backoff"),
    pytest.param(lambda: otp.Combined(()), SpecError, "policies", id="combined-empty"),
    pytest.param(lambda: otp.Combined([otp.SlidingWindow(), 3]), SpecTypeError, "policies",
                 id="combined-not-a-policy"),
]


@pytest.mark.parametrize(("factory", "cls", "field"), POLICY_REFUSALS)
def test_intensity_policy_refuses(factory: Any, cls: type[SpecError], field: str) -> None:
    with refused(cls, None, field):
        factory()


def test_intensity_message_names_the_policy_and_field() -> None:
    with refused(SpecError, None, "max_restarts", mentions="SlidingWindow.max_restarts"):
        otp.SlidingWindow(max_restarts=-1)


def test_zero_intensity_is_accepted() -> None:
    assert otp.SlidingWindow(0, 5).max_restarts == 0


def test_and_with_a_non_policy_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        otp.SlidingWindow() & 3  # type: ignore[operator]


# ------------------------------------------------------------------ accepted spellings


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("permanent", otp.Restart.PERMANENT),
        ("transient", otp.Restart.TRANSIENT),
        ("temporary", otp.Restart.TEMPORARY),
        ("TRANSIENT", otp.Restart.TRANSIENT),
        (otp.Restart.TEMPORARY, otp.Restart.TEMPORARY),
    ],
)
def test_restart_spellings(spelling: Any, expected: otp.Restart) -> None:
    assert ChildSpec(id="w", start=work, restart=spelling).restart is expected


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("one_for_one", otp.OneForOne()),
        ("one_for_all", otp.OneForAll()),
        ("rest_for_one", otp.RestForOne()),
        ("ONE_FOR_ALL", otp.OneForAll()),
        (otp.RestForOne, otp.RestForOne()),
        (otp.OneForAll(), otp.OneForAll()),
    ],
)
def test_strategy_spellings(spelling: Any, expected: otp.RestartStrategy) -> None:
    assert SupervisorSpec(id="root", strategy=spelling).strategy == expected


def test_simple_one_for_one_spelling() -> None:
    spec = SupervisorSpec(
        id="root", strategy="simple_one_for_one", children=[ChildSpec(id="w", start=work)]
    )
    assert isinstance(spec.strategy, otp.SimpleOneForOne)


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("brutal_kill", otp.BRUTAL_KILL),
        ("BRUTAL_KILL", otp.BRUTAL_KILL),
        (otp.BRUTAL_KILL, otp.BRUTAL_KILL),
        ("infinity", otp.INFINITY),
        (otp.INFINITY, otp.INFINITY),
        (0, 0),
        (2.5, 2.5),
    ],
)
def test_shutdown_spellings(spelling: Any, expected: Any) -> None:
    assert ChildSpec(id="w", start=work, shutdown=spelling).shutdown == expected


@pytest.mark.parametrize("spelling", ["any_significant", otp.AutoShutdown.ANY_SIGNIFICANT])
def test_auto_shutdown_spellings(spelling: Any) -> None:
    spec = SupervisorSpec(id="root", auto_shutdown=spelling)
    assert spec.auto_shutdown is otp.AutoShutdown.ANY_SIGNIFICANT


def test_list_args_become_a_tuple() -> None:
    assert ChildSpec(id="w", start=work_with, args=[1, "a"]).args == (1, "a")


def test_kwargs_mapping_becomes_a_dict() -> None:
    spec = ChildSpec(id="w", start=work_with, kwargs=types.MappingProxyType({"a": 1}))
    assert spec.kwargs == {"a": 1}
    assert type(spec.kwargs) is dict


def test_children_list_becomes_a_tuple() -> None:
    spec = SupervisorSpec(id="root", children=[ChildSpec(id="w", start=work)])
    assert isinstance(spec.children, tuple)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["ls", "-l"], ("ls", "-l")),
        (("ls", "-l"), ("ls", "-l")),
        ("ls -l 'a b'", ("ls", "-l", "a b")),
    ],
)
def test_command_argv_spellings(argv: Any, expected: tuple[str, ...]) -> None:
    assert ChildSpec.command("c", argv).start == expected


def test_stop_signal_accepts_a_signal_number() -> None:
    spec = ChildSpec.command("c", ["ls"], stop_signal=int(signal.SIGINT))
    assert spec.stop_signal == signal.SIGINT


@pytest.mark.parametrize(
    ("backend", "fields"),
    [
        pytest.param("process", dict(start_method="fork"), id="process-fork"),
        pytest.param("thread", {}, id="thread"),
    ],
)
def test_unpicklable_start_is_accepted_where_nothing_is_pickled(
    backend: str, fields: dict[str, Any]
) -> None:
    spec = ChildSpec(id="w", start=lambda: None, backend=backend, **fields)
    assert spec.backend == backend


def test_infinite_start_timeout_is_accepted() -> None:
    spec = ChildSpec(id="w", start=work, start_timeout=otp.INFINITY)
    assert spec.start_timeout is otp.INFINITY
    assert ChildSpec(id="w", start=work, start_timeout="infinity").start_timeout is otp.INFINITY


# ---------------------------------------------------------------------------- defaults


def test_worker_defaults_follow_otp() -> None:
    spec = ChildSpec(id="w", start=work)
    assert spec.restart is otp.Restart.PERMANENT
    assert spec.shutdown == 5.0
    assert spec.significant is False
    assert spec.args == ()
    assert spec.kwargs == {}


def test_worker_option_defaults() -> None:
    spec = ChildSpec(id="w", start=work)
    assert (spec.ready, spec.start_timeout, spec.heartbeat) == (False, 30.0, None)
    assert (spec.start_method, spec.stop_signal, spec.cwd, spec.env) == (None, None, None, None)


def test_supervisor_defaults_follow_otp() -> None:
    spec = SupervisorSpec(id="root")
    assert spec.strategy == otp.OneForOne()
    assert spec.shutdown == otp.INFINITY
    assert spec.restart is otp.Restart.PERMANENT
    assert spec.auto_shutdown is otp.AutoShutdown.NEVER
    assert spec.children == ()
    assert spec.backend == "inline"


def test_default_intensity_is_one_restart_in_five_seconds() -> None:
    assert SupervisorSpec(id="root").intensity == otp.SlidingWindow(1, 5.0)


@pytest.mark.parametrize(
    ("start", "backend"),
    [
        pytest.param(awork, "asyncio", id="coroutine-function"),
        pytest.param(functools.partial(awork), "asyncio", id="partial-of-coroutine-function"),
        pytest.param(AsyncCallable(), "asyncio", id="object-with-async-call"),
        pytest.param(["ls", "-l"], "command", id="argv-list"),
        pytest.param(("ls",), "command", id="argv-tuple"),
        pytest.param("ls -l", "command", id="command-line"),
        pytest.param(work, "process", id="function"),
        pytest.param(print, "process", id="builtin"),
        pytest.param(dict, "process", id="class"),
    ],
)
def test_backend_is_inferred_from_start(start: Any, backend: str) -> None:
    assert ChildSpec(id="w", start=start).backend == backend


# ------------------------------------------------------------------ named constructors


@pytest.mark.parametrize(
    ("constructor", "start", "backend"),
    [
        (ChildSpec.process, work, "process"),
        (ChildSpec.thread, work, "thread"),
        (ChildSpec.task, awork, "asyncio"),
        (ChildSpec.command, ["ls"], "command"),
    ],
)
def test_named_constructor_sets_the_backend(constructor: Any, start: Any, backend: str) -> None:
    spec = constructor("w", start)
    assert (spec.id, spec.backend) == ("w", backend)


def test_named_constructor_passes_other_fields() -> None:
    spec = ChildSpec.thread("w", work_with, restart="transient", args=[1])
    assert spec == ChildSpec(id="w", start=work_with, backend="thread", restart="transient",
                             args=(1,))


def test_named_constructor_validates() -> None:
    with refused(SpecError, "w", "start"):
        ChildSpec.thread("w", awork)


# ------------------------------------------------------------ values, nesting, extras


def test_specs_are_frozen() -> None:
    spec = ChildSpec(id="w", start=work)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        spec.id = "x"  # type: ignore[misc]


def test_equal_specs_hash_equal() -> None:
    a = ChildSpec(id="w", start=work_with, args=[1], kwargs={"k": 2})
    b = ChildSpec(id="w", start=work_with, args=(1,), kwargs={"k": 2})
    assert a == b
    assert hash(a) == hash(b)


def test_supervisor_spec_nests_as_a_child() -> None:
    inner = SupervisorSpec(id="pool", strategy="one_for_all",
                           children=[ChildSpec(id="w", start=work)])
    outer = SupervisorSpec(id="root", children=[ChildSpec(id="db", start=work), inner])
    assert outer.children[1] is inner
    assert [c.is_supervisor for c in outer.children] == [False, True]


def test_with_extra_args_appends_to_args() -> None:
    spec = ChildSpec(id="w", start=work_with, args=(1,))
    assert spec.with_extra_args([2, 3]).args == (1, 2, 3)


def test_supervisor_template_takes_no_extra_args() -> None:
    with refused(SpecError, "pool", "args"):
        SupervisorSpec(id="pool").with_extra_args([1])


async def _idle() -> None:
    pass


@pytest.mark.parametrize("make", [
    lambda: ChildSpec.task("c", _idle, shutdown=10**400),
    lambda: ChildSpec.task("c", _idle, start_timeout=10**400),
    lambda: SupervisorSpec(id="s", shutdown=10**400, children=[]),
    lambda: Heartbeat(timeout=10**400),
    lambda: otp.LoopWatchdog(timeout=10**400),
    lambda: otp.SlidingWindow(1, 10**400),
    lambda: otp.ExponentialBackoff(initial=10**400),
])
def test_an_int_too_large_for_a_float_is_a_spec_error(make: Any) -> None:
    with pytest.raises(SpecError):  # not an OverflowError from deep inside
        make()
