"""How-to: supervising across machines with Ray. A Ray actor child and a whole
subtree hosted in a Ray actor, on a local Ray (on a cluster: ray.init(address=...))."""

import os
import signal
import threading

import otp_py as otp
import ray


class Indexer:
    """A Ray actor: its run method is its life; the stop token ends it."""

    def __init__(self, shard: int) -> None:
        self.shard = shard

    def run(self) -> None:
        while not otp.wait_for_stop(0.1):
            pass  # index a batch of the shard


def watch() -> None:
    """A thread child of the Ray-hosted subtree."""
    otp.wait_for_stop()


restarted = threading.Event()


def show(report: otp.reports.Report) -> None:
    print(report.describe(), flush=True)
    if isinstance(report, otp.reports.ChildStarted) and report.restarts == 1:
        restarted.set()


tree = otp.SupervisorSpec(
    id="root",
    intensity=otp.SlidingWindow(max_restarts=3, period=30.0),
    children=[
        # A Ray actor: the options are ray.remote's (num_cpus, resources,
        # scheduling_strategy, runtime_env...); Ray's own restarts stay off.
        otp.ChildSpec.ray_actor("indexer", Indexer, (7,), options={"num_cpus": 0},
                                ready=True, heartbeat=otp.Heartbeat(1.0, 5.0)),
        # A whole subtree in one Ray actor: its children run on that actor's node.
        otp.SupervisorSpec(
            id="edge", backend="ray", options={"num_cpus": 0},
            children=[otp.ChildSpec.command("cache", ["sleep", "3600"]),
                      otp.ChildSpec.thread("watcher", watch)]),
    ],
)

if __name__ == "__main__":
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with otp.start(tree, on_report=show) as sup:
            [indexer, edge] = sup.which_children()
            where = indexer.details
            print(f"indexer runs on node {where['node_id'][:8]}..., "
                  f"worker pid {where['worker_pid']}")
            print("edge's children:", [(c.id, c.state) for c in sup.which_children("edge")])
            os.kill(where["worker_pid"], signal.SIGKILL)  # the actor's worker dies
            restarted.wait(30)
            again = sup.which_children()[0].details
            print("a new actor:", again["actor_id"] != where["actor_id"])
        from ray._private import state

        alive = [a for a in state.actors().values() if a["State"] == "ALIVE"]
        print("actors left alive:", len(alive))
    finally:
        ray.shutdown()
