"""Every argument value Celery 0.4's ``OFASupervisor`` accepted, with its meaning.

Celery 0.4 (``celery/supervisor.py``) validated nothing: a value was accepted when its
``start()`` ran with it. Its loop checked, every ``check_interval`` seconds,
``restart_frame > max_restart_freq_time`` and then ``restarts_in_frame >=
max_restart_freq``; it built a ``threading.Timer(ping_timeout, ...)`` that it never
started; it gave a stopping process ``join(timeout=join_timeout)``; and it slept
``check_interval`` between checks (``time.sleep`` refused a negative one). Its test
module pinned ``max_restart_freq=0, max_restart_freq_time=0``: a dead process, or one
whose ping times out, makes ``start()`` raise ``MaxRestartsExceededError``.

One test per documented value and per accepted-but-undocumented one: first what it
translates to, then what the translation does on a fake clock (``otp_py.simulate``),
then Celery's own two ``start()`` cases for real.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

import otp_py as otp
from otp_py import reasons
from otp_py.compat.ofa import MIN_CHECK_INTERVAL, YEAR, NoRestartLimit
from tests.compat import targets
from tests.compat.harness import Events, assert_all_gone, supervise

NAN = math.nan
INF = math.inf


def spec(**params: Any) -> otp.SupervisorSpec:
    return otp.OFASupervisor(targets.forever, **params).to_spec()


def child(**params: Any) -> otp.ChildSpec:
    [only] = spec(**params).children
    assert isinstance(only, otp.ChildSpec)
    return only


def crashes(spec: otp.SupervisorSpec, *times: float) -> otp.Simulation:
    return otp.simulate(spec, [(t, "process", "crash") for t in times])


# -- max_restart_freq and max_restart_freq_time: what each value means --------------

WINDOWS = [
    # (max_restart_freq, max_restart_freq_time, check_interval) -> intensity
    pytest.param(3, 10, 2, otp.SlidingWindow(3, 10), id="documented-defaults"),
    pytest.param(1, 0.5, 2, otp.SlidingWindow(1, 0.5), id="fractional-time"),
    pytest.param(0, 10, 2, otp.SlidingWindow(0, 10), id="freq-zero"),
    pytest.param(-2, 10, 2, otp.SlidingWindow(0, 10), id="freq-negative-is-zero"),
    pytest.param(None, 10, 2, otp.SlidingWindow(0, 10), id="freq-none-is-zero"),
    pytest.param(2.5, 10, 2, otp.SlidingWindow(3, 10), id="freq-fraction-rounds-up"),
    pytest.param(0.5, 10, 2, otp.SlidingWindow(1, 10), id="freq-below-one-is-one"),
    pytest.param(3, 0, 2, otp.SlidingWindow(3, 2), id="time-zero-is-one-check"),
    pytest.param(3, -5, 1.5, otp.SlidingWindow(3, 1.5), id="time-negative-is-one-check"),
    pytest.param(3, None, 2, otp.SlidingWindow(3, 2), id="time-none-is-one-check"),
    pytest.param(0, 0, 2, otp.SlidingWindow(0, 2), id="celery-test-zero-zero"),
    pytest.param(3, 2 * YEAR, 2, otp.SlidingWindow(3, YEAR), id="time-over-a-year"),
    pytest.param(3, INF, 2, NoRestartLimit(), id="time-infinite-never"),
    pytest.param(3, NAN, 2, NoRestartLimit(), id="time-nan-never"),
    pytest.param(INF, 10, 2, NoRestartLimit(), id="freq-infinite-never"),
    pytest.param(NAN, 10, 2, NoRestartLimit(), id="freq-nan-never"),
    pytest.param(3, 10, 0, NoRestartLimit(), id="check-zero-frame-never-advances"),
    pytest.param(0, 0, 0, NoRestartLimit(), id="check-zero-even-freq-zero"),
    pytest.param(3, -1, 0, NoRestartLimit(), id="check-zero-time-negative-zero-window"),
    pytest.param(0, -1, 0, otp.SlidingWindow(0, 1.0), id="check-zero-freq-zero-gives-up"),
]


@pytest.mark.parametrize(("freq", "time", "check", "expected"), WINDOWS)
def test_restart_frequency_value_is_accepted_with_celerys_meaning(
    freq: Any, time: Any, check: Any, expected: otp.IntensityPolicy
) -> None:
    sup = otp.OFASupervisor(
        targets.forever,
        max_restart_freq=freq,
        max_restart_freq_time=time,
        check_interval=check,
    )
    assert sup.to_spec().intensity == expected
    # the attributes keep what was given, as Celery's did
    assert sup.max_restart_freq is freq and sup.max_restart_freq_time is time


def test_zero_freq_gives_up_at_the_first_exit_without_a_restart() -> None:
    sim = crashes(spec(max_restart_freq=0, max_restart_freq_time=0), 1.0)
    assert sim.gave_up_at() == 1.0 and sim.restart_times("process") == []


def test_zero_time_counts_restarts_per_check_interval() -> None:
    """max_restart_freq=1 per check (2 s): crashes 2.5 s apart are fine, 1.5 s apart
    are not."""
    params = {"max_restart_freq": 1, "max_restart_freq_time": 0, "check_interval": 2}
    assert crashes(spec(**params), 1.0, 3.5, 6.0, 8.5).gave_up_at() is None
    assert crashes(spec(**params), 1.0, 2.5).gave_up_at() == 2.5


def test_fractional_freq_allows_the_rounded_up_number_of_restarts() -> None:
    sim = crashes(spec(max_restart_freq=2.5), 1.0, 1.1, 1.2, 1.3)
    assert sim.restart_times("process") == [1.0, 1.1, 1.2] and sim.gave_up_at() == 1.3


@pytest.mark.parametrize(
    "params",
    [{"check_interval": 0}, {"max_restart_freq_time": INF}, {"max_restart_freq": NAN}],
    ids=["check-zero", "time-infinite", "freq-nan"],
)
def test_values_whose_check_is_never_true_never_give_up(params: dict[str, Any]) -> None:
    times = [0.01 * n for n in range(1, 101)]
    sim = crashes(spec(**params), *times)
    assert sim.gave_up_at() is None and len(sim.restart_times("process")) == 100
    assert spec(**params).intensity.describe() == "no restart limit"


# -- ping_timeout and check_interval ------------------------------------------------


@pytest.mark.parametrize(
    ("check", "ping", "expected"),
    [
        pytest.param(2, 30, otp.Heartbeat(2, 30), id="documented-defaults"),
        pytest.param(0.5, 0.1, otp.Heartbeat(0.5, 0.5), id="ping-under-check-is-the-check"),
        pytest.param(0.5, 0.7, otp.Heartbeat(0.5, 0.7), id="fractions"),
        pytest.param(0.0002, 30, otp.Heartbeat(0.001, 30), id="check-under-1ms-is-1ms"),
        pytest.param(0, 30, otp.Heartbeat(MIN_CHECK_INTERVAL, 30), id="check-zero-polls"),
        pytest.param(2 * YEAR, 30, otp.Heartbeat(YEAR, YEAR), id="check-over-a-year"),
        pytest.param(2, 0, None, id="ping-zero-no-pings"),
        pytest.param(2, -1, None, id="ping-negative-no-pings"),
        pytest.param(2, None, None, id="ping-none-no-pings"),
        pytest.param(2, INF, None, id="ping-infinite-no-pings"),
        pytest.param(2, NAN, None, id="ping-nan-no-pings"),
        pytest.param(2, 2 * YEAR, None, id="ping-over-a-year-no-pings"),
    ],
)
def test_ping_value_is_accepted_with_celerys_meaning(
    check: Any, ping: Any, expected: otp.Heartbeat | None
) -> None:
    assert child(check_interval=check, ping_timeout=ping).heartbeat == expected


@pytest.mark.parametrize("check", [-1, -0.5, NAN, "2"])
def test_check_interval_that_celerys_sleep_refused_is_refused(check: Any) -> None:
    with pytest.raises(otp.SpecError) as info:
        otp.OFASupervisor(targets.forever, check_interval=check)
    assert info.value.field == "interval"


def test_a_negative_check_interval_is_refused_even_without_pings() -> None:
    with pytest.raises(otp.SpecError):
        otp.OFASupervisor(targets.forever, check_interval=-1, ping_timeout=0)


# -- join_timeout --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("join", "expected"),
    [
        pytest.param(2, 2, id="documented-default"),
        pytest.param(0.25, 0.25, id="fraction"),
        pytest.param(0, 0, id="zero"),
        pytest.param(-3, 0, id="negative-does-not-wait"),
        pytest.param(None, otp.INFINITY, id="none-waits-for-ever"),
        pytest.param(2 * YEAR, otp.INFINITY, id="over-a-year"),
        pytest.param(INF, otp.INFINITY, id="infinite"),
    ],
)
def test_join_timeout_value_is_accepted_with_celerys_meaning(join: Any, expected: Any) -> None:
    assert child(join_timeout=join).shutdown == expected


# -- args and kwargs: Celery's ``args or []`` ----------------------------------------


@pytest.mark.parametrize("empty", [None, (), []])
def test_empty_args_and_kwargs_read_back_as_celerys_defaults(empty: Any) -> None:
    sup = otp.OFASupervisor(targets.forever, args=empty, kwargs=empty or None)
    assert sup.args == [] and sup.kwargs == {}
    assert child().args == () and child().kwargs == {}


# -- Celery's own two start() cases, for real ------------------------------------------


@pytest.fixture
def events() -> Iterator[Events]:
    channel = Events()
    yield channel
    channel.close()


def test_celery_test_start_dead_process_with_zero_zero_raises(events: Events) -> None:
    sup = otp.OFASupervisor(
        targets.crash, args=[events.writer], max_restart_freq=0, max_restart_freq_time=0
    )
    outcome = supervise(sup, events)
    assert isinstance(outcome.error, otp.MaxRestartsExceededError)
    assert len(events.of("running")) == 1
    assert_all_gone(events.pids())


def test_celery_test_start_is_alive_timeout_with_zero_zero_raises(events: Events) -> None:
    sup = otp.OFASupervisor(
        targets.freeze,
        args=[events.writer],
        max_restart_freq=0,
        max_restart_freq_time=0,
        ping_timeout=0.5,
        check_interval=0.2,
        join_timeout=0.2,
    )
    outcome = supervise(sup, events)
    assert isinstance(outcome.error, otp.MaxRestartsExceededError)
    [(_, record)] = outcome.error.history
    assert isinstance(record.reason, reasons.Hung)
    assert_all_gone(events.pids())
