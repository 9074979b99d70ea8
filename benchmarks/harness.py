"""What every benchmark shares: series of samples, their statistics, interleaved
rounds, the result table's rows, and where the benchmarks keep their cache.

Honesty on a noisy machine comes from four habits, all implemented here or used by
every section:

* **warm-up**: every runner is called once before the measured rounds and its
  samples are thrown away (imports, fork servers, caches);
* **interleaving**: the measured rounds alternate otp_py and its comparisons
  (A, B, C, A, B, C... with the order rotated every round), so a slow spell of the
  machine falls on all of them alike;
* **medians and p99**, never means; ``n`` is always shown;
* **raw samples kept**: every series keeps its samples round by round, and the
  entry point writes them all to ``samples.json`` next to the table.
"""

from __future__ import annotations

import logging
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CACHE",
    "Results",
    "Row",
    "Series",
    "Target",
    "interleave",
    "log",
    "percentile",
    "quiet_logging",
]

CACHE = Path(__file__).resolve().parent / ".cache"
"""Compiled programs, the tools' virtualenv and scratch files (git-ignored)."""


def log(message: str) -> None:
    """Progress, on stderr (stdout carries the table)."""
    print(message, file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (``q`` in [0, 1]) of ``values``."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


@dataclass
class Series:
    """The samples of one measured thing, round by round.

    ``higher_is_better`` marks rates (restarts/s, events/s): their tail is the low
    end, so :attr:`tail` is then the 1st percentile instead of the 99th.
    ``skipped`` says why there are no samples (the table prints the reason)."""

    label: str
    unit: str
    rounds: list[list[float]] = field(default_factory=list)
    higher_is_better: bool = False
    skipped: str | None = None
    note: str = ""

    def add(self, samples: Sequence[float]) -> None:
        self.rounds.append([float(s) for s in samples])

    @property
    def samples(self) -> list[float]:
        return [s for r in self.rounds for s in r]

    @property
    def n(self) -> int:
        return sum(len(r) for r in self.rounds)

    @property
    def median(self) -> float:
        samples = self.samples
        return statistics.median(samples) if samples else math.nan

    @property
    def tail(self) -> float:
        """The 99th percentile toward the bad side (the 1st for rates)."""
        return percentile(self.samples, 0.01 if self.higher_is_better else 0.99)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Series:
        return cls(label=data["label"], unit=data["unit"], rounds=data["rounds"],
                   higher_is_better=data["higher_is_better"], skipped=data["skipped"],
                   note=data.get("note", ""))

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "skipped": self.skipped,
            "note": self.note,
            "median": None if math.isnan(self.median) else self.median,
            "tail": None if math.isnan(self.tail) else self.tail,
            "n": self.n,
            # Four significant digits: far below the noise of any of these figures.
            "rounds": [[float(f"{s:.4g}") for s in r] for r in self.rounds],
        }


@dataclass
class Row:
    """One line of the table: an otp_py series and what it is compared with."""

    section: str
    what: str
    ours: Series
    theirs: Series | None = None

    @property
    def ratio(self) -> float:
        """otp_py's median over the comparison's (nan when either is missing)."""
        if self.theirs is None or self.theirs.skipped or not self.theirs.n or not self.ours.n:
            return math.nan
        if self.theirs.median == 0:
            return math.inf if self.ours.median else 1.0
        return self.ours.median / self.theirs.median


@dataclass
class Target:
    """One of the issue's targets: what it asks, the figure measured, and whether
    the figure meets it (None when it could not be measured)."""

    text: str
    figure: str
    met: bool | None


@dataclass
class Results:
    """Everything one run produced."""

    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    series: dict[str, Series] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def keep(self, key: str, series: Series) -> Series:
        """Register ``series`` under ``key`` (for samples.json and the plots)."""
        self.series[key] = series
        return series

    def key_of(self, series: Series) -> str:
        """The key ``series`` was kept under."""
        for key, kept in self.series.items():
            if kept is series:
                return key
        raise KeyError(series.label)

    def row(self, section: str, what: str, ours: Series, theirs: Series | None = None) -> Row:
        row = Row(section, what, ours, theirs)
        self.rows.append(row)
        return row

    def note(self, text: str) -> None:
        log(f"  note: {text}")
        self.notes.append(text)

    def target(self, text: str, figure: str, met: bool | None) -> None:
        self.targets.append(Target(text, figure, met))


def interleave(
    runners: dict[str, Callable[[], dict[str, Sequence[float]] | None]],
    series: dict[str, Series],
    rounds: int,
    *,
    warmup: bool = True,
    label: str = "",
) -> None:
    """Run every runner once to warm up (its samples dropped), then ``rounds`` times
    each, interleaved in a rotated order (A, B, C; B, C, A; ...).

    A runner returns its samples by series key (one run may feed several series:
    a crash cycle gives a detection time and a restart time) or None when it has
    to skip (it records why in its series); a skipped runner is not called again.
    """
    order = list(runners)
    if warmup:
        for name in list(order):
            log(f"  {label} warm-up: {name}")
            if runners[name]() is None:
                order.remove(name)
    for r in range(rounds):
        if not order:
            return
        log(f"  {label} round {r + 1}/{rounds}")
        shift = r % len(order)
        for name in order[shift:] + order[:shift]:
            produced = runners[name]()
            if produced is None:
                order.remove(name)
                continue
            for key, samples in produced.items():
                series[key].add(samples)


def scratch_file(name: str) -> str:
    """A fresh, empty file under the cache (logs children append to)."""
    directory = CACHE / "scratch"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}-{os.getpid()}-{time.monotonic_ns()}"
    path.write_bytes(b"")
    return str(path)


def quiet_logging() -> None:
    """Configure logging as an application would, with nowhere for otp_py's records
    to go: ``otp.start`` and ``otp.run`` then leave out their default report
    printer (which, for an application that configured nothing, writes every start
    and exit to stderr), and the tree builds no log record. The floors log nothing
    either; what is measured is supervision, not a terminal."""
    logging.getLogger().addHandler(logging.NullHandler())
