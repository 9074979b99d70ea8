"""Hostile and careless specs are refused where they are written, never in a restart loop.

Three groups (issue 12, items 7 and 10; issue 17, item 4):

* ids that would forge rows and log lines or break paths (control and format
  characters, line separators, ``/``, empty, too long) are refused with a
  :class:`~otp_py.SpecError` naming the child and the field, whatever the way in:
  a ChildSpec, a SupervisorSpec, a shared budget's name, a tree file, ``otp-py run``;
* a ``start`` that cannot be called with its arguments, a heartbeat that cannot be
  honoured, a stop signal that cannot ask a program to stop, a float infinity taken
  for ``INFINITY``: refused at construction (or at ``start_child``, for what a
  simple_one_for_one template only gets there), and the running tree is untouched;
* every SpecError carries a machine-readable ``kind`` (OTP's reason where OTP has
  one) and the offending ``value``, and keeps them through pickling.
"""

from __future__ import annotations

import asyncio
import math
import pickle
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest

import otp_py as otp
from otp_py import ChildSpec, Heartbeat, Restart, SpecError, SupervisorSpec


def one_arg(a: int) -> None:
    """A child that takes exactly one argument."""


def no_args() -> None:
    """A child that takes none."""


def anything(*args: Any, **kwargs: Any) -> None:
    """A child that takes any arguments."""


async def task_one_arg(a: int) -> None:
    await asyncio.Event().wait()


async def task_forever(*names: str) -> None:
    await asyncio.Event().wait()


def _printable(text: str) -> bool:
    return all(ch.isprintable() for ch in text)


# ------------------------------------------------------------------------------- ids

FORGING_IDS = [
    pytest.param("web\nroot  running  pid 1", id="newline"),
    pytest.param("a\rb", id="carriage-return"),
    pytest.param("ro\x00ot", id="nul"),
    pytest.param("\x1b[31mred\x1b[0m", id="ansi-escape"),
    pytest.param("abc\u202edcb", id="bidi-override"),
    pytest.param("a\u2066b", id="bidi-isolate"),
    pytest.param("zero\u200bwidth", id="zero-width-space"),
    pytest.param("a\u2028b", id="line-separator"),
    pytest.param("a\u2029b", id="paragraph-separator"),
    pytest.param("a\x7fb", id="delete"),
    pytest.param("tab\tbed", id="tab"),
    pytest.param("x" * 256, id="too-long"),
    pytest.param("", id="empty"),
    pytest.param("a/b", id="slash"),
]


@pytest.mark.parametrize("bad", FORGING_IDS)
@pytest.mark.parametrize("make", [
    pytest.param(lambda i: ChildSpec(id=i, start=no_args), id="child"),
    pytest.param(lambda i: SupervisorSpec(id=i), id="supervisor"),
])
def test_an_id_that_could_forge_a_line_is_refused_naming_it(
    bad: str, make: Callable[[str], Any]
) -> None:
    with pytest.raises(SpecError) as caught:
        make(bad)
    error = caught.value
    assert (error.child, error.field, error.kind, error.value) == (
        bad, "id", "invalid_child_id", bad)
    message = str(error)
    assert "field 'id'" in message
    assert _printable(message), message  # the error itself forges nothing
    assert len(message) < 500


def test_the_longest_id_and_ids_in_any_script_are_accepted() -> None:
    for good in ("x" * 255, "café", "работник", "作業者", "w-1.2_3", "a b"):
        assert ChildSpec(id=good, start=no_args).id == good
        assert SupervisorSpec(id=good).id == good
    with pytest.raises(SpecError, match="256 characters"):
        ChildSpec(id="x" * 256, start=no_args)


def test_a_shared_budget_name_that_could_forge_a_line_is_refused() -> None:
    with pytest.raises(SpecError) as caught:
        otp.SharedBudget("db\n[root] gave up")
    assert (caught.value.field, caught.value.kind) == ("name", "invalid_name")
    assert _printable(str(caught.value))
    assert otp.SharedBudget("db-outage").name == "db-outage"


@pytest.mark.parametrize("bad", ["w\n1", "\x1b[2Jw", "w\u202e1", "w\u2028", "x" * 256])
def test_a_tree_wide_name_that_could_forge_a_line_is_refused(bad: str) -> None:
    for make in (lambda: ChildSpec(id="w", start=no_args, name=bad),
                 lambda: SupervisorSpec(id="w", name=bad)):
        with pytest.raises(SpecError) as caught:
            make()
        assert (caught.value.child, caught.value.field, caught.value.value) == ("w", "name", bad)
        assert _printable(str(caught.value))
    spec = SupervisorSpec(id="root", children=[SupervisorSpec(
        id="pool", strategy="simple_one_for_one", children=[ChildSpec.task("w", task_forever)])])

    async def scenario() -> None:
        async with otp.supervise(spec) as sup:
            with pytest.raises(SpecError) as caught:
                await sup.start_child(args=("a",), supervisor="pool", name=bad)
            assert (caught.value.field, caught.value.value) == ("name", bad)
            assert _printable(str(caught.value))
            assert await sup.which_children("pool") == []

    asyncio.run(scenario())


