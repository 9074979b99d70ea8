"""Losing a machine: a Ray cluster of a head and two worker nodes
(``ray.cluster_utils.Cluster``, every node on this machine), Ray's health checks
shortened so that a node killed without warning is declared dead in about a second.
A ray child and a Ray-hosted subtree on the node removed are each seen to end once
(``node lost``, naming the node) and are healed on the node that remains."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

import otp_py as otp
from otp_py import reports as rp
from otp_py.backends.ray_actor import ActorDied
from tests.faults.helpers import wait_until
from tests.ray import actors
from tests.ray.conftest import FAST_HEALTH_CHECKS, actor_states, no_actor_alive, wait_dead
from tests.reports import Recorder

ON_A_WORKER = {"num_cpus": 0, "resources": {"worker": 0.01}}
"""Placed on one of the two worker nodes (the head has no ``worker`` resource)."""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    saved = {name: os.environ.get(name) for name in FAST_HEALTH_CHECKS}
    os.environ.update(FAST_HEALTH_CHECKS)
    made = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "include_dashboard": False})
    try:
        for _ in range(2):
            made.add_node(num_cpus=1, resources={"worker": 1})
        made.wait_for_nodes()
        ray.init(address=made.address, log_to_driver=False, configure_logging=False)
        yield made
    finally:
        ray.shutdown()
        made.shutdown()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _node_of(cluster: Any, node_id: str) -> Any:
    [node] = [n for n in cluster.worker_nodes if n.node_id == node_id]
    return node


def _running(sup: otp.Supervisor, child_id: str, *under: str) -> dict[str, Any]:
    def known() -> dict[str, Any] | None:
        rows = [c for c in sup.which_children(*under) if c.id == child_id]
        if rows and rows[0].state == "running" and "worker_pid" in rows[0].details:
            return dict(rows[0].details)
        return None
    return wait_until(known, f"{child_id} to run and say where")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_losing_the_node_of_a_ray_child_and_of_a_subtree_heals_both_elsewhere(
    cluster: Any,
) -> None:
    recorder = Recorder()
    subtree = otp.SupervisorSpec(
        id="remote", backend="ray", options=ON_A_WORKER,
        children=[otp.ChildSpec.process("p", actors.sleeper),
                  otp.ChildSpec.thread("t", actors.waiter)])
    spec = otp.SupervisorSpec(id="root", intensity=otp.SlidingWindow(5, 30), children=[
        otp.ChildSpec.ray_actor("a", actors.Forever, options=ON_A_WORKER, ready=True),
        subtree])
    with otp.start(spec, on_report=recorder) as sup:
        child = _running(sup, "a")
        host = _running(sup, "remote")
        [p] = [c for c in sup.which_children("remote") if c.id == "p"]
        assert p.pid is not None and psutil.pid_exists(p.pid)
        # Lose the node that holds the subtree (and the child, if it is there too).
        lost = host["node_id"]
        cluster.remove_node(_node_of(cluster, lost), allow_graceful=False)
        ended = recorder.wait_for(lambda r: isinstance(r, rp.ChildExited)
                                  and r.path == ("root",) and r.child_id == "remote")
        [exited] = ended
        assert isinstance(exited.reason, ActorDied), exited.reason
        assert exited.reason.cause == "node lost"
        assert exited.reason.node_id == lost
        assert exited.outcome == "restart"
        healed = _running(sup, "remote")
        assert healed["node_id"] not in (lost, "")
        assert {c.id: c.state for c in sup.which_children("remote")} == {
            "p": "running", "t": "running"}
        wait_until(lambda: _gone(p.pid), "the lost subtree's process child to die")
        if child["node_id"] == lost:
            [again] = recorder.wait_kind(rp.ChildExited, "a")
            assert isinstance(again.reason, ActorDied)
            assert again.reason.cause == "node lost"
        assert _running(sup, "a")["node_id"] != lost
        # one exit of the subtree: its own children's deaths are not the parent's
        assert len([r for r in recorder.of(rp.ChildExited, "remote")
                    if r.path == ("root",)]) == 1
        alive = [a for a, s in actor_states().items() if s == "ALIVE"]
        assert len(alive) == 2
    wait_dead(alive)
    no_actor_alive()
