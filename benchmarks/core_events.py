"""Events per second through the pure decision core, for flat trees of many children.

The design asks that a restart under one_for_one or simple_one_for_one cost the same
whatever the number of children. This script checks it on the core alone (no
runtime, no processes): it drives :class:`~otp_py._core.supervisor.SupervisorCore`
with ``core.handle(event, now)`` on a fake clock and times each call.

Each measured *cycle* is two events: a :class:`~otp_py._core.events.ChildDown`
(a crash) for the current ref of a randomly chosen running child, then a
:class:`~otp_py._core.events.ChildUp` for the ref of the
:class:`~otp_py._core.events.StartChild` action the core answered with. Intensity
is kept out of the way with ``SlidingWindow(10**9, 1.0)``.

Building the tree (``Init`` and one ``ChildUp`` per static child, or one
``Call(StartChildRequest(...))`` and ``ChildUp`` per dynamic child) is setup and is
not measured. Every round is preceded by a full garbage collection; the collector
stays enabled while measuring, as it would in a real runtime (``--no-gc`` turns it
off while timing, to see how much of a large tree's extra cost is the collector's).

Run::

    python -m benchmarks.core_events           # the full run (about half a minute)
    python -m benchmarks.core_events --quick   # a smoke run (a few seconds)
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence

import attrs

from otp_py import ChildSpec, OneForOne, SimpleOneForOne, SlidingWindow, SupervisorSpec
from otp_py._core import events as ev
from otp_py._core.reasons import Crashed
from otp_py._core.supervisor import SupervisorCore

SIZES = (10, 1_000, 100_000)
STRATEGIES = ("one_for_one", "simple_one_for_one")
OUT_OF_THE_WAY = SlidingWindow(max_restarts=10**9, period=1.0)
CRASH = Crashed("RuntimeError", "benchmark crash")
TICK = 0.001  # fake seconds between two events


def _work(*args: object) -> None:  # never run: the benchmark starts nothing
    """The children's start function."""


@attrs.frozen
class Settings:
    """How much to measure."""

    rounds: int
    cycles: int  # crash -> restart cycles per round (two events each)
    warmup_cycles: int
    seed: int = 2024
    collect_garbage: bool = True  # leave the cyclic garbage collector on while timing


FULL = Settings(rounds=9, cycles=20_000, warmup_cycles=5_000)
QUICK = Settings(rounds=3, cycles=2_000, warmup_cycles=500)


@attrs.frozen
class Result:
    """The figures for one tree."""

    children: int
    strategy: str
    rates: tuple[float, ...]  # events per second, one per round
    p99_us: float  # 99th percentile of a single handle() call, all rounds pooled
    setup_s: float

    @property
    def median_rate(self) -> float:
        return statistics.median(self.rates)


class FakeClock:
    """Monotonic fake time: every read moves it on by ``step`` seconds."""

    def __init__(self, step: float = TICK) -> None:
        self.now = 0.0
        self.step = step

    def tick(self) -> float:
        self.now += self.step
        return self.now


class Tree:
    """A core with every child up, and which ref each child runs as now.

    ``refs[slot]`` is the current ref of child number ``slot``; picking a random
    running child is picking a random slot, O(1) whatever the size.
    """

    def __init__(self, core: SupervisorCore, clock: FakeClock) -> None:
        self.core = core
        self.clock = clock
        self.refs: list[int] = []

    def feed(self, event: ev.Event) -> list[ev.Action]:
        return self.core.handle(event, self.clock.tick())


def _only_start(actions: Sequence[ev.Action]) -> ev.StartChild:
    starts = [a for a in actions if isinstance(a, ev.StartChild)]
    if len(starts) != 1:
        raise AssertionError(f"expected one StartChild action, got {actions!r}")
    return starts[0]


def build_static(size: int) -> Tree:
    """A one_for_one supervisor of ``size`` static children, all up."""
    children = [ChildSpec(id=f"c{i}", start=_work, backend="thread") for i in range(size)]
    spec = SupervisorSpec(
        id="bench", strategy=OneForOne(), intensity=OUT_OF_THE_WAY, children=children
    )
    tree = Tree(SupervisorCore(spec), FakeClock())
    actions = tree.feed(ev.Init())
    # Init is serial: each ChildUp answers one StartChild and yields the next one.
    while not any(isinstance(a, ev.Initialized) for a in actions):
        start = _only_start(actions)
        tree.refs.append(start.ref)
        actions = tree.feed(ev.ChildUp(start.ref))
    if len(tree.refs) != size:
        raise AssertionError(f"started {len(tree.refs)} children, wanted {size}")
    return tree


def build_dynamic(size: int) -> Tree:
    """A simple_one_for_one supervisor with ``size`` children added by start_child."""
    template = ChildSpec(id="worker", start=_work, backend="thread")
    spec = SupervisorSpec(
        id="bench", strategy=SimpleOneForOne(), intensity=OUT_OF_THE_WAY, children=[template]
    )
    tree = Tree(SupervisorCore(spec), FakeClock())
    if not any(isinstance(a, ev.Initialized) for a in tree.feed(ev.Init())):
        raise AssertionError("a simple_one_for_one supervisor should be up at once")
    for i in range(size):
        start = _only_start(tree.feed(ev.Call(i, ev.StartChildRequest(extra_args=(i,)))))
        replies = [a for a in tree.feed(ev.ChildUp(start.ref)) if isinstance(a, ev.Reply)]
        if len(replies) != 1 or replies[0].error is not None:
            raise AssertionError(f"start_child failed: {replies!r}")
        tree.refs.append(start.ref)
    return tree


