"""Section 3: restarts per second of in-process children that crash on every start.

An asyncio-task child and a thread child each stamp ``CLOCK_MONOTONIC`` as their
first act, stamp it again and raise ``RuntimeError`` at once; the supervisor
restarts them, intensity out of the way (``SlidingWindow(10**9, 1)``). Generation
``total + 1`` stops crashing and ends the run. From the stamps:

* **throughput**: restarts per second between generation ``warmup`` and the last
  (one figure per run);
* **restart gap**: from one generation's raise to the next one's first stamp (one
  figure per restart).

Comparisons, interleaved with otp_py run after run:

* a bare asyncio loop that restarts the task from its done-callback, and a bare
  thread loop (``Thread(...).start(); join()``), each doing the least that restarts;
* Erlang/OTP's ``supervisor`` through ``escript`` (``otp_restarts.escript``), when
  installed: a one_for_one supervisor over a linked process that crashes on every
  start, in batches of 1,000 restarts (see the script for why).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import otp_py as otp
from benchmarks import external
from benchmarks.harness import Results, Series, interleave, log

__all__ = ["Settings", "run"]

OUT_OF_THE_WAY = otp.SlidingWindow(max_restarts=10**9, period=1.0)
ESCRIPT = Path(__file__).resolve().parent / "otp_restarts.escript"
ERLANG_BATCH = 1_000


@dataclass(frozen=True)
class Settings:
    rounds: int
    task_restarts: int
    thread_restarts: int
    warmup: int  # restarts dropped at the start of every run
    warmup_runs: bool = True  # one unmeasured run of everything before the rounds


FULL = Settings(rounds=7, task_restarts=10_000, thread_restarts=2_000, warmup=500)
QUICK = Settings(rounds=1, task_restarts=500, thread_restarts=100, warmup=50,
                 warmup_runs=False)


class Stamps:
    """Start and exit stamps of every generation of one child; generation
    ``last`` stops crashing and calls ``finish``."""

    def __init__(self, total: int) -> None:
        self.last = total + 1
        self.starts: list[int] = []
        self.exits: list[int] = []
        self.finish: Callable[[], None] = lambda: None

    def figures(self, warmup: int) -> tuple[float, list[float]]:
        """(restarts per second after ``warmup``, restart gaps in µs)."""
        starts, exits = self.starts, self.exits
        restarts = len(exits) - warmup
        rate = restarts / ((starts[len(exits)] - starts[warmup]) / 1e9)
        gaps = [(starts[i + 1] - exits[i]) / 1e3 for i in range(warmup, len(exits))]
        return rate, gaps


async def crash_task(stamps: Stamps) -> None:
    stamps.starts.append(time.monotonic_ns())
    if len(stamps.starts) >= stamps.last:
        stamps.finish()
        await asyncio.get_running_loop().create_future()  # until cancelled
    stamps.exits.append(time.monotonic_ns())
    raise RuntimeError("benchmark crash")


def crash_thread(stamps: Stamps) -> None:
    stamps.starts.append(time.monotonic_ns())
    if len(stamps.starts) >= stamps.last:
        stamps.finish()
        otp.wait_for_stop()
        return
    stamps.exits.append(time.monotonic_ns())
    raise RuntimeError("benchmark crash")


def _tree(spec: otp.ChildSpec) -> otp.SupervisorSpec:
    return otp.SupervisorSpec(id="bench", intensity=OUT_OF_THE_WAY, children=[spec])


def otp_tasks(total: int) -> Stamps:
    stamps = Stamps(total)

    async def main() -> None:
        finished = asyncio.get_running_loop().create_future()
        stamps.finish = lambda: finished.done() or finished.set_result(None)
        async with otp.supervise(_tree(otp.ChildSpec.task("crasher", crash_task,
                                                          args=(stamps,)))):
            await finished

    asyncio.run(main())
    return stamps


def bare_tasks(total: int) -> Stamps:
    stamps = Stamps(total)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        finished = loop.create_future()
        stamps.finish = lambda: finished.done() or finished.set_result(None)

        def restart(task: asyncio.Task[None]) -> None:
            if task.cancelled():
                return
            task.exception()
            loop.create_task(crash_task(stamps)).add_done_callback(restart)

        first = loop.create_task(crash_task(stamps))
        first.add_done_callback(restart)
        await finished
        for task in asyncio.all_tasks(loop):
            if task is not asyncio.current_task():
                task.cancel()

    asyncio.run(main())
    return stamps


def otp_threads(total: int) -> Stamps:
    stamps = Stamps(total)
    finished = threading.Event()
    stamps.finish = finished.set
    with otp.start(_tree(otp.ChildSpec.thread("crasher", crash_thread, args=(stamps,)))):
        if not finished.wait(120):
            raise RuntimeError("otp_py thread restarts did not finish in time")
    return stamps


def bare_threads(total: int) -> Stamps:
    stamps = Stamps(total)
    stamps.finish = lambda: None

    def body() -> None:
        with contextlib.suppress(RuntimeError):
            crash_thread(stamps)

    while len(stamps.starts) < stamps.last:
        thread = threading.Thread(target=body)
        thread.start()
        thread.join()
    return stamps


def erlang(escript: str, total: int) -> tuple[float, list[float]]:
    done = subprocess.run(
        [escript, str(ESCRIPT), str(total), str(ERLANG_BATCH)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    lines = done.stdout.split("\n")
    if done.returncode != 0 or len(lines) < 2:
        raise RuntimeError(f"escript failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    rate = float(lines[0])
    gaps = [int(g) / 1e3 for g in lines[1].split()]
    return rate, gaps


def run(results: Results, settings: Settings) -> None:
    """Measure restart throughput and gaps of task and thread children."""
    series: dict[str, Series] = {}
    names = {
        "task/otp": "otp_py asyncio task",
        "task/bare": "bare asyncio loop (done-callback)",
        "task/erlang": f"Erlang/OTP supervisor (escript, batches of {ERLANG_BATCH:,})",
        "thread/otp": "otp_py thread",
        "thread/bare": "bare thread loop (start; join)",
    }
    for key, label in names.items():
        series[f"rate/{key}"] = Series(label, "restarts/s", higher_is_better=True)
        series[f"gap/{key}"] = Series(label, "µs")

    def runner(key: str, make: Callable[[int], Stamps], total: int) -> Callable[[], Any]:
        def go() -> dict[str, list[float]]:
            rate, gaps = make(total).figures(settings.warmup)
            return {f"rate/{key}": [rate], f"gap/{key}": gaps}
        return go

    runners: dict[str, Callable[[], dict[str, list[float]] | None]] = {
        "otp task": runner("task/otp", otp_tasks, settings.task_restarts),
        "bare task": runner("task/bare", bare_tasks, settings.task_restarts),
        "otp thread": runner("thread/otp", otp_threads, settings.thread_restarts),
        "bare thread": runner("thread/bare", bare_threads, settings.thread_restarts),
    }
    escript, why = external.escript()
    if escript is None:
        series["rate/task/erlang"].skipped = series["gap/task/erlang"].skipped = why
        results.note(f"Erlang/OTP: {why}")
    else:
        total = max(ERLANG_BATCH, settings.task_restarts)

        def go_erlang() -> dict[str, list[float]] | None:
            try:
                rate, gaps = erlang(escript, total)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                series["rate/task/erlang"].skipped = series["gap/task/erlang"].skipped = (
                    f"escript could not run: {exc}")
                return None
            return {"rate/task/erlang": [rate], "gap/task/erlang": gaps}

        runners["erlang"] = go_erlang
    log("section 3: in-process restart throughput")
    interleave(runners, series, settings.rounds, warmup=settings.warmup_runs,
               label="restart throughput")
    for key, s in series.items():
        results.keep(key, s)

    section = "3 in-process restarts"
    results.row(section, "asyncio task: restarts/s", series["rate/task/otp"],
                series["rate/task/bare"])
    results.row(section, "asyncio task: restarts/s", series["rate/task/otp"],
                series["rate/task/erlang"])
    results.row(section, "asyncio task: restart gap", series["gap/task/otp"],
                series["gap/task/bare"])
    results.row(section, "asyncio task: restart gap", series["gap/task/otp"],
                series["gap/task/erlang"])
    results.row(section, "thread: restarts/s", series["rate/thread/otp"],
                series["rate/thread/bare"])
    results.row(section, "thread: restart gap", series["gap/thread/otp"],
                series["gap/thread/bare"])

    gap = series["gap/task/otp"]
    results.target("asyncio children: restart gap median ≤ 100 µs",
                   f"{gap.median:.1f} µs (bare asyncio {series['gap/task/bare'].median:.1f} µs)",
                   gap.median <= 100)
    ours, bare = series["rate/task/otp"], series["rate/task/bare"]
    share = ours.median / bare.median
    results.target("asyncio restart throughput ≥ 50 % of a bare asyncio loop",
                   f"{ours.median:,.0f}/s vs {bare.median:,.0f}/s = {share:.0%}",
                   share >= 0.5)
    anchor = series["rate/task/erlang"]
    if anchor.n:
        share = ours.median / anchor.median
        results.target("asyncio restart throughput ≥ 1.0x Erlang/OTP's supervisor",
                       f"{ours.median:,.0f}/s vs {anchor.median:,.0f}/s = {share:.2f}x",
                       share >= 1.0)
    else:
        results.target("asyncio restart throughput ≥ 1.0x Erlang/OTP's supervisor",
                       anchor.skipped or "not measured", None)
