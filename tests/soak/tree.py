"""The soak's tree: three levels, every backend, every strategy and restart type.

::

    root (one_for_one, 60 restarts in 10 s, loop watchdog)
    |-- r_proc, r_cmd, r_thread, r_task
    |-- mid_a (one_for_all, 4 in 5 s)
    |   |-- a_proc, a_cmd, a_thread, a_task
    |   `-- leaf_a (rest_for_one, 3 in 5 s): la_proc, la_cmd, la_thread, la_task
    |-- mid_b (rest_for_one, 4 in 5 s, transient)
    |   |-- b_proc, b_task
    |   `-- leaf_b (one_for_all, 3 in 5 s): lb_proc, lb_cmd, lb_thread
    `-- flaky (one_for_one, 100,000 in 1 s): f_cmd, whose program the injector
        removes now and then, so that every restart fails at once until it is back
"""

from __future__ import annotations

import sys

import otp_py as otp
from tests.soak import workers

HEARTBEAT = otp.Heartbeat(interval=0.2, timeout=2.0)
"""Longer than a hung task blocks the loop (workers.LOOP_BLOCK): a process child's
pongs are not read while the loop is blocked, and a stall longer than the timeout
makes healthy process children hung (see tests/faults/test_matrix.py,
test_a_stall_of_the_supervisors_loop_does_not_make_healthy_children_hung)."""


def worker(backend: str, child_id: str, restart: str) -> otp.ChildSpec:
    if backend == "process":
        return otp.ChildSpec.process(child_id, workers.process_worker, restart=restart,
                                     ready=True, heartbeat=HEARTBEAT, shutdown=0.5)
    if backend == "command":
        return otp.ChildSpec.command(child_id, workers.COMMAND, restart=restart, shutdown=1.0)
    if backend == "thread":
        return otp.ChildSpec.thread(child_id, workers.thread_worker, restart=restart,
                                    ready=True, heartbeat=HEARTBEAT, shutdown=1.0)
    return otp.ChildSpec.task(child_id, workers.task_worker, restart=restart, ready=True,
                              shutdown=1.0)


def soak_tree(flaky_program: str = sys.executable) -> otp.SupervisorSpec:
    """The tree; ``flaky_program`` is a link to the Python interpreter that the
    injector removes and puts back (f_cmd runs the command worker with it)."""
    leaf_a = otp.SupervisorSpec(
        id="leaf_a", strategy="rest_for_one", intensity=otp.SlidingWindow(3, 5),
        children=[worker("process", "la_proc", "permanent"),
                  worker("command", "la_cmd", "temporary"),
                  worker("thread", "la_thread", "transient"),
                  worker("asyncio", "la_task", "permanent")])
    mid_a = otp.SupervisorSpec(
        id="mid_a", strategy="one_for_all", intensity=otp.SlidingWindow(4, 5),
        children=[worker("process", "a_proc", "transient"),
                  worker("command", "a_cmd", "permanent"),
                  worker("thread", "a_thread", "temporary"),
                  worker("asyncio", "a_task", "permanent"),
                  leaf_a])
    leaf_b = otp.SupervisorSpec(
        id="leaf_b", strategy="one_for_all", intensity=otp.SlidingWindow(3, 5),
        children=[worker("process", "lb_proc", "temporary"),
                  worker("command", "lb_cmd", "permanent"),
                  worker("thread", "lb_thread", "permanent")])
    mid_b = otp.SupervisorSpec(
        id="mid_b", strategy="rest_for_one", intensity=otp.SlidingWindow(4, 5),
        restart="transient",
        children=[worker("process", "b_proc", "permanent"),
                  worker("asyncio", "b_task", "transient"),
                  leaf_b])
    flaky = otp.SupervisorSpec(
        id="flaky", strategy="one_for_one", intensity=otp.SlidingWindow(100_000, 1),
        children=[otp.ChildSpec.command("f_cmd", [flaky_program, *workers.COMMAND[1:]],
                                        shutdown=1.0)])
    return otp.SupervisorSpec(
        id="root", strategy="one_for_one", intensity=otp.SlidingWindow(60, 10),
        watchdog=otp.LoopWatchdog(interval=0.1, timeout=0.4, threshold=0.3),
        children=[worker("process", "r_proc", "permanent"),
                  worker("command", "r_cmd", "transient"),
                  worker("thread", "r_thread", "permanent"),
                  worker("asyncio", "r_task", "temporary"),
                  mid_a, mid_b, flaky])
