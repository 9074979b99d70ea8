"""Ray actor children (``ChildSpec.ray_actor``) on a real local Ray: the fault matrix
rows that apply to an actor, readiness, stop and kill, which_children, and that no
actor of a tree survives it."""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Any

import psutil
import pytest

import otp_py as otp
from otp_py import reasons
from otp_py import reports as rp
from otp_py.backends.ray_actor import ActorDied, RayNotAvailableError
from tests.faults.helpers import RESTARTS, decision, wait_until
from tests.ray import actors
from tests.ray.conftest import actor_states, no_actor_alive, wait_dead
from tests.reports import Recorder

NO_CPU = {"num_cpus": 0}  # (actors need no CPU slot of the 2: many fit at once)


def tree(*children: Any, **fields: Any) -> otp.SupervisorSpec:
    fields.setdefault("intensity", otp.SlidingWindow(10, 10))
    return otp.SupervisorSpec(id="root", children=list(children), **fields)


def ray_child(child_id: str, cls: type, *args: Any, **fields: Any) -> otp.ChildSpec:
    options = fields.pop("options", NO_CPU)
    return otp.ChildSpec.ray_actor(child_id, cls, args, options=options, **fields)


def details(sup: otp.Supervisor, child_id: str) -> dict[str, Any]:
    """The running child's details, once it has said where it runs."""
    def known() -> dict[str, Any] | None:
        [info] = [c for c in sup.which_children() if c.id == child_id]
        return dict(info.details) if "worker_pid" in info.details else None
    return wait_until(known, f"{child_id} to say where it runs")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_ray_child_without_ray_initialised_fails_to_start_saying_so() -> None:
    """(First in the module: before the module's Ray is started.)"""
    import ray

    assert not ray.is_initialized()
    recorder = Recorder()
    with pytest.raises(otp.SupervisorExitError) as caught:
        otp.start(tree(ray_child("w", actors.Forever)), on_report=recorder)
    [failed] = recorder.of(rp.ChildStartFailed, "w")
    assert failed.reason.error_type == RayNotAvailableError.__name__
    assert "ray.init()" in failed.reason.message
    assert "'w'" in str(caught.value)
    assert not ray.is_initialized()  # otp_py never starts a cluster of its own


def test_a_ray_child_runs_reports_where_and_leaves_no_actor(local_ray: Any) -> None:
    with otp.start(tree(ray_child("w", actors.Forever, 1, 2, ready=True))) as sup:
        where = details(sup, "w")
        [info] = sup.which_children()
        assert info.state == "running"
        assert info.pid is None  # not a process of this machine's tree
        assert where["node_id"] == local_ray.get_runtime_context().get_node_id()
        assert psutil.pid_exists(where["worker_pid"])
        assert actor_states()[where["actor_id"]] == "ALIVE"
    wait_dead([where["actor_id"]])
    wait_until(lambda: gone(where["worker_pid"]), "the actor's worker process to end")


def test_kill_9_of_the_workers_process_is_reported_with_node_and_pid_and_healed(
    local_ray: Any,
) -> None:
    recorder = Recorder()
    with otp.start(tree(ray_child("w", actors.Forever, ready=True)),
                   on_report=recorder) as sup:
        first = details(sup, "w")
        os.kill(first["worker_pid"], signal.SIGKILL)
        [exited] = recorder.wait_kind(rp.ChildExited, "w")
        reason = exited.reason
        assert isinstance(reason, ActorDied), reason
        assert reason.cause == "worker process died"
        assert (reason.pid, reason.node_id, reason.actor_id) == (
            first["worker_pid"], first["node_id"], first["actor_id"])
        assert f"pid {first['worker_pid']}" in str(reason)
        assert exited.outcome == "restart"
        recorder.wait_kind(rp.ChildStarted, "w", count=2)
        second = details(sup, "w")
        assert second["actor_id"] != first["actor_id"]  # a new actor, made by otp_py
        assert actor_states()[second["actor_id"]] == "ALIVE"
        assert actor_states()[first["actor_id"]] == "DEAD"
    wait_dead([first["actor_id"], second["actor_id"]])