BUILDERS: dict[str, Callable[[int], Tree]] = {
    "one_for_one": build_static,
    "simple_one_for_one": build_dynamic,
}


def run_cycles(tree: Tree, cycles: int, rng: random.Random, timings: list[int] | None) -> None:
    """Crash a random child and bring its replacement up, ``cycles`` times.

    With ``timings``, append the duration of every ``handle()`` call in ns.
    """
    core, clock, refs = tree.core, tree.clock, tree.refs
    clock_ns = time.perf_counter_ns
    size = len(refs)
    for _ in range(cycles):
        slot = rng.randrange(size)
        down = ev.ChildDown(refs[slot], CRASH)
        t0 = clock_ns()
        actions = core.handle(down, clock.tick())
        t1 = clock_ns()
        start = _only_start(actions)
        up = ev.ChildUp(start.ref)
        t2 = clock_ns()
        core.handle(up, clock.tick())
        t3 = clock_ns()
        refs[slot] = start.ref
        if timings is not None:
            timings.append(t1 - t0)
            timings.append(t3 - t2)


def measure(strategy: str, sizes: Sequence[int], settings: Settings) -> list[Result]:
    """Build one tree per size (not timed), warm each up, then time the rounds.

    Rounds are interleaved across the sizes (10, 1,000, 100,000, then again in a
    rotated order) so that a slow spell of the machine does not land on one size
    only: the comparison between sizes is what this benchmark is for.
    """
    trees: list[Tree] = []
    setups: list[float] = []
    rngs: list[random.Random] = []
    for size in sizes:
        gc.collect()
        began = time.perf_counter()
        trees.append(BUILDERS[strategy](size))
        setups.append(time.perf_counter() - began)
        rngs.append(random.Random(settings.seed))
        run_cycles(trees[-1], settings.warmup_cycles, rngs[-1], None)
    rates: list[list[float]] = [[] for _ in sizes]
    pooled: list[list[int]] = [[] for _ in sizes]
    order = list(range(len(sizes)))
    for _ in range(settings.rounds):
        for i in order:
            gc.collect()
            timings: list[int] = []
            if not settings.collect_garbage:
                gc.disable()
            try:
                run_cycles(trees[i], settings.cycles, rngs[i], timings)
            finally:
                gc.enable()
            rates[i].append(len(timings) / (sum(timings) / 1e9))
            pooled[i].extend(timings)
        order = order[1:] + order[:1]
    results = []
    for i, size in enumerate(sizes):
        core = trees[i].core
        if core.state != "running":
            raise AssertionError(f"the supervisor gave up: {core.exit_reason!r}")
        results.append(
            Result(size, strategy, tuple(rates[i]), _percentile(pooled[i], 0.99) / 1000, setups[i])
        )
    return results


def _percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(len(ordered) * q))])


def render(results: Sequence[Result]) -> str:
    """The results as a plain-text table, with each figure's ratio to the smallest tree."""
    base = {r.strategy: r.median_rate for r in results if r.children == min(SIZES)}
    header = (
        f"{'children':>9}  {'strategy':<19} {'median events/s':>15} {'p99 µs/event':>13}"
        f" {'ratio to 10':>11} {'setup s':>8}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        ratio = r.median_rate / base[r.strategy] if r.strategy in base else float("nan")
        lines.append(
            f"{r.children:>9,}  {r.strategy:<19} {r.median_rate:>15,.0f} {r.p99_us:>13.1f}"
            f" {ratio:>11.2f} {r.setup_s:>8.1f}"
        )
    return "\n".join(lines)


def verdicts(results: Sequence[Result]) -> list[tuple[str, bool]]:
    """For each strategy: is the largest tree's rate within 2x of the smallest's?"""
    out = []
    for strategy in STRATEGIES:
        rows = sorted((r for r in results if r.strategy == strategy), key=lambda r: r.children)
        if len(rows) < 2:
            continue
        small, large = rows[0], rows[-1]
        slowdown = small.median_rate / large.median_rate
        ok = slowdown <= 2.0
        out.append(
            (
                f"{strategy}: {large.children:,} children run at {slowdown:.2f}x the per-event "
                f"cost of {small.children:,} -> {'within' if ok else 'NOT within'} 2x",
                ok,
            )
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.core_events",
        description="Events per second through the pure supervisor core.",
    )
    parser.add_argument("--quick", action="store_true", help="a few-seconds smoke run")
    parser.add_argument("--rounds", type=int, help="measured rounds per tree")
    parser.add_argument("--cycles", type=int, help="crash/restart cycles per round")
    parser.add_argument("--seed", type=int, default=2024, help="seed for picking children")
    parser.add_argument(
        "--no-gc",
        action="store_true",
        help="disable the cyclic garbage collector while timing (to see its share)",
    )
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    settings = attrs.evolve(
        settings,
        rounds=args.rounds or settings.rounds,
        cycles=args.cycles or settings.cycles,
        seed=args.seed,
        collect_garbage=not args.no_gc,
    )
    print(
        f"otp_py core events benchmark: Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.machine()}; "
        f"{settings.rounds} rounds x {settings.cycles:,} cycles (2 events each), "
        f"warm-up {settings.warmup_cycles:,} cycles; garbage collector "
        f"{'on' if settings.collect_garbage else 'OFF'} while timing"
    )
    results = []
    for strategy in STRATEGIES:
        results.extend(measure(strategy, SIZES, settings))
        print(f"  measured {strategy}", file=sys.stderr)
    print()
    print(render(results))
    print()
    checks = verdicts(results)
    for line, _ in checks:
        print(line)
    # A smoke run only checks that everything runs; its few rounds are too noisy to judge.
    return 0 if args.quick or all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
