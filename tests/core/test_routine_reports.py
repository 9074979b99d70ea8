"""``SupervisorCore.routine_reports``: with it off (the runtime's setting while nobody
listens to reports nor logs them), the core leaves out exactly the reports of
routine starts, exits and stops, and decides exactly as with it on.

The same script of events is fed to two cores; their actions, reports aside, must
be the same, and the reports of the quiet one must be the loud one's minus
ChildStarted, ChildExited and ChildTerminated."""

from __future__ import annotations

from typing import Any

import pytest

import otp_py as otp
from otp_py import reports as rp
from otp_py._core import events as ev
from otp_py._core.supervisor import SupervisorCore
from otp_py.reasons import Crashed, Normal, Shutdown

ROUTINE = (rp.ChildStarted, rp.ChildExited, rp.ChildTerminated)


async def idle() -> None:  # never run: the core starts nothing itself
    pass


def _spec(strategy: str) -> otp.SupervisorSpec:
    children = [otp.ChildSpec(id=cid, start=idle, backend="asyncio") for cid in "abc"]
    if strategy == "simple_one_for_one":
        children = children[:1]
    return otp.SupervisorSpec(id="root", strategy=strategy,
                              intensity=otp.SlidingWindow(2, 10.0), children=children)


def _drive(strategy: str, routine: bool) -> tuple[list[Any], list[rp.Report]]:
    """Start, crash a child three times (the third gives up), answering every action
    at once; return the non-report actions (as comparable tuples) and the reports."""
    core = SupervisorCore(_spec(strategy))
    core.routine_reports = routine
    running: dict[str, int] = {}
    actions: list[Any] = []
    reports: list[rp.Report] = []
    now = 0.0

    def feed(event: ev.Event) -> None:
        queue = [event]
        while queue:
            for action in core.handle(queue.pop(0), now):
                if isinstance(action, ev.Emit):
                    reports.append(action.report)
                    continue
                actions.append((type(action).__name__,
                                getattr(action, "ref", None), getattr(action, "child_id", None)))
                if isinstance(action, ev.StartChild):
                    running[action.child_id] = action.ref
                    queue.append(ev.ChildUp(action.ref))
                elif isinstance(action, ev.StopChild | ev.KillChild):
                    for cid, ref in list(running.items()):
                        if ref == action.ref:
                            del running[cid]
                            queue.append(ev.ChildDown(ref, Shutdown()))

    feed(ev.Init())
    if strategy == "simple_one_for_one":
        for request_id in (1, 2):
            feed(ev.Call(request_id, ev.StartChildRequest()))
    for crash in range(3):
        now += 1.0
        victim = sorted(running)[0]
        reason = Normal() if crash == 0 else Crashed("RuntimeError", "boom")
        feed(ev.ChildDown(running.pop(victim), reason))
    return actions, reports


@pytest.mark.parametrize("strategy", ["one_for_one", "one_for_all", "rest_for_one",
                                      "simple_one_for_one"])
def test_quiet_core_decides_the_same_and_leaves_out_only_routine_reports(strategy: str) -> None:
    loud_actions, loud_reports = _drive(strategy, routine=True)
    quiet_actions, quiet_reports = _drive(strategy, routine=False)
    assert quiet_actions == loud_actions
    assert any(isinstance(r, ROUTINE) for r in loud_reports)
    assert quiet_reports == [r for r in loud_reports if not isinstance(r, ROUTINE)]
    assert any(isinstance(r, rp.IntensityExceeded) for r in quiet_reports)