# ----------------------------------------------------- the fault matrix, Ray's rows

ENDINGS = {
    "return": reasons.Normal(),
    "raise": reasons.Crashed("ValueError", "boom"),
}


@pytest.mark.parametrize("how", list(ENDINGS))
def test_an_actor_ending_its_run_is_reported_and_its_restart_type_decides(
    local_ray: Any, how: str, tmp_path: Any,
) -> None:
    expected = ENDINGS[how]
    recorder = Recorder()
    spec = tree(*(ray_child(r, actors.Once, str(tmp_path / r), how, restart=r)
                  for r in RESTARTS))
    with otp.start(spec, on_report=recorder) as sup:
        exits = {r.child_id: r for r in recorder.wait_kind(rp.ChildExited, count=3)}
        for restart in RESTARTS:
            assert exits[restart].reason == expected, restart
            assert exits[restart].outcome == decision(restart, expected), restart
            if how == "raise":  # the user's own exception, with its traceback
                assert exits[restart].reason.error_types[0] == "builtins.ValueError"
                assert "raise ValueError" in exits[restart].reason.traceback
        for restart in RESTARTS:
            if decision(restart, expected) == "restart":
                recorder.wait_kind(rp.ChildStarted, restart, count=2)
        states = {c.id: c.state for c in sup.which_children()}
        assert states == {r: "running" if decision(r, expected) == "restart" else "stopped"
                          for r in RESTARTS if decision(r, expected) != "remove"}
    assert sup.wait(10) == reasons.Shutdown()
    no_actor_alive()


def test_kill_9_matrix_row(local_ray: Any) -> None:
    recorder = Recorder()
    spec = tree(*(ray_child(r, actors.Forever, restart=r, ready=True) for r in RESTARTS))
    with otp.start(spec, on_report=recorder) as sup:
        pids = {r: details(sup, r)["worker_pid"] for r in RESTARTS}
        for pid in pids.values():
            os.kill(pid, signal.SIGKILL)
        exits = {r.child_id: r for r in recorder.wait_kind(rp.ChildExited, count=3)}
        for restart in RESTARTS:
            reason = exits[restart].reason
            assert isinstance(reason, ActorDied) and reason.pid == pids[restart]
            assert exits[restart].outcome == decision(restart, reason)
        recorder.wait_kind(rp.ChildStarted, "permanent", count=2)
        recorder.wait_kind(rp.ChildStarted, "transient", count=2)
    no_actor_alive()


def test_an_actor_that_stops_answering_pings_is_hung_killed_and_restarted(
    local_ray: Any,
) -> None:
    """A worker frozen (SIGSTOP: it answers nothing, as one stuck in C code holding
    the GIL) misses its ping: hung, stopped, then ray.kill after its shutdown."""
    recorder = Recorder()
    beat = otp.Heartbeat(interval=0.2, timeout=0.6)
    spec = tree(ray_child("w", actors.Forever, ready=True, heartbeat=beat, shutdown=0.3))
    with otp.start(spec, on_report=recorder) as sup:
        first = details(sup, "w")
        pid = first["worker_pid"]
        os.kill(pid, signal.SIGSTOP)
        try:
            [exited] = recorder.wait_kind(rp.ChildExited, "w")
            wait_until(lambda: gone(pid), "ray.kill to end the frozen worker")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        assert isinstance(exited.reason, reasons.Hung), exited.reason
        assert exited.outcome == "restart"
        recorder.wait_kind(rp.ChildStarted, "w", count=2)
        assert details(sup, "w")["actor_id"] != first["actor_id"]
    no_actor_alive()


def test_an_actor_failing_in_init_fails_the_start_with_its_exception(
    local_ray: Any,
) -> None:
    recorder = Recorder()
    spec = tree(ray_child("w", actors.FailsInit, ready=True))
    with pytest.raises(otp.SupervisorExitError) as caught:
        otp.start(spec, on_report=recorder)
    final = caught.value.reason
    assert isinstance(final.term, reasons.FailedToStartChild)
    assert final.term.reason == reasons.Crashed("RuntimeError", "cannot start")
    assert "cannot start" in (final.term.reason.traceback or "")
    no_actor_alive()