def test_a_tree_file_with_a_forging_id_is_refused_at_its_line(tmp_path: Path) -> None:
    from otp_py.cli.toml_spec import parse

    text = ('id = "root"\n'
            "\n"
            "[[children]]\n"
            'id = "web\\u001b[2J"\n'
            'command = ["sleep", "1"]\n')
    spec, problems = parse(text, "tree.toml")
    assert spec is None
    [problem] = problems
    assert problem.line == 4
    assert "field 'id'" in problem.message and "U+001B" in problem.message
    assert _printable(problem.describe())


def test_otp_py_run_refuses_a_nul_in_the_root_id_before_starting(tmp_path: Path) -> None:
    """It used to start and then fail with "embedded null byte" (the control socket's
    path is made from the root id)."""
    tree = tmp_path / "tree.toml"
    tree.write_text('id = "ro\\u0000ot"\n\n[[children]]\nid = "w"\n'
                    'command = ["sleep", "3600"]\n')
    result = subprocess.run([sys.executable, "-m", "otp_py", "run", str(tree)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert "tree.toml:1:" in result.stderr
    assert "field 'id'" in result.stderr
    assert "null byte" not in result.stderr and "Traceback" not in result.stderr


# ------------------------------------------------------ a start that cannot be called

NOT_CALLABLE_WITH = [
    (dict(start=one_arg, kwargs={"a-b": 1}, args=(1,)), "kwargs",
     "unexpected keyword argument 'a-b'", "kwarg-not-an-identifier"),
    (dict(start=one_arg, args=(1, 2)), "args", "too many positional", "too-many-args"),
    (dict(start=no_args, kwargs={"x": 1}), "kwargs", "unexpected keyword", "unknown-kwarg"),
    (dict(start=one_arg, args=(1,), kwargs={"a": 1}), "kwargs", "multiple values", "twice"),
    (dict(start=len, args=(1, 2)), "args", "too many positional", "builtin-with-signature"),
]
"""Calls every backend but asyncio makes as ``start(*args, **kwargs)``."""


def _cases() -> list[Any]:
    cases = [pytest.param(backend, fields, field, says, id=f"{backend}-{label}")
             for backend in ("process", "thread")
             for fields, field, says, label in NOT_CALLABLE_WITH]
    cases.append(pytest.param("asyncio", dict(start=task_one_arg, args=(1, 2)), "args",
                              "too many positional", id="asyncio-too-many-args"))
    cases.append(pytest.param("asyncio", dict(start=task_one_arg, args=(1,), kwargs={"b": 2}),
                              "kwargs", "unexpected keyword", id="asyncio-unknown-kwarg"))
    return cases


@pytest.mark.parametrize(("backend", "fields", "field", "says"), _cases())
def test_a_start_that_cannot_take_its_arguments_is_refused(
    backend: str, fields: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(SpecError) as caught:
        ChildSpec(id="w", backend=backend, **fields)
    error = caught.value
    assert (error.child, error.field, error.kind) == ("w", field, "invalid_start")
    assert says in str(error)
    assert error.value == fields.get(field, ())


def test_a_missing_argument_is_refused_for_a_static_child_not_for_a_template() -> None:
    lone = ChildSpec.thread("w", one_arg)  # may yet be a template: accepted alone
    with pytest.raises(SpecError, match="missing a required argument: 'a'") as caught:
        SupervisorSpec(id="root", children=[lone])
    assert (caught.value.child, caught.value.field, caught.value.kind) == (
        "w", "args", "invalid_start")
    pool = SupervisorSpec(id="pool", strategy="simple_one_for_one", children=[lone])
    assert pool.template.with_extra_args([1]).args == (1,)
    with pytest.raises(SpecError, match="too many positional"):
        pool.template.with_extra_args([1, 2])


def test_a_callable_without_a_signature_is_accepted_as_it_cannot_be_checked() -> None:
    with pytest.raises(ValueError):
        __import__("inspect").signature(int)
    assert ChildSpec.thread("w", int, args=("1", "2", "3")).args == ("1", "2", "3")
    with pytest.raises(SpecError):  # while a builtin with a signature is checked
        SupervisorSpec(id="root", children=[ChildSpec.thread("w", len)])


def test_an_ofa_supervisor_refuses_a_target_that_cannot_take_its_arguments() -> None:
    with pytest.raises(SpecError) as caught:
        otp.OFASupervisor(no_args, args=[1])
    assert (caught.value.field, caught.value.kind) == ("args", "invalid_start")
    assert otp.OFASupervisor(one_arg, args=[1]).args == [1]


def test_a_bad_start_child_is_refused_and_the_running_tree_is_untouched() -> None:
    """It used to be accepted, then crash at every start until the tree gave up."""
    spec = SupervisorSpec(
        id="root",
        children=[
            ChildSpec.task("k", task_forever),
            SupervisorSpec(id="pool", strategy="simple_one_for_one",
                           children=[ChildSpec.task("w", task_one_arg)]),
        ],
    )
    reports: list[Any] = []

    async def scenario() -> None:
        async with otp.supervise(spec, on_report=reports.append) as sup:
            before = len(reports)
            with pytest.raises(SpecError) as caught:
                await sup.start_child(ChildSpec.task("bad", task_one_arg, kwargs={"a-b": 1}))
            assert (caught.value.child, caught.value.field) == ("bad", "kwargs")
            with pytest.raises(SpecError) as caught:
                await sup.start_child(ChildSpec.task("bad", task_one_arg))  # a missing arg
            assert (caught.value.child, caught.value.field) == ("bad", "args")
            with pytest.raises(SpecError) as caught:
                await sup.start_child(args=(1, 2), supervisor="pool")
            assert (caught.value.child, caught.value.kind) == ("w", "invalid_start")
            with pytest.raises(SpecError):
                await sup.start_child(args=(), supervisor="pool")
            assert reports[before:] == []
            assert [(c.id, c.state, c.restarts) for c in await sup.which_children()] == [
                ("k", "running", 0), ("pool", "running", 0)]
            assert await sup.which_children("pool") == []
            assert await sup.start_child(args=(1,), supervisor="pool") == "w#1"

    asyncio.run(scenario())


# --------------------------------------------------------- heartbeats, signals, INFINITY


@pytest.mark.parametrize(("interval", "timeout", "field", "says"), [
    pytest.param(2.0, 1.0, "timeout", "at least its interval", id="timeout-under-interval"),
    pytest.param(0.0005, 1.0, "interval", "1 ms", id="interval-under-1ms"),
])
def test_a_heartbeat_that_cannot_be_honoured_is_refused(
    interval: float, timeout: float, field: str, says: str
) -> None:
    with pytest.raises(SpecError, match=says) as caught:
        Heartbeat(interval, timeout)
    assert (caught.value.field, caught.value.value) == (field, locals()[field])
    assert Heartbeat(0.001, 0.001) == Heartbeat(interval=0.001, timeout=0.001)


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGSTOP])
def test_a_stop_signal_that_cannot_ask_for_a_stop_is_refused(signum: int) -> None:
    with pytest.raises(SpecError, match="BRUTAL_KILL") as caught:
        ChildSpec.command("c", ["sleep", "1"], stop_signal=signum)
    assert (caught.value.child, caught.value.field, caught.value.value) == (
        "c", "stop_signal", signum)
    for fine in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        assert ChildSpec.command("c", ["sleep", "1"], stop_signal=fine).stop_signal == fine


@pytest.mark.parametrize("inf", [float("inf"), math.inf, 1e400], ids=["float", "math", "1e400"])
def test_a_float_infinity_start_timeout_is_refused_unless_written_infinity(inf: float) -> None:
    with pytest.raises(SpecError, match="INFINITY") as caught:
        ChildSpec(id="w", start=no_args, start_timeout=inf)
    assert (caught.value.child, caught.value.field) == ("w", "start_timeout")
    for spelled in (otp.INFINITY, "infinity", "INFINITY"):
        assert ChildSpec(id="w", start=no_args, start_timeout=spelled).start_timeout \
            is otp.INFINITY


def test_infinity_survives_pickling_so_a_subtree_can_evolve_its_specs() -> None:
    spec = ChildSpec(id="w", start=anything, start_timeout=otp.INFINITY, shutdown=otp.INFINITY)
    again = pickle.loads(pickle.dumps(spec))
    assert again.start_timeout is otp.INFINITY
    assert attrs.evolve(again, args=(1,)).start_timeout is otp.INFINITY


# ------------------------------------------------------------------ kinds and values


def _duplicate() -> Any:
    return SupervisorSpec(id="s", children=[ChildSpec.thread("w", no_args)] * 2)


KINDS = [
    pytest.param(lambda: ChildSpec(id="w", start=no_args, restart="forever"),
                 "invalid_restart_type", "w", "restart", "forever", id="restart"),
    pytest.param(lambda: ChildSpec(id="w", start=no_args, shutdown=-1),
                 "invalid_shutdown", "w", "shutdown", -1, id="shutdown"),
    pytest.param(lambda: ChildSpec(id="w", start=no_args, shutdown="soon"),
                 "invalid_shutdown", "w", "shutdown", "soon", id="shutdown-type"),
    pytest.param(lambda: ChildSpec(id="w", start=no_args, significant="maybe"),
                 "invalid_significant", "w", "significant", "maybe", id="significant"),
    pytest.param(lambda: ChildSpec(id="w", start=no_args, significant=True),
                 "bad_combination", "w", "significant",
                 (("restart", Restart.PERMANENT), ("significant", True)),
                 id="permanent-significant"),
    pytest.param(lambda: SupervisorSpec(id="s", children=[ChildSpec(
        id="w", start=no_args, restart="transient", significant=True)]),
                 "bad_combination", "w", "significant",
                 (("auto_shutdown", otp.AutoShutdown.NEVER), ("significant", True)),
                 id="significant-under-never"),
    pytest.param(lambda: ChildSpec.thread("w", no_args, stop_signal=signal.SIGTERM),
                 "bad_combination", "w", "stop_signal",
                 (("backend", "thread"), ("stop_signal", signal.SIGTERM)),
                 id="option-of-another-backend"),
    pytest.param(_duplicate, "duplicate_child_name", "w", "id", "w", id="duplicate"),
    pytest.param(lambda: SupervisorSpec(id="s", strategy="one_for_some"),
                 "invalid_strategy", "s", "strategy", "one_for_some", id="strategy"),
    pytest.param(lambda: SupervisorSpec(id="s", auto_shutdown="sometimes"),
                 "invalid_auto_shutdown", "s", "auto_shutdown", "sometimes", id="auto"),
    pytest.param(lambda: SupervisorSpec(id="s", intensity=5),
                 "invalid_intensity", "s", "intensity", 5, id="intensity"),
    pytest.param(lambda: otp.SlidingWindow(-1, 5), "invalid_intensity", None, "max_restarts",
                 -1, id="max-restarts"),
    pytest.param(lambda: otp.SlidingWindow(1, 0), "invalid_period", None, "period", 0,
                 id="period"),
    pytest.param(lambda: SupervisorSpec(id="s", children=[42]), "invalid_child_spec", "s",
                 "children", 42, id="not-a-spec"),
    pytest.param(lambda: SupervisorSpec(id="s", strategy="simple_one_for_one"),
                 "bad_start_spec", "s", "children", (), id="no-template"),
    pytest.param(lambda: ChildSpec(id="w", start=42), "invalid_start", "w", "start", 42,
                 id="start"),
    pytest.param(lambda: ChildSpec(id="w", start=no_args, backend="docker"),
                 "invalid_backend", "w", "backend", "docker", id="backend"),
    pytest.param(lambda: ChildSpec(id="w", start=no_args, start_timeout=0),
                 "invalid_start_timeout", "w", "start_timeout", 0, id="start-timeout"),
]


@pytest.mark.parametrize(("build", "kind", "child", "field", "value"), KINDS)
def test_a_spec_error_says_what_is_wrong_as_data(
    build: Callable[[], Any], kind: str, child: str | None, field: str, value: Any
) -> None:
    with pytest.raises(SpecError) as caught:
        build()
    error = caught.value
    assert (error.kind, error.child, error.child_id, error.field, error.value) == (
        kind, child, child, field, value)


def test_a_spec_error_keeps_its_kind_and_value_through_pickling() -> None:
    with pytest.raises(SpecError) as caught:
        ChildSpec(id="w", start=no_args, restart="forever")
    again = pickle.loads(pickle.dumps(caught.value))
    assert (type(again), again.kind, again.child, again.field, again.value, str(again)) == (
        otp.SpecTypeError if isinstance(caught.value, otp.SpecTypeError) else SpecError,
        "invalid_restart_type", "w", "restart", "forever", str(caught.value))
    lock = threading.Lock()  # an offending value that cannot travel becomes its repr
    unpicklable = SpecError("w", "args", "no", kind="invalid_start", value=lock)
    assert pickle.loads(pickle.dumps(unpicklable)).value == repr(lock)


def test_start_child_of_a_significant_child_under_never_is_a_bad_combination() -> None:
    spec = SupervisorSpec(id="root", children=[ChildSpec.task("k", task_forever)])

    async def scenario() -> None:
        async with otp.supervise(spec) as sup:
            with pytest.raises(SpecError) as caught:
                await sup.start_child(ChildSpec.task("sig", task_forever, restart="transient",
                                                     significant=True))
            assert (caught.value.kind, caught.value.value) == (
                "bad_combination",
                (("auto_shutdown", otp.AutoShutdown.NEVER), ("significant", True)))

    asyncio.run(scenario())
