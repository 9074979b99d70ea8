"""``otp_py.OFASupervisor`` behaves as Celery 0.4's ``celery.supervisor`` page documents
(``tests/compat/data/celery-supervisor-0.4.0.md``): one test per documented item, then
the restart, hang and no-survivor behaviour it promises for a pool.

Every test runs ``start()`` for real, in the main thread, and stops it with a real
signal (see :mod:`tests.compat.harness`); timing parameters are small so the file
runs in seconds.
"""

from __future__ import annotations

import inspect
import itertools
import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

import otp_py as otp
from otp_py import reasons
from tests.compat import targets
from tests.compat.harness import SLACK, Events, assert_all_gone, supervise
from tests.reports import DEFAULT_TIMEOUT

FAST: dict[str, Any] = {"check_interval": 0.2, "ping_timeout": 1.0, "join_timeout": 0.5}
"""Quick timings for tests that do not exercise them."""


@pytest.fixture
def events() -> Iterator[Events]:
    channel = Events()
    yield channel
    channel.close()


@pytest.fixture
def starts(tmp_path: Any) -> str:
    return str(tmp_path / "starts")


def ofa(target: Any, *args: Any, **params: Any) -> otp.OFASupervisor:
    return otp.OFASupervisor(target, args=list(args), **{**FAST, **params})


def running(count: int = 1) -> Any:
    """A ``stop_when``: once ``count`` children have said they run."""
    return lambda events: events.wait_for("running", count)


def gap(first: tuple[Any, ...], then: tuple[Any, ...]) -> float:
    return float(then[2] - first[2])


# -- the class and its parameters ---------------------------------------------------

PARAMETERS = {
    "target": targets.echo,
    "args": [1, 2],
    "kwargs": {"a": 1},
    "ping_timeout": 7,
    "join_timeout": 3,
    "max_restart_freq": 5,
    "max_restart_freq_time": 20,
    "check_interval": 1.5,
}


def test_signature_is_celerys() -> None:
    parameters = inspect.signature(otp.OFASupervisor).parameters.values()
    assert [(p.name, p.default) for p in parameters] == [
        ("target", inspect.Parameter.empty),
        ("args", None),
        ("kwargs", None),
        ("ping_timeout", 30),
        ("join_timeout", 2),
        ("max_restart_freq", 3),
        ("max_restart_freq_time", 10),
        ("check_interval", 2),
    ]
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in parameters)


@pytest.mark.parametrize("name", PARAMETERS)
def test_parameter_is_readable_as_attribute(name: str) -> None:
    given = dict(PARAMETERS)
    sup = otp.OFASupervisor(**given)
    assert getattr(sup, name) == given[name]


def test_defaults() -> None:
    sup = otp.OFASupervisor(targets.forever)
    assert sup.args == [] and sup.kwargs == {}
    assert (sup.ping_timeout, sup.join_timeout, sup.check_interval) == (30, 2, 2)
    assert (sup.max_restart_freq, sup.max_restart_freq_time) == (3, 10)


def test_it_is_a_one_for_all_supervisor_over_one_process_child() -> None:
    """The documented construction, and nothing else: what start() runs."""
    sup = otp.OFASupervisor(
        targets.echo,
        args=[1],
        kwargs={"k": 2},
        ping_timeout=7,
        join_timeout=3,
        max_restart_freq=4,
        max_restart_freq_time=20,
        check_interval=1.5,
    )
    assert sup.to_spec() == otp.SupervisorSpec(
        id="OFASupervisor",
        strategy=otp.OneForAll(),
        intensity=otp.SlidingWindow(max_restarts=4, period=20),
        children=[
            otp.ChildSpec(
                id="process",
                start=targets.echo,
                args=(1,),
                kwargs={"k": 2},
                restart=otp.Restart.PERMANENT,
                process_class=multiprocessing.Process,
                heartbeat=otp.Heartbeat(interval=1.5, timeout=7),
                shutdown=3,
            )
        ],
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"target": "not callable"}, "start"),
        ({"join_timeout": "2"}, "shutdown"),
        ({"check_interval": -1}, "interval"),
        ({"ping_timeout": "30"}, "timeout"),
        ({"max_restart_freq": "3"}, "max_restarts"),
        ({"max_restart_freq_time": "10"}, "period"),
    ],
)
def test_invalid_parameters_are_refused_where_written(params: dict[str, Any], field: str) -> None:
    params = {"target": targets.forever, **params}
    with pytest.raises(otp.SpecError) as info:
        otp.OFASupervisor(**params)
    assert info.value.field == field


