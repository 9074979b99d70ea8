"""Section 7: Ray. A Ray actor child under otp_py against Ray's own restarts, and a
process child in a Ray-hosted subtree against one in a local tree.

Everything runs on one local Ray (``ray.init(num_cpus=2)``, started here unless the
caller has one), so every process shares ``CLOCK_MONOTONIC`` and the stamps of
:mod:`benchmarks.targets` line up across them.

* **Ray actor child**: an actor whose run method stamps START, lives 50-150 ms,
  stamps EXIT and ends its worker process with ``os._exit(1)`` (an abrupt death:
  Ray's restarts only ever react to the actor dying, not to a method raising).

  - otp_py: ``ChildSpec.ray_actor`` (Ray's restarts off); *detection* is the exit
    to the tree's :class:`~otp_py.reports.ChildExited` report, *crash→restart* the
    exit to the new actor's START.
  - Ray's own: the same class made with ``max_restarts=-1`` (Ray restarts it for
    ever) and ``max_task_retries=0``, driven as a user would: a loop that calls
    ``run`` and waits on its result; *detection* is the exit to that wait raising
    ``RayActorError``; *crash→restart* the exit to START of the run called on the
    restarted actor (submitted at once; one that Ray fails while the actor is
    still restarting is submitted again, as a user's loop would).

* **Process child in a Ray-hosted subtree**: ``SupervisorSpec(backend="ray")``
  with one process child that crashes after 5-15 ms (``targets.crash_after``),
  restarted by the subtree's supervisor in the actor; against the same child in a
  local tree. *crash→restart*: exit to the new child's START; *detection* is the
  exit to the report reaching the parent's listener (the subtree's report travels
  the actor's message stream).

Rounds interleave the two sides of each comparison (``harness.interleave``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import otp_py as otp
from benchmarks import targets
from benchmarks.harness import Results, Series, interleave, log, scratch_file

__all__ = ["FULL", "QUICK", "Crasher", "Settings", "run"]

OUT_OF_THE_WAY = otp.SlidingWindow(max_restarts=10**9, period=1.0)
ACTOR_LIFE = (0.05, 0.15)  # seconds an actor lives before its worker dies
PROCESS_LIFE = (0.005, 0.015)


@dataclass(frozen=True)
class Settings:
    rounds: int
    actor_cycles: int  # measured crash cycles per run, actor children
    process_cycles: int  # per run, process children (subtree and local)
    warmup_cycles: int
    warmup_runs: bool = True


FULL = Settings(rounds=4, actor_cycles=10, process_cycles=25, warmup_cycles=2)
QUICK = Settings(rounds=1, actor_cycles=2, process_cycles=3, warmup_cycles=1,
                 warmup_runs=False)


class Crasher:
    """The benchmark's actor: its run is a short life ending in ``os._exit(1)``."""

    def __init__(self, log_path: str) -> None:
        self.log_path = log_path

    def run(self) -> None:
        targets.crash_after(self.log_path, *ACTOR_LIFE)


def _stamps(path: str) -> tuple[list[int], list[int]]:
    starts: list[int] = []
    exits: list[int] = []
    for kind, _, ns in targets.read_log(path):
        (starts if kind == targets.START else exits).append(ns)
    return starts, exits


def _cycles(starts: Sequence[int], exits: Sequence[int], seen: Sequence[int],
            warmup: int, cycles: int) -> dict[str, list[float]]:
    last = warmup + cycles
    if len(exits) < last or len(starts) < last + 1 or len(seen) < last:
        raise RuntimeError(f"incomplete run: {len(starts)} starts, {len(exits)} exits, "
                           f"{len(seen)} detections; wanted {last} cycles")
    out = {"restart": [(starts[i + 1] - exits[i]) / 1e6 for i in range(warmup, last)],
           "detect": [(seen[i] - exits[i]) / 1e6 for i in range(warmup, last)]}
    if min(out["restart"]) < 0 or min(out["detect"]) < 0:
        raise RuntimeError("stamps out of step")
    return out


def _tree_cycles(child: otp.ChildSpec | otp.SupervisorSpec, log_path: str,
                 total: int) -> tuple[list[int], list[int], list[int]]:
    """Run a tree until its crashing child has exited ``total`` times (and started
    once more); return the START and EXIT stamps and when each exit was reported."""
    seen: list[int] = []
    done = threading.Event()

    def listener(report: Any) -> None:
        if isinstance(report, otp.reports.ChildExited) and report.child_id == "crasher":
            seen.append(time.monotonic_ns())
            if len(seen) >= total:
                done.set()

    tree = otp.SupervisorSpec(id="bench", intensity=OUT_OF_THE_WAY, children=[child])
    with otp.start(tree, on_report=listener):
        if not done.wait(60 + 5 * total):
            raise RuntimeError(f"{len(seen)} of {total} exits in time")
        deadline = time.monotonic() + 30
        while len(_stamps(log_path)[0]) <= total and time.monotonic() < deadline:
            time.sleep(0.01)  # (the last restart's START, after the last report)
    starts, exits = _stamps(log_path)
    os.unlink(log_path)
    return starts, exits, seen


def otp_actor_cycles(total: int) -> tuple[list[int], list[int], list[int]]:
    log_path = scratch_file("ray-otp")
    child = otp.ChildSpec.ray_actor("crasher", Crasher, (log_path,),
                                    options={"num_cpus": 0})
    return _tree_cycles(child, log_path, total)


