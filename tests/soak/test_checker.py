"""The soak's invariant checker, checked itself (in the default run, in milliseconds).

It must accept every report sequence the real decision core produces (driven here
by :func:`otp_py.simulate`, on a fake clock, through hundreds of failures, start
failures and escalations), and it must object when a decision, a plan's order or an
escalation is not what OTP's rules require. A checker that never objects would make
the soak's "zero violations" worthless.
"""

from __future__ import annotations

import random
from typing import Any

import attrs
import pytest

import otp_py as otp
from otp_py import reports as rp
from tests.soak.checker import Checker
from tests.soak.tree import soak_tree


def check(spec: Any, reports: tuple[rp.Report, ...] | list[rp.Report]) -> Checker:
    checker = Checker(spec)
    for report in reports:
        checker(report)
    return checker


def _workers(spec: otp.SupervisorSpec, prefix: str = "") -> list[str]:
    paths = []
    for child in spec.children:
        path = f"{prefix}{child.id}"
        paths += _workers(child, path + "/") if child.is_supervisor else [path]
    return paths


@pytest.mark.parametrize("seed", range(5))
def test_it_accepts_what_the_decision_core_decides(seed: int) -> None:
    rng = random.Random(seed)
    spec = soak_tree()
    paths = _workers(spec)
    events: list[tuple[float, str, Any]] = []
    now = 0.0
    for _ in range(400):
        now += rng.expovariate(2.0)
        path = rng.choice(paths)
        if rng.random() < 0.1:  # a burst: several failures in a row
            events += [(now + i * 0.01, path, RuntimeError("burst")) for i in range(5)]
            continue
        reason = rng.choice([RuntimeError("boom"), "normal", "shutdown", "killed",
                             otp.StartFails(rng.randint(1, 3))])
        events.append((now, path, reason))
    sim = otp.simulate(spec, events, stop_at=now + 1.0)
    checker = check(spec, sim.reports)
    assert checker.messages == []
    assert checker.violations == 0
    assert checker.counts["restarts"] > 50
    assert sum(checker.escalations.values()) > 0
    if seed == 0:
        assert checker.counts["retries"] > 0  # start failures were retried


def _three(strategy: str, intensity: otp.SlidingWindow) -> otp.SupervisorSpec:
    return otp.SupervisorSpec(id="root", strategy=strategy, intensity=intensity, children=[
        otp.ChildSpec.thread("a", print), otp.ChildSpec.thread("b", print),
        otp.ChildSpec.thread("c", print, restart="temporary"),
        otp.ChildSpec.thread("d", print, restart="transient")])


CRASHES = [(1.0, "b", RuntimeError("x")), (2.0, "a", RuntimeError("x")),
           (3.0, "d", "normal")]


def test_it_objects_to_a_decision_the_restart_type_does_not_allow() -> None:
    spec = _three("one_for_one", otp.SlidingWindow(10, 5))
    reports = list(otp.simulate(spec, CRASHES, stop_at=5).reports)
    assert check(spec, reports).violations == 0
    index = next(i for i, r in enumerate(reports)
                 if isinstance(r, rp.ChildExited) and r.child_id == "d")
    reports[index] = attrs.evolve(reports[index], outcome="restart")
    assert check(spec, reports).violations > 0


def test_it_objects_to_restarts_beyond_the_intensity() -> None:
    allowed = _three("one_for_one", otp.SlidingWindow(10, 5))
    reports = otp.simulate(allowed, CRASHES, stop_at=5).reports
    checker = check(_three("one_for_one", otp.SlidingWindow(1, 5)), reports)
    assert any("decided 'restart', OTP requires give_up" in m for m in checker.messages), (
        checker.messages)


def test_it_objects_to_giving_up_too_early() -> None:
    strict = _three("one_for_one", otp.SlidingWindow(1, 5))
    reports = otp.simulate(strict, CRASHES, stop_at=5).reports
    assert any(isinstance(r, rp.IntensityExceeded) for r in reports)
    checker = check(_three("one_for_one", otp.SlidingWindow(10, 5)), reports)
    assert any("decided 'give_up', OTP requires restart" in m for m in checker.messages), (
        checker.messages)


def test_it_objects_to_a_plan_in_the_wrong_order() -> None:
    spec = _three("one_for_all", otp.SlidingWindow(10, 5))
    reports = list(otp.simulate(spec, CRASHES[:1], stop_at=5).reports)
    assert check(spec, reports).violations == 0
    stops = [i for i, r in enumerate(reports) if isinstance(r, rp.ChildTerminated)]
    first, second = stops[0], stops[1]
    reports[first], reports[second] = reports[second], reports[first]
    assert check(spec, reports).violations > 0


def test_it_objects_to_another_strategys_plan() -> None:
    one = _three("one_for_one", otp.SlidingWindow(10, 5))
    reports = otp.simulate(one, CRASHES, stop_at=5).reports
    for strategy in ("one_for_all", "rest_for_one"):
        assert check(_three(strategy, otp.SlidingWindow(10, 5)), reports).violations > 0


def test_it_objects_to_a_shutdown_out_of_order() -> None:
    spec = _three("one_for_one", otp.SlidingWindow(10, 5))
    reports = list(otp.simulate(spec, [], stop_at=1).reports)
    stops = [i for i, r in enumerate(reports) if isinstance(r, rp.ChildTerminated)]
    reports[stops[0]], reports[stops[-1]] = reports[stops[-1]], reports[stops[0]]
    assert check(spec, reports).violations > 0


def test_it_objects_to_a_give_up_without_an_escalation() -> None:
    spec = _three("one_for_one", otp.SlidingWindow(1, 5))
    reports = [r for r in otp.simulate(spec, CRASHES, stop_at=5).reports
               if not isinstance(r, rp.IntensityExceeded)]
    checker = check(spec, reports)
    assert any("had to give up" in m for m in checker.messages), checker.messages