def test_an_actor_never_ready_times_out_and_is_killed(local_ray: Any) -> None:
    recorder = Recorder()
    spec = tree(ray_child("w", actors.NeverReady, ready=True, ready_on="notify",
                          start_timeout=0.5, shutdown=0.2))
    with pytest.raises(otp.SupervisorExitError) as caught:
        otp.start(spec, on_report=recorder)
    final = caught.value.reason
    assert final.term.reason == reasons.StartTimeout(0.5)
    no_actor_alive()


def test_an_actor_calling_notify_ready_from_run_is_up_then(local_ray: Any) -> None:
    recorder = Recorder()
    spec = tree(ray_child("w", actors.NotifiesLater, ready=True, ready_on="notify"),
                ray_child("after", actors.Forever))
    with otp.start(spec, on_report=recorder) as sup:
        assert [c.state for c in sup.which_children()] == ["running", "running"]
        started = [r.child_id for r in recorder.of(rp.ChildStarted)]
        assert started == ["w", "after"]
    no_actor_alive()


# ------------------------------------------------------------------- stop and kill

def test_a_graceful_stop_lets_the_run_method_return(local_ray: Any) -> None:
    recorder = Recorder()
    with otp.start(tree(ray_child("w", actors.Forever, ready=True)),
                   on_report=recorder) as sup:
        where = details(sup, "w")
        sup.terminate_child("w")
        [done] = recorder.wait_kind(rp.ChildTerminated, "w")
        assert done.reason == reasons.Shutdown()
        wait_dead([where["actor_id"]])


def test_an_actor_ignoring_its_stop_is_killed_after_its_shutdown(local_ray: Any) -> None:
    recorder = Recorder()
    with otp.start(tree(ray_child("w", actors.Deaf, ready=True, shutdown=0.3)),
                   on_report=recorder) as sup:
        where = details(sup, "w")
        sup.terminate_child("w")
        [done] = recorder.wait_kind(rp.ChildTerminated, "w")
        assert done.reason == reasons.Killed()
        wait_dead([where["actor_id"]])


def test_brutal_kill_kills_at_once(local_ray: Any) -> None:
    recorder = Recorder()
    spec = tree(ray_child("w", actors.Forever, ready=True, shutdown=otp.BRUTAL_KILL))
    with otp.start(spec, on_report=recorder) as sup:
        where = details(sup, "w")
        sup.terminate_child("w")
        [done] = recorder.wait_kind(rp.ChildTerminated, "w")
        assert done.reason == reasons.Killed()
        wait_dead([where["actor_id"]])


def test_ray_restart_options_are_refused_where_the_spec_is_written() -> None:
    with pytest.raises(otp.SpecError, match="max_restarts") as caught:
        otp.ChildSpec.ray_actor("w", actors.Forever, options={"max_restarts": 3})
    assert caught.value.child_id == "w"
    with pytest.raises(otp.SpecError, match="detached"):
        otp.ChildSpec.ray_actor("w", actors.Forever, options={"lifetime": "detached"})
    with pytest.raises(otp.SpecError, match="run"):
        otp.ChildSpec.ray_actor("w", actors.Forever, run="nope")
    with pytest.raises(otp.SpecError, match="ray_actor"):
        otp.ChildSpec(id="w", start=actors.Forever, backend="ray")


def test_status_and_the_live_view_show_a_ray_childs_node(local_ray: Any) -> None:
    from otp_py.cli import render, snapshot

    with otp.start(tree(ray_child("w", actors.Forever, ready=True))) as sup:
        where = details(sup, "w")
        [info] = sup.which_children()
        node = snapshot.child_fields(info, "root/w", snapshot.Recorder())
    assert node["node"] == where["node_id"]
    assert node["target"] == "ray actor tests.ray.actors:Forever.run"
    assert node["pid"] is None  # (no process of this machine's to signal)
    row = render.cells({**node, "depth": 0}, 0.0)
    assert f"{where['worker_pid']}@{where['node_id'][:8]}" in row
    assert any(where["node_id"] in line for line in render.child_detail(node, 0.0))
    no_actor_alive()