def test_target_is_launched_in_a_separate_process(events: Events, starts: str) -> None:
    outcome = supervise(ofa(targets.report_process, events.writer, starts, 0), events, running())
    [(_, pid, _, number, _, parent)] = events.of("running")
    assert number == 1 and pid != os.getpid() and parent == os.getpid()
    assert outcome.error is None


def test_args_are_applied_to_target(events: Events) -> None:
    sup = otp.OFASupervisor(targets.echo, args=[events.writer, 1, "two"], **FAST)
    supervise(sup, events, running())
    [(*_, args, kwargs)] = events.of("running")
    assert (args, kwargs) == ((1, "two"), {})


def test_kwargs_are_applied_to_target(events: Events) -> None:
    sup = otp.OFASupervisor(
        targets.echo, args=(events.writer,), kwargs={"three": 3, "four": [4]}, **FAST
    )
    supervise(sup, events, running())
    [(*_, args, kwargs)] = events.of("running")
    assert (args, kwargs) == ((), {"three": 3, "four": [4]})


def test_join_timeout_is_the_grace_before_a_kill(events: Events) -> None:
    """A process that ignores the stop request is killed join_timeout seconds later."""
    sup = ofa(targets.ignore_sigterm, events.writer, join_timeout=1.0)
    outcome = supervise(sup, events, running())
    assert outcome.returned is None and outcome.error is None
    assert outcome.signalled is not None
    assert 1.0 <= outcome.ended - outcome.signalled <= 1.0 + SLACK
    assert_all_gone(events.pids())


@pytest.mark.parametrize("max_restart_freq", [1, 3])
def test_max_restart_freq_restarts_are_allowed_within_the_window(
    events: Events, max_restart_freq: int
) -> None:
    sup = ofa(
        targets.crash, events.writer, max_restart_freq=max_restart_freq, max_restart_freq_time=10
    )
    outcome = supervise(sup, events)
    assert isinstance(outcome.error, otp.MaxRestartsExceededError)
    assert len(events.of("running")) == max_restart_freq + 1  # the first start and the restarts


def test_crashes_four_times_within_the_window_raise_after_the_third_restart(
    events: Events,
) -> None:
    sup = otp.OFASupervisor(targets.crash, args=[events.writer], **FAST)  # 3 in 10 s
    outcome = supervise(sup, events)
    assert isinstance(outcome.error, otp.MaxRestartsExceededError)
    assert len(events.of("running")) == 4
    assert_all_gone(events.pids())


def test_crashes_spaced_wider_than_max_restart_freq_time_never_raise(
    events: Events, starts: str
) -> None:
    """One restart allowed in 0.4 s; five crashes, each 0.6 s after its start."""
    sup = ofa(
        targets.crash_first,
        events.writer,
        starts,
        5,
        0.6,
        max_restart_freq=1,
        max_restart_freq_time=0.4,
    )
    outcome = supervise(sup, events, running(6))
    assert outcome.returned is None and outcome.error is None
    crashes = events.of("crashing")
    assert len(crashes) == 5
    assert all(gap(a, b) > 0.4 for a, b in itertools.pairwise(crashes))


def test_a_crashing_target_is_restarted(events: Events, starts: str) -> None:
    outcome = supervise(ofa(targets.crash_first, events.writer, starts, 1), events, running(2))
    first, second = events.of("running")
    assert (first[3], second[3]) == (1, 2) and first[1] != second[1]
    assert outcome.returned is None and outcome.error is None
    assert_all_gone(events.pids())


def test_a_target_that_returns_is_restarted(events: Events) -> None:
    outcome = supervise(ofa(targets.return_at_once, events.writer), events)
    assert isinstance(outcome.error, otp.MaxRestartsExceededError)
    assert len(events.of("running")) == 4
    assert all(r == reasons.Normal() for _, r in _reasons(outcome.error))


