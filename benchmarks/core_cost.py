"""Section 6: what one decision of the pure core costs, at 10, 1,000 and 100,000
children.

This is :mod:`benchmarks.core_events` (read its docstring for the method: crash →
restart cycles fed to ``SupervisorCore.handle`` on a fake clock, the rounds of the
three sizes interleaved), reported in the common table. The comparison is the
same core with 10 children: a restart must cost the same whatever the number of
children (the design's O(1) promise for one_for_one and simple_one_for_one).
"""

from __future__ import annotations

from benchmarks import core_events
from benchmarks.harness import Results, Series, log

__all__ = ["run"]

FULL = core_events.Settings(rounds=7, cycles=20_000, warmup_cycles=5_000)
QUICK = core_events.Settings(rounds=1, cycles=1_000, warmup_cycles=200)
FULL_SIZES = core_events.SIZES
QUICK_SIZES = (10, 100, 1_000)  # a smoke run does not build a 100,000-child tree


def run(results: Results, settings: core_events.Settings,
        sizes: tuple[int, ...] = FULL_SIZES) -> None:
    section = "6 core decisions"
    for strategy in core_events.STRATEGIES:
        log(f"section 6: core events/s, {strategy}")
        measured = core_events.measure(strategy, sizes, settings)
        by_size: dict[int, Series] = {}
        for result in measured:
            s = Series(f"{strategy}, {result.children:,} children", "events/s",
                       higher_is_better=True)
            s.add(result.rates)
            s.note = f"p99 of one handle() call: {result.p99_us:.1f} µs"
            results.keep(f"core/{strategy}/{result.children}", s)
            by_size[result.children] = s
        smallest = by_size[min(by_size)]
        for size, s in sorted(by_size.items()):
            results.row(section, f"{strategy}: {size:,} children", s,
                        None if s is smallest else smallest)
        largest = by_size[max(by_size)]
        slowdown = smallest.median / largest.median
        results.target(f"core ({strategy}): {max(by_size):,} children within 2x the per-event "
                       f"cost of {min(by_size):,}",
                       f"{largest.median:,.0f} vs {smallest.median:,.0f} events/s "
                       f"= {slowdown:.2f}x slower", slowdown <= 2.0)
