"""Section 4: the time and memory it takes to start and to stop many children.

For each kind and size (1,000 and 10,000 asyncio children, 1,000 thread children,
100 process children from otp_py's fork server), otp_py runs them under one
supervisor (``flat``) and as a three-level tree (a root over supervisors over
supervisors over the children: 10 x 10 x 100 for 10,000, 10 x 10 x 10 for 1,000,
4 x 5 x 5 for 100). The raw floor starts the same children with no supervisor at
all: ``loop.create_task``, ``threading.Thread.start``, ``multiprocessing``
forkserver ``Process.start``.

* **start**: from the call that starts the tree (or the first child) until every
  child has run its first statement (it says so: a counter, or a datagram for
  processes);
* **stop**: from asking the tree to stop (or cancelling/setting/terminating the
  children) until all of them have ended; otp_py stops children one at a time in
  reverse start order, waiting for each (OTP's shutdown), where the floor stops
  them all at once;
* **memory**: growth of the supervising process's resident set between before the
  start and when every child is up, per child. For process children this is the
  supervisor's side only (each child is a process of its own).

Every sample runs in a fresh interpreter (see :mod:`benchmarks.worker`), warmed up
on a small tree of the same kind first; otp_py flat, otp_py tree and the floor are
interleaved sample after sample.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import Results, Series, interleave, log

__all__ = ["Settings", "run", "worker_command"]

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    rounds: int
    configs: tuple[tuple[str, int], ...]  # (kind, number of children)
    memory_processes: int = 1_000  # the supervisor's memory with this many process children
    memory_rounds: int = 3


FULL = Settings(
    rounds=5,
    configs=(("asyncio", 1_000), ("asyncio", 10_000), ("thread", 1_000), ("process", 100)),
)
QUICK = Settings(rounds=1, configs=(("asyncio", 200), ("thread", 20), ("process", 5)),
                 memory_processes=10, memory_rounds=1)

KIND_LABELS = {"asyncio": "asyncio", "thread": "thread", "process": "process (forkserver)"}
FLOOR_LABELS = {
    "asyncio": "bare loop.create_task",
    "thread": "bare threading.Thread",
    "process": "bare multiprocessing forkserver (stop: all at once)",
}
SERIAL_LABEL = "bare multiprocessing forkserver (stop: one by one, SIGTERM, wait, next)"
SOFO_LABEL = "otp_py, simple_one_for_one"


def worker_command(*args: object) -> list[str]:
    """The command line of a worker process. ``-c`` rather than ``-m``: a main
    module with no name or file is one multiprocessing does not re-import in each
    forkserver child, so the floor pays only for importing the target's module."""
    return [
        sys.executable, "-c",
        "import sys; from benchmarks.worker import main; sys.exit(main(sys.argv[1:]))",
        *(str(a) for a in args),
    ]