def _reasons(error: otp.IntensityExceededError) -> list[tuple[str, Any]]:
    return [(child, record.reason) for child, record in error.history]


# -- heartbeat: ping_timeout and check_interval -------------------------------------


def test_ping_timeout_a_frozen_process_is_restarted_in_time(events: Events) -> None:
    """SIGSTOP: no answer to pings; restarted within ping_timeout + check_interval +
    join_timeout (the stop request cannot reach a frozen process: it is killed)."""
    params = {"ping_timeout": 1.0, "check_interval": 0.2, "join_timeout": 0.3}
    sup = ofa(targets.freeze, events.writer, max_restart_freq=1, **params)
    outcome = supervise(sup, events)
    assert isinstance(outcome.error, otp.MaxRestartsExceededError)
    freezing, restarted = events.of("freezing")[0], events.of("running")[1]
    assert params["ping_timeout"] <= gap(freezing, restarted) <= sum(params.values()) + SLACK
    assert [type(r) for _, r in _reasons(outcome.error)] == [reasons.Hung, reasons.Hung]
    assert_all_gone(events.pids())


def test_ping_timeout_a_process_holding_the_gil_is_restarted_in_time(events: Events) -> None:
    """The ping responder cannot run, but the process still handles SIGTERM; that
    SIGTERM must stop only the child, never reach the supervisor (a forked child
    must not inherit the supervising loop's signal wakeup fd)."""
    params = {"ping_timeout": 1.0, "check_interval": 0.2, "join_timeout": 0.3}
    sup = ofa(targets.hold_gil, events.writer, max_restart_freq=1, **params)
    outcome = supervise(sup, events)
    assert isinstance(outcome.error, otp.MaxRestartsExceededError), outcome
    freezing, restarted = events.of("freezing")[0], events.of("running")[1]
    assert params["ping_timeout"] <= gap(freezing, restarted) <= sum(params.values()) + SLACK
    assert [type(r) for _, r in _reasons(outcome.error)] == [reasons.Hung, reasons.Hung]
    assert_all_gone(events.pids())


def test_check_interval_is_the_time_between_pings(events: Events) -> None:
    """With a tiny ping_timeout, a hang is still only noticed at the next ping."""
    params = {"ping_timeout": 0.1, "check_interval": 1.0, "join_timeout": 0.2}
    sup = ofa(targets.freeze, events.writer, max_restart_freq=1, **params)
    outcome = supervise(sup, events)
    assert isinstance(outcome.error, otp.MaxRestartsExceededError)
    freezing, restarted = events.of("freezing")[0], events.of("running")[1]
    assert params["check_interval"] <= gap(freezing, restarted) <= sum(params.values()) + SLACK


# -- Process ------------------------------------------------------------------------


