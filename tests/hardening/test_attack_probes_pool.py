"""Attack: plain-function ``Call`` probes that never return, on a few children,
exhaust the thread pool that every plain-function probe of the tree shares.

Before the fix the pool had four threads in all: four stuck functions held them
for good, and every other child's probe waited in the queue behind them, failed
at its timeout and got a perfectly healthy child reported hung and restarted.
A thread whose call has outlived its attempt is now written off and replaced
(at most one such call per probe, so threads stay bounded by the probes)."""

from __future__ import annotations

import threading
import time

import otp_py as otp
from otp_py import reports as rp
from tests.reports import Recorder

RELEASE = threading.Event()


def _never_returns() -> bool:
    RELEASE.wait(30)
    return True


def _healthy() -> bool:
    return True


def _probed(child_id: str, func: object, threshold: int) -> otp.ChildSpec:
    async def forever() -> None:
        await __import__("asyncio").sleep(3600)

    return otp.ChildSpec(id=child_id, start=forever, backend="asyncio",
                         liveness=otp.probes.Call(func, interval=0.05, timeout=0.2,  # type: ignore[arg-type]
                                                  failure_threshold=threshold))


def test_stuck_function_probes_do_not_starve_a_healthy_childs_probe() -> None:
    RELEASE.clear()
    recorder = Recorder()
    children = [_probed(f"stuck{i}", _never_returns, 1000) for i in range(6)]
    children.append(_probed("healthy", _healthy, 3))
    spec = otp.SupervisorSpec(id="root", children=children,
                              intensity=otp.SlidingWindow(max_restarts=50, period=10))
    try:
        with otp.start(spec, on_report=recorder) as sup:
            deadline = time.monotonic() + 2.0  # 40 intervals, 10 timeouts
            while time.monotonic() < deadline:
                assert recorder.of(rp.ChildExited, "healthy") == [], \
                    "the healthy child was reported hung"
                time.sleep(0.02)
            [info] = [c for c in sup.which_children() if c.id == "healthy"]
            assert info.details["probes"]["liveness"]["verdict"] is None
    finally:
        RELEASE.set()
    stuck = [t for t in threading.enumerate() if t.name == "otp_py-probe-call"]
    for thread in stuck:
        thread.join(5)


def test_a_stuck_function_across_restarts_holds_one_thread_not_one_per_restart() -> None:
    """The child restarts each time its stuck probe times out; each start's probe
    finds the last call still out (failing at once) rather than taking a thread."""
    RELEASE.clear()
    recorder = Recorder()
    spec = otp.SupervisorSpec(id="root", children=[_probed("stuck", _never_returns, 1)],
                              intensity=otp.SlidingWindow(max_restarts=1000, period=10))
    try:
        with otp.start(spec, on_report=recorder):
            deadline = time.monotonic() + 20
            while len(recorder.of(rp.ChildExited, "stuck")) < 8:
                assert time.monotonic() < deadline, "the stuck child was not restarted"
                time.sleep(0.02)
            threads = [t for t in threading.enumerate() if t.name == "otp_py-probe-call"]
            assert len(threads) <= 2, [t.name for t in threads]
    finally:
        RELEASE.set()
    for thread in [t for t in threading.enumerate() if t.name == "otp_py-probe-call"]:
        thread.join(5)
