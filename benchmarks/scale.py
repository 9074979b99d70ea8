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


FULL = Settings(
    rounds=5,
    configs=(("asyncio", 1_000), ("asyncio", 10_000), ("thread", 1_000), ("process", 100)),
)
QUICK = Settings(rounds=1, configs=(("asyncio", 200), ("thread", 20), ("process", 5)))

KIND_LABELS = {"asyncio": "asyncio", "thread": "thread", "process": "process (forkserver)"}
FLOOR_LABELS = {
    "asyncio": "bare loop.create_task",
    "thread": "bare threading.Thread",
    "process": "bare multiprocessing forkserver",
}


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
        for who, label in whos.items():
            series[f"{who}/start"] = Series(label, "ms")
            series[f"{who}/stop"] = Series(label, "ms")
            series[f"{who}/memory"] = Series(label, "KB/child")

        def runner(who: str, n: int = n, kind: str = kind) -> Callable[[], dict[str, list[float]]]:
            def go() -> dict[str, list[float]]:
                if who == "floor":
                    out = _sample("bare", kind, n, "flat")
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
        if (kind, n) == ("asyncio", 10_000):
            start, floor = series["otp-flat/start"], series["floor/start"]
            ratio = start.median / floor.median
            results.target("10,000 asyncio children start in ≤ 2x the bare loop's time",
                           f"{start.median:.0f} ms vs {floor.median:.0f} ms = {ratio:.2f}x "
                           f"(three-level tree: {series['otp-tree/start'].median:.0f} ms)",
                           ratio <= 2.0)
            memory = series["otp-flat/memory"]
            results.target("10,000 asyncio children cost ≤ 4 KB each",
                           f"{memory.median:.2f} KB (bare {series['floor/memory'].median:.2f} KB;"
                           f" three-level tree {series['otp-tree/memory'].median:.2f} KB)",
                           memory.median <= 4.0)