class CountingProcess(multiprocessing.Process):
    """A Process subclass that counts its instances (in the supervising process)."""

    created: ClassVar[list[str]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        CountingProcess.created.append(self.name)


class CountingSupervisor(otp.OFASupervisor):
    Process = CountingProcess


def test_process_is_multiprocessing_process_by_default(events: Events, starts: str) -> None:
    assert otp.OFASupervisor.Process is multiprocessing.Process
    supervise(ofa(targets.report_process, events.writer, starts, 0), events, running())
    [(*_, process_class, _)] = events.of("running")
    assert process_class == "Process"


def test_a_subclass_process_class_is_used_for_every_start_and_restart(
    events: Events, starts: str
) -> None:
    CountingProcess.created.clear()
    sup = CountingSupervisor(targets.report_process, args=[events.writer, starts, 2], **FAST)
    outcome = supervise(sup, events, running(3))
    assert outcome.error is None
    assert [e[4] for e in events.of("running")] == ["CountingProcess"] * 3
    assert len(CountingProcess.created) == 3


# -- start() ------------------------------------------------------------------------


def test_start_supervises_until_sigterm_then_returns(events: Events) -> None:
    """The stop is graceful: a process that honours SIGTERM is not made to wait."""
    sup = ofa(targets.run_forever, events.writer, join_timeout=5)
    outcome = supervise(sup, events, running(), signum=signal.SIGTERM)
    assert outcome.returned is None and outcome.error is None
    assert outcome.signalled is not None and outcome.ended - outcome.signalled < 5
    assert_all_gone(events.pids())


def test_start_returns_on_keyboard_interrupt(events: Events) -> None:
    sup = ofa(targets.run_forever, events.writer)
    outcome = supervise(sup, events, running(), signum=signal.SIGINT)
    assert outcome.returned is None and outcome.error is None
    assert_all_gone(events.pids())


def test_start_blocks_the_calling_thread(events: Events) -> None:
    sup = ofa(targets.run_forever, events.writer)
    seen: list[str] = []

    def stop_when(ev: Events) -> None:
        ev.wait_for("running")
        seen.append(threading.main_thread().name)  # still inside start()

    outcome = supervise(sup, events, stop_when)
    assert seen == ["MainThread"] and outcome.signalled is not None
    assert outcome.signalled < outcome.ended


# -- MaxRestartsExceededError and raise_ping_timeout --------------------------------


def test_max_restarts_exceeded_error_is_the_general_intensity_error() -> None:
    assert issubclass(otp.MaxRestartsExceededError, otp.IntensityExceededError)
    assert issubclass(otp.MaxRestartsExceededError, otp.OtpError)
    assert "maximum restart frequency" in (otp.MaxRestartsExceededError.__doc__ or "")


def test_max_restarts_exceeded_error_carries_the_facts(events: Events) -> None:
    sup = ofa(targets.crash, events.writer, max_restart_freq=2)
    try:
        sup.start()
    except otp.IntensityExceededError as exc:  # one except catches both
        error = exc
    else:
        pytest.fail("start() returned")
    assert type(error) is otp.MaxRestartsExceededError
    assert error.path == ("OFASupervisor",)
    assert error.reason == reasons.Shutdown()  # as OTP's supervisor exits when it gives up
    history = _reasons(error)
    assert [child for child, _ in history] == ["process"] * 3
    assert all(isinstance(r, reasons.Crashed) for _, r in history)
    assert all(r.error_type == "RuntimeError" for _, r in history)
    assert "gave up" in str(error) and "RuntimeError: crash" in str(error)


def test_raise_ping_timeout() -> None:
    with pytest.raises(multiprocessing.TimeoutError, match=r"^no pong$"):
        otp.raise_ping_timeout("no pong")


# -- a pool: its workers die with it -------------------------------------------------


def test_pool_workers_die_when_the_supervisor_is_stopped(events: Events) -> None:
    outcome = supervise(ofa(targets.pool, events.writer), events, running())
    assert outcome.error is None
    [(_, pid, _, workers)] = events.of("running")
    assert len(workers) == 2
    assert_all_gone([pid, *workers])


def test_pool_workers_die_when_the_restart_budget_is_exhausted(events: Events) -> None:
    """The pool's process crashes while its workers are busy: Pool.terminate()
    must be able to end them (they must not inherit the child's SIGTERM-as-Shutdown
    handler, which a busy worker would catch as its task's failure), and their
    SIGTERMs must not reach the supervisor."""
    sup = ofa(targets.pool, events.writer, "busy_crash", max_restart_freq=1)
    outcome = supervise(sup, events, deadline=DEFAULT_TIMEOUT)
    assert isinstance(outcome.error, otp.MaxRestartsExceededError), outcome
    runs = events.of("running")
    assert len(runs) == 2
    assert_all_gone([pid for _, pid, _, workers in runs for pid in (pid, *workers)])


def test_pool_workers_die_with_a_hung_pool_process(events: Events) -> None:
    """Only the pool's process freezes; its live workers go with it on restart (and
    the SIGTERM they get stops only them, not the supervisor)."""
    sup = ofa(targets.pool, events.writer, "freeze", max_restart_freq=1)
    outcome = supervise(sup, events)
    assert isinstance(outcome.error, otp.MaxRestartsExceededError), outcome
    runs = events.of("running")
    assert len(runs) == 2
    assert_all_gone([pid for _, pid, _, workers in runs for pid in (pid, *workers)])
