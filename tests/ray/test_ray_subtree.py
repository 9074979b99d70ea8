"""A subtree hosted in a Ray actor (``SupervisorSpec(backend="ray")``) on a real
local Ray: its children are supervised in the actor, their reports and the answers
to the parent handle's calls are forwarded, and losing the actor is one exit of the
subtree."""

from __future__ import annotations

import os
import signal
from typing import Any

import psutil

import otp_py as otp
from otp_py import reasons
from otp_py import reports as rp
from otp_py.backends.ray_actor import ActorDied
from tests.faults.helpers import wait_until
from tests.ray import actors
from tests.ray.conftest import no_actor_alive
from tests.reports import Recorder


def _tree() -> otp.SupervisorSpec:
    subtree = otp.SupervisorSpec(
        id="remote", backend="ray", options={"num_cpus": 0},
        intensity=otp.SlidingWindow(5, 30),
        children=[otp.ChildSpec.process("p", actors.sleeper),
                  otp.ChildSpec.thread("t", actors.waiter)])
    return otp.SupervisorSpec(id="root", intensity=otp.SlidingWindow(5, 30),
                              children=[subtree])


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _pid(sup: otp.Supervisor, child_id: str) -> int:
    [row] = [c for c in sup.which_children("remote") if c.id == child_id]
    assert row.pid is not None
    return row.pid


def test_a_ray_subtree_forwards_reports_and_calls_and_restarts_locally(
    local_ray: Any,
) -> None:
    recorder = Recorder()
    with otp.start(_tree(), on_report=recorder) as sup:
        # its start was reported from inside the actor, before it was up
        started = [(r.path, r.child_id) for r in recorder.of(rp.ChildStarted)]
        assert started == [(("root", "remote"), "p"), (("root", "remote"), "t"),
                           (("root",), "remote")]
        [host] = sup.which_children()
        assert host.is_supervisor and "node_id" in host.details
        first = _pid(sup, "p")
        os.kill(first, signal.SIGKILL)  # restarted by the subtree, in the actor
        [crash] = recorder.wait_kind(rp.ChildExited, "p")
        assert crash.path == ("root", "remote")
        assert crash.reason == reasons.Signaled(signal.SIGKILL)
        recorder.wait_kind(rp.ChildStarted, "p", count=2)
        assert _pid(sup, "p") != first
        assert recorder.of(rp.ChildExited, "remote") == []  # the subtree did not end
        # calls reach the subtree's supervisor
        sup.terminate_child("remote/t")
        assert {c.id: c.state for c in sup.which_children("remote")} == {
            "p": "running", "t": "stopped"}
        sup.restart_child("remote/t")
        assert {c.id: c.state for c in sup.which_children("remote")} == {
            "p": "running", "t": "running"}
        last = _pid(sup, "p")
    # the tree's stop stops the subtree in order, in its actor
    assert sup.wait(10) == reasons.Shutdown()
    order = [(r.path[-1], r.child_id) for r in recorder.of(rp.ChildTerminated)]
    assert order[-3:] == [("remote", "t"), ("remote", "p"), ("root", "remote")]
    wait_until(lambda: _gone(last), "the subtree's process child to end")
    no_actor_alive()


def test_kill_9_of_the_host_actor_is_one_exit_of_the_subtree(local_ray: Any) -> None:
    recorder = Recorder()
    with otp.start(_tree(), on_report=recorder) as sup:
        [host] = sup.which_children()
        pid = host.details["worker_pid"]
        child = _pid(sup, "p")
        os.kill(pid, signal.SIGKILL)
        [exited] = recorder.wait_kind(rp.ChildExited, "remote")
        assert isinstance(exited.reason, ActorDied)
        assert (exited.reason.pid, exited.reason.cause) == (pid, "worker process died")
        assert exited.outcome == "restart"
        recorder.wait_kind(rp.ChildStarted, "remote", count=2)
        wait_until(lambda: _gone(child), "the dead actor's process child to be killed")
        assert {c.id: c.state for c in sup.which_children("remote")} == {
            "p": "running", "t": "running"}
    no_actor_alive()
