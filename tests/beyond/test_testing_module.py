"""otp_py.testing: the Hypothesis strategies users test their trees with, an optional
module that needs the ``testing`` extra, used here the way a user would."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import otp_py as otp
from otp_py import reports as rp
from otp_py import testing
from tests import strategies as ts

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=60, check=False)


# ------------------------------------------------------------------ packaging

def test_without_hypothesis_the_import_fails_with_one_clear_error_naming_the_extra() -> None:
    result = _python(
        "import sys\n"
        "sys.modules['hypothesis'] = None  # as if it were not installed\n"
        "try:\n"
        "    import otp_py.testing\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc.__cause__, exc.__suppress_context__)\n"
        "    print(exc)\n"
    )
    assert result.returncode == 0, result.stderr
    kind, message = result.stdout.splitlines()
    assert kind == "ImportError None True"  # one error, not a chain of two
    assert "otp_py.testing needs Hypothesis" in message
    assert "pip install 'otp_py[testing]'" in message


def test_otp_py_itself_needs_neither_this_module_nor_hypothesis() -> None:
    result = _python(
        "import sys, otp_py\n"
        "print('otp_py.testing' in sys.modules, 'hypothesis' in sys.modules)\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]
    assert "testing" not in otp.__all__


def test_the_testing_extra_brings_hypothesis() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "hypothesis>=6.80" in project["optional-dependencies"]["testing"]
    assert not any(dep.startswith("hypothesis") for dep in project["dependencies"])


def test_the_suite_strategies_are_the_public_ones() -> None:
    for name in ("flat_specs", "nested_specs", "failures", "start_failure_maps", "stop_times",
                 "worker_paths", "children_by_path", "supervisors_by_path", "workers", "idle",
                 "GRID", "PERIODS", "REASONS", "STATIC_STRATEGIES"):
        assert getattr(ts, name) is getattr(testing, name), name


# ------------------------------------------------------ what the strategies draw

@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_flat_specs_are_one_supervisor_over_idle_workers(data: st.DataObject) -> None:
    spec = data.draw(testing.flat_specs(strategies=(*testing.STATIC_STRATEGIES,
                                                    "simple_one_for_one"),
                                        intensity=testing.intensity_policies()))
    assert spec.id == "root"
    ids = [c.id for c in spec.children]
    assert ids == list("abcdefgh"[: len(ids)]) and 1 <= len(ids) <= 5
    assert all(isinstance(c, otp.ChildSpec) and c.start is testing.idle for c in spec.children)
    if spec.strategy.dynamic:
        assert len(ids) == 1
    assert isinstance(spec.intensity, otp.SlidingWindow | otp.Combined)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_nested_specs_nest_and_scripts_name_their_workers(data: st.DataObject) -> None:
    spec = data.draw(testing.nested_specs(max_depth=3))
    sups = testing.supervisors_by_path(spec)
    assert len(sups) >= 2 and max(len(path) for path in sups) <= 3
    paths = list(testing.worker_paths(spec))
    assert len(paths) == len(set(paths))
    for path in paths:
        *above, child = path.split("/")
        assert child in testing.children_by_path(spec)[("root", *above)]
    script = data.draw(testing.failures(spec, max_events=20))
    assert len(script) <= 20
    times = [t for t, _, _ in script]
    assert times == sorted(times)
    assert all((t / testing.GRID).is_integer() for t in times)
    assert all(path in paths for _, path, _ in script)
    assert all(reason in testing.REASONS for _, _, reason in script)
    stop = data.draw(testing.stop_times(script))
    assert stop is None or stop >= max(times, default=0.0)
    fails = data.draw(testing.start_failure_maps(spec))
    assert set(fails) <= set(paths)
    assert all(attempts and attempts <= set(range(1, 7)) for attempts in fails.values())
    otp.simulate(spec, script, stop_at=stop, start_failures=fails)  # all of it is usable


def test_the_strategies_refuse_impossible_shapes() -> None:
    with pytest.raises(ValueError, match="max_restarts"):
        testing.sliding_windows(max_restarts=-1)
    with pytest.raises(ValueError, match="initials <= maximum"):
        testing.exponential_backoffs(initials=(5.0,), maximum=1.0)
    with pytest.raises(ValueError, match="max_children"):
        testing.flat_specs(max_children=9)
    with pytest.raises(ValueError, match="max_depth"):
        testing.nested_specs(max_depth=0)
    with pytest.raises(ValueError, match="period"):
        testing.max_restarts_within(otp.simulate(ts_tree()), -1.0)


def ts_tree() -> otp.SupervisorSpec:
    return otp.SupervisorSpec(id="root", children=[otp.ChildSpec.task("a", testing.idle)])


def test_max_restarts_within_counts_charged_restarts_in_otps_window() -> None:
    spec = otp.SupervisorSpec(
        id="root", intensity=otp.SlidingWindow(10, 100),
        decider=otp.Decider({otp.reasons.Exited: otp.Decision.IGNORE}),
        children=[otp.ChildSpec.task("a", testing.idle), otp.ChildSpec.task("b", testing.idle)])
    sim = otp.simulate(spec, [(0.0, "a", "boom"), (1.0, "b", "boom"), (2.0, "a", "boom"),
                              (2.0, "b", otp.reasons.Exited(1)), (3.0, "a", "boom")])
    assert testing.max_restarts_within(sim, 2.0) == 3   # 1, 2, 3: the edge counts
    assert testing.max_restarts_within(sim, 1.5) == 2
    assert testing.max_restarts_within(sim, 100.0) == 4  # the ignored exit is free
    assert testing.max_restarts_within(sim, 100.0, supervisor="root") == 4
    assert testing.max_restarts_within(sim, 100.0, supervisor="nowhere") == 0


# ------------------------------------- a user testing their own intensity choice

USER_POLICY = otp.SlidingWindow(3, 30.0) & otp.ExponentialBackoff(
    initial=0.5, maximum=8.0, jitter=0.2)
"""What a user might choose: at most 3 restarts in 30 s, backing off from 0.5 s to 8 s
with +/-20 % jitter."""


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), rng=st.randoms(use_true_random=False))
def test_a_user_policy_keeps_its_promises_under_any_failure_sequence(
    data: st.DataObject, rng: Any
) -> None:
    spec = data.draw(testing.flat_specs(intensity=st.just(USER_POLICY)), label="spec")
    script = data.draw(testing.failures(spec, max_events=30, reasons=st.one_of(
        testing.exit_reasons(), testing.abnormal_reasons())), label="script")
    sim = otp.simulate(spec, script, random=rng.random)

    # 1. never more than 3 restarts within 30 s
    assert testing.max_restarts_within(sim, 30.0) <= 3
    # 2. every restart waits within the backoff's bounds (jitter included)
    exits = sim.exits()
    delays = [e.delay for e in exits if e.delay is not None]
    assert all(0.5 * 0.8 <= d <= 8.0 for d in delays), delays
    # 3. it gives up only on a 4th restart within 30 s, and then stops everything
    gave_up = sim.gave_up_at()
    charged = [e.time for e in exits if e.outcome in ("restart", "give_up")]
    if gave_up is None:
        assert sim.exit_reason is None
    else:
        assert sum(1 for t in charged if gave_up - 30.0 <= t <= gave_up) == 4
        assert sim.exit_reason == otp.reasons.Shutdown()
        assert not [e for e in exits if e.time > gave_up]
    # 4. a restart happens exactly its delay after the exit (one_for_one), unless the
    #    supervisor gave up first
    if spec.strategy.name == "one_for_one":
        for e in exits:
            if e.delay is not None and (gave_up is None or e.time + e.delay <= gave_up):
                assert e.time + e.delay in sim.restart_times(e.path), e


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_exits_and_delays_agree_with_the_reports(data: st.DataObject) -> None:
    spec = data.draw(testing.nested_specs(intensity=testing.intensity_policies()))
    script = data.draw(testing.failures(spec))
    sim = otp.simulate(spec, script, start_failures=data.draw(testing.start_failure_maps(spec)))
    exits = sim.exits()
    reported = sim.of_type(rp.ChildExited)
    assert [(e.time, e.path.rpartition("/")[2], e.reason) for e in exits] == [
        (r.time, r.child_id, r.reason) for r in reported]
    for e, r in zip(exits, reported, strict=True):
        assert e.outcome == r.outcome
        assert (e.delay is not None) == (e.outcome in ("restart", "ignore"))
    surrenders = {(r.time, r.where, r.child_id) for r in sim.of_type(rp.IntensityExceeded)}
    scheduled = {(r.time, r.where, r.child_id, r.delay) for r in sim.of_type(rp.RestartScheduled)}
    for e, r in zip(exits, reported, strict=True):
        if e.outcome == "give_up":
            assert (e.time, r.where, e.child_id) in surrenders
        elif e.delay:
            assert (e.time, r.where, e.child_id, e.delay) in scheduled