def _sample(who: str, kind: str, n: int, shape: str) -> dict[str, float]:
    done = subprocess.run(worker_command("scale", who, kind, n, shape), cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"scale worker {who} {kind} {n} {shape} failed:\n"
                           f"{done.stderr.strip()[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(results: Results, settings: Settings) -> None:
    """Measure start, stop and memory of every configuration against its floor."""
    section = "4 scale"
    for kind, n in settings.configs:
        series: dict[str, Series] = {}
        whos = {"otp-flat": "otp_py, one supervisor", "otp-tree": "otp_py, three-level tree",
                "floor": FLOOR_LABELS[kind]}
        if kind == "process":
            # OTP stops a static supervisor's children one at a time, last first,
            # waiting for each; a simple_one_for_one supervisor stops all at once.
            # Each is compared with the bare loop that does the same.
            whos["otp-sofo"] = SOFO_LABEL
            whos["floor-serial"] = SERIAL_LABEL
        for who, label in whos.items():
            series[f"{who}/start"] = Series(label, "ms")
            series[f"{who}/stop"] = Series(label, "ms")
            series[f"{who}/memory"] = Series(label, "KB/child")

        def runner(who: str, n: int = n, kind: str = kind) -> Callable[[], dict[str, list[float]]]:
            def go() -> dict[str, list[float]]:
                if who == "floor":
                    out = _sample("bare", kind, n, "flat")
                elif who == "floor-serial":
                    out = _sample("bare", kind, n, "serial")
                else:
                    out = _sample("otp", kind, n, who.removeprefix("otp-"))
                return {
                    f"{who}/start": [out["start_s"] * 1e3],
                    f"{who}/stop": [out["stop_s"] * 1e3],
                    f"{who}/memory": [out["bytes"] / n / 1024],
                }
            return go

        log(f"section 4: {n:,} {kind} children")
        interleave({who: runner(who) for who in whos}, series, settings.rounds, warmup=False,
                   label=f"scale {kind} {n:,}")
        for key, s in series.items():
            results.keep(f"scale/{kind}/{n}/{key}", s)
        what = f"{n:,} {KIND_LABELS[kind]}"
        for metric in ("start", "stop", "memory"):
            for shape in ("otp-flat", "otp-tree"):
                results.row(section, f"{what}: {metric}, {whos[shape].removeprefix('otp_py, ')}",
                            series[f"{shape}/{metric}"], series[f"floor/{metric}"])
                if metric == "stop" and kind == "process":
                    results.row(section, f"{what}: stop, {whos[shape].removeprefix('otp_py, ')}",
                                series[f"{shape}/stop"], series["floor-serial/stop"])
            if kind == "process":
                results.row(section, f"{what}: {metric}, simple_one_for_one",
                            series[f"otp-sofo/{metric}"], series[f"floor/{metric}"])
        if (kind, n) == ("asyncio", 10_000):
            for metric in ("start", "stop"):
                ours, floor = series[f"otp-flat/{metric}"], series[f"floor/{metric}"]
                ratio = ours.median / floor.median
                results.target(f"10,000 asyncio children {metric} in ≤ 2x the bare loop's time",
                               f"{ours.median:.0f} ms vs {floor.median:.0f} ms = {ratio:.2f}x "
                               f"(three-level tree: "
                               f"{series[f'otp-tree/{metric}'].median:.0f} ms)",
                               ratio <= 2.0)
            memory = series["otp-flat/memory"]
            results.target("10,000 asyncio children cost ≤ 4 KB each",
                           f"{memory.median:.2f} KB (bare {series['floor/memory'].median:.2f} KB;"
                           f" three-level tree {series['otp-tree/memory'].median:.2f} KB)",
                           memory.median <= 4.0)
        if kind == "process":
            ours, serial = series["otp-flat/stop"], series["floor-serial/stop"]
            ratio = ours.median / serial.median
            results.target(f"{n} process children, static supervisor: stop ≤ 1.3x a bare loop "
                           "stopping them one by one",
                           f"{ours.median:.0f} ms vs {serial.median:.0f} ms = {ratio:.2f}x",
                           ratio <= 1.3)
            ours, floor = series["otp-sofo/stop"], series["floor/stop"]
            ratio = ours.median / floor.median
            results.target(f"{n} process children, simple_one_for_one: stop ≤ 1.5x a bare "
                           "stop of all at once",
                           f"{ours.median:.0f} ms vs {floor.median:.0f} ms = {ratio:.2f}x",
                           ratio <= 1.5)
    _memory(results, settings)


def _memory(results: Results, settings: Settings) -> None:
    """The supervising process's memory with many idle process children: its growth
    per child (what supervising one more child costs) and its whole resident set."""
    n = settings.memory_processes
    whos = {"otp": "otp_py, one supervisor", "floor": "bare multiprocessing forkserver"}
    series: dict[str, Series] = {}
    for who, label in whos.items():
        series[f"{who}/memory"] = Series(label, "KB/child")
        series[f"{who}/rss"] = Series(label, "MB")

    def runner(who: str) -> Callable[[], dict[str, list[float]]]:
        def go() -> dict[str, list[float]]:
            out = _sample("otp" if who == "otp" else "bare", "process", n, "flat")
            return {f"{who}/memory": [out["bytes"] / n / 1024],
                    f"{who}/rss": [out["rss"] / 2**20]}
        return go

    log(f"section 4: supervisor memory with {n:,} process children")
    interleave({who: runner(who) for who in whos}, series, settings.memory_rounds,
               warmup=False, label=f"memory {n:,} processes")
    for key, s in series.items():
        results.keep(f"scale/memory/{n}/{key}", s)
    section = "4 scale"
    results.row(section, f"{n:,} idle process children: supervisor memory per child",
                series["otp/memory"], series["floor/memory"])
    results.row(section, f"{n:,} idle process children: supervisor RSS",
                series["otp/rss"], series["floor/rss"])
    memory = series["otp/memory"]
    results.target("supervisor memory per idle process child ≤ 2 KB",
                   f"{memory.median:.2f} KB with {n:,} children (bare multiprocessing "
                   f"{series['floor/memory'].median:.2f} KB); supervisor RSS "
                   f"{series['otp/rss'].median:.1f} MB", memory.median <= 2.0)