def ray_native_cycles(ray: Any, total: int) -> tuple[list[int], list[int], list[int]]:
    """Ray restarting the actor itself (``max_restarts=-1``), a loop calling run."""
    log_path = scratch_file("ray-native")
    made = ray.remote(max_restarts=-1, max_task_retries=0, num_cpus=0)(Crasher)
    actor = made.remote(log_path)
    seen: list[int] = []
    try:
        # (until the start after the last measured exit: a loop calling run, as a
        # user's would, the last call ending in one more crash)
        while len(seen) < total or len(_stamps(log_path)[0]) <= total:
            try:
                ray.get(actor.run.remote())
            except ray.exceptions.RayActorError:
                now = time.monotonic_ns()
                # (a call made while Ray restarts the actor may fail without running:
                # only a failure that follows a new exit is a detection)
                if len(_stamps(log_path)[1]) > len(seen):
                    seen.append(now)
    finally:
        ray.kill(actor, no_restart=True)
    starts, exits = _stamps(log_path)
    os.unlink(log_path)
    return starts, exits, seen


def process_cycles(hosted: bool, total: int) -> tuple[list[int], list[int], list[int]]:
    log_path = scratch_file("ray-sub" if hosted else "local-sub")
    child = otp.ChildSpec.process("crasher", targets.crash_after,
                                  args=(log_path, *PROCESS_LIFE))
    sub = otp.SupervisorSpec(id="sub", intensity=OUT_OF_THE_WAY, children=[child],
                             **({"backend": "ray", "options": {"num_cpus": 0}}
                                if hosted else {}))
    return _tree_cycles(sub, log_path, total)


def run(results: Results, settings: Settings) -> None:
    """Measure the Ray rows and add them (and the subtree target) to ``results``."""
    keys = {
        "detect/ray-actor/otp": "otp_py ray actor child",
        "detect/ray-actor/native": "Ray max_restarts=-1 (a loop awaiting run)",
        "restart/ray-actor/otp": "otp_py ray actor child",
        "restart/ray-actor/native": "Ray max_restarts=-1 (a loop awaiting run)",
        "restart/ray-subtree/otp": "process child, Ray-hosted subtree",
        "restart/ray-subtree/local": "process child, local subtree",
        "detect/ray-subtree/otp": "process child, Ray-hosted subtree",
        "detect/ray-subtree/local": "process child, local subtree",
    }
    series = {k: results.keep(k, Series(label, "ms")) for k, label in keys.items()}
    try:
        import ray
    except ImportError:
        for s in series.values():
            s.skipped = "Ray is not installed (pip install 'otp_py[ray]')"
        results.note("ray: not installed; section 7 skipped")
        _rows(results, series)
        return
    ours = not ray.is_initialized()
    if ours:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    try:
        warm = settings.warmup_cycles

        def runner(measure: Callable[[int], tuple[list[int], list[int], list[int]]],
                   cycles: int, suffix: str) -> Callable[[], dict[str, list[float]]]:
            def go() -> dict[str, list[float]]:
                out = _cycles(*measure(warm + cycles + 1), warm, cycles)
                return {f"{k}/{suffix}": v for k, v in out.items()}
            return go

        log("section 7: Ray actor crash cycles, otp_py and Ray's own restarts")
        interleave({
            "otp ray actor": runner(otp_actor_cycles, settings.actor_cycles,
                                    "ray-actor/otp"),
            "ray native": runner(lambda n: ray_native_cycles(ray, n),
                                 settings.actor_cycles, "ray-actor/native"),
        }, series, settings.rounds, warmup=settings.warmup_runs, label="ray actors")
        log("section 7: process children, Ray-hosted subtree and local subtree")
        interleave({
            "ray subtree": runner(lambda n: process_cycles(True, n),
                                  settings.process_cycles, "ray-subtree/otp"),
            "local subtree": runner(lambda n: process_cycles(False, n),
                                    settings.process_cycles, "ray-subtree/local"),
        }, series, settings.rounds, warmup=settings.warmup_runs, label="ray subtrees")
    finally:
        if ours:
            ray.shutdown()
    _rows(results, series)


def _rows(results: Results, series: dict[str, Series]) -> None:
    section = "7 ray"
    results.row(section, "crash detection: Ray actor (worker dies)",
                series["detect/ray-actor/otp"], series["detect/ray-actor/native"])
    results.row(section, "crash→restart: Ray actor (worker dies)",
                series["restart/ray-actor/otp"], series["restart/ray-actor/native"])
    results.row(section, "crash→restart: process child, Ray-hosted subtree",
                series["restart/ray-subtree/otp"], series["restart/ray-subtree/local"])
    results.row(section, "detection at the parent: process child, Ray-hosted subtree",
                series["detect/ray-subtree/otp"], series["detect/ray-subtree/local"])
    hosted, local = series["restart/ray-subtree/otp"], series["restart/ray-subtree/local"]
    text = "process child in a Ray-hosted subtree: crash→restart median ≤ 1.5x a local tree's"
    if hosted.n and local.n:
        ratio = hosted.median / local.median
        results.target(text, f"{hosted.median:.2f} ms vs {local.median:.2f} ms = "
                       f"{ratio:.2f}x", ratio <= 1.5)
    else:
        results.target(text, hosted.skipped or "not measured", None)
