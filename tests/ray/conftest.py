"""The Ray suite: a real local Ray, started once per module and shut down after it.

Every test here is skipped, with the reason, where Ray cannot be imported (the
``otp_py[ray]`` extra is not installed); nowhere else. Ray's own processes (its
raylet, workers kept warm in a pool) and threads are not the tree's, so these tests
are marked ``allow_leaks`` and check what is theirs to check: that no actor of the
tree is alive in the cluster afterwards (Ray's state, from its control store), and
that the worker processes that ran them are gone."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

try:
    import ray
except ImportError:  # pragma: no cover - the extra is not installed
    ray = None

NO_RAY = "Ray is not installed here (pip install 'otp_py[ray]')"

# Ray's driver replaces builtins.print with a tqdm-aware one the first time it prints
# a worker's death; the rest of the suite (which pickles builtins by name) must keep
# the real one.
os.environ.setdefault("RAY_TQDM_PATCH_PRINT", "0")

# The unhealthy-node verdict in seconds, not Ray's default of half a minute: a test
# that loses a node must see it quickly. (Read by the processes Ray starts.)
FAST_HEALTH_CHECKS = {
    "RAY_health_check_initial_delay_ms": "0",
    "RAY_health_check_period_ms": "200",
    "RAY_health_check_timeout_ms": "400",
    "RAY_health_check_failure_threshold": "3",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.allow_leaks)
            if ray is None:
                item.add_marker(pytest.mark.skip(reason=NO_RAY))


def _init_options() -> dict[str, Any]:
    return {"include_dashboard": False, "log_to_driver": False,
            "configure_logging": False}


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Any]:
    """A local Ray of 2 CPUs for the module's tests."""
    assert ray is not None
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, **_init_options())
    try:
        yield ray
    finally:
        ray.shutdown()


def actor_states() -> dict[str, str]:
    """Every actor the cluster knows of, by id: ``ALIVE``, ``DEAD``... (Ray's global
    state, read from its control store)."""
    from ray._private import state

    return {actor_id: info["State"] for actor_id, info in state.actors().items()}


def wait_dead(actor_ids: list[str], timeout: float = 20.0) -> None:
    """Wait until none of ``actor_ids`` is alive in the cluster."""
    deadline = time.monotonic() + timeout
    while True:
        states = actor_states()
        alive = [a for a in actor_ids if states.get(a, "DEAD") != "DEAD"]
        if not alive:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"actors still alive after {timeout} s: "
                        f"{[(a, states[a]) for a in alive]}")
        time.sleep(0.05)


def no_actor_alive(timeout: float = 20.0) -> None:
    """Wait until no actor of this test's cluster is alive."""
    wait_dead(list(actor_states()), timeout)
