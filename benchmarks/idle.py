"""Section 5: what a supervisor costs while nothing happens.

Every configuration is started, left to settle, then watched from the outside
through ``/proc/PID/task/TID/schedstat`` (nanoseconds on the CPU, and how many
times each thread was scheduled in, i.e. woke up) over windows of a fixed length:

* otp_py with 100 idle process children (its fork server) and with 10,000 idle
  asyncio children, run by ``otp.run`` in a process of its own;
* the floors: a process blocked in ``multiprocessing.connection.wait`` on the
  sentinels of 100 ``multiprocessing`` forkserver children, and an asyncio loop
  with 10,000 tasks awaiting futures;
* supervisord and circus, each with 100 idle copies of the tiny C program (full
  run only).

The supervisor's cost counts every thread of the supervising process *and* of its
helper processes (otp_py's fork server and guardian; multiprocessing's forkserver
and resource tracker), never the children. Figures are per minute: CPU
milliseconds and wakeups. All configurations are watched during the *same* windows
(they are idle, so they do not disturb each other): the strongest form of
interleaving.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Any

from benchmarks import crash, external
from benchmarks.harness import CACHE, Results, Series, log
from benchmarks.scale import ROOT, worker_command

__all__ = ["Settings", "run"]


@dataclass(frozen=True)
class Settings:
    rounds: int
    window_s: float
    settle_s: float
    processes: int
    tasks: int
    external: bool
    install: bool


FULL = Settings(rounds=3, window_s=20.0, settle_s=3.0, processes=100, tasks=10_000,
                external=True, install=True)
QUICK = Settings(rounds=1, window_s=0.5, settle_s=0.2, processes=5, tasks=200,
                 external=False, install=False)


def _threads(pid: int) -> list[str]:
    try:
        return os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return []


def schedstat(pids: list[int]) -> tuple[int, int]:
    """(ns on CPU, times scheduled in), summed over every thread of ``pids``."""
    cpu = slices = 0
    for pid in pids:
        for tid in _threads(pid):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    run_ns, _, count = f.read().split()
            except (FileNotFoundError, ProcessLookupError, ValueError):
                continue
            cpu += int(run_ns)
            slices += int(count)
    return cpu, slices


class Watched:
    """One running configuration and the pids that make up its supervisor."""

    def __init__(self, key: str, label: str, process: subprocess.Popen[str]) -> None:
        self.key = key
        self.label = label
        self.process = process
        self.pids: list[int] = [process.pid]
        self.helpers: dict[str, int] = {}

    def ready_from_worker(self, timeout: float) -> None:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if line.startswith("{"):
                break
            if not line and self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited with status {self.process.returncode}")
        info = json.loads(line)
        self.helpers = info["helpers"]
        self.pids = [info["pid"], *self.helpers.values()]

    def ready_when_children(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited with status {self.process.returncode}")
            if len(_children(self.process.pid)) >= n:
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.label}: fewer than {n} children after {timeout:.0f} s")

    def stop(self) -> None:
        if self.key in ("supervisord", "circus"):
            crash.stop_tool(self.process, timeout=60)
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def _start_worker(key: str, label: str, who: str, kind: str, n: int) -> Watched:
    process = subprocess.Popen(worker_command("idle", who, kind, n), cwd=ROOT,
                               stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    return Watched(key, label, process)


def _start_tool(key: str, tool: str, binary: str, tiny: str, n: int) -> Watched:
    workdir = CACHE / "scratch" / f"idle-{tool}-{os.getpid()}"
    argv = [tiny, "-", "0", "0"]
    if tool == "supervisord":
        config = crash.supervisord_config(workdir, argv, numprocs=n)
        command = [binary, "-c", str(config)]
    else:
        config = crash.circus_config(workdir, argv, numprocesses=n)
        command = [binary, str(config)]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    return Watched(key, f"{tool} (defaults), {n} idle tiny programs", process)


def run(results: Results, settings: Settings) -> None:
    """Watch every idle configuration over the same windows."""
    n_proc, n_task = settings.processes, settings.tasks
    plan: list[tuple[str, str, str, str, int]] = [
        ("otp-process", f"otp_py, {n_proc} idle process children", "otp", "process", n_proc),
        ("floor-process", f"bare multiprocessing forkserver + wait(), {n_proc} children",
         "bare", "process", n_proc),
        ("otp-asyncio", f"otp_py, {n_task:,} idle asyncio children", "otp", "asyncio", n_task),
        ("floor-asyncio", f"bare asyncio loop, {n_task:,} tasks", "bare", "asyncio", n_task),
    ]
    series: dict[str, Series] = {}
    for key, label, *_ in plan:
        series[f"{key}/cpu"] = Series(label, "ms CPU/min")
        series[f"{key}/wakeups"] = Series(label, "wakeups/min")
    for tool in ("supervisord", "circus"):
        label = f"{tool} (defaults), {n_proc} idle tiny programs"
        series[f"{tool}/cpu"] = Series(label, "ms CPU/min")
        series[f"{tool}/wakeups"] = Series(label, "wakeups/min")

    watched: list[Watched] = []
    log("section 5: idle cost")
    try:
        for key, label, who, kind, n in plan:
            watched.append(_start_worker(key, label, who, kind, n))
        tiny, why_tiny = external.tiny_program()
        for tool, binary_name in (("supervisord", "supervisord"), ("circus", "circusd")):
            if not settings.external:
                why = "not run by --quick (a full run installs and measures it)"
            elif tiny is None:
                why = why_tiny
            else:
                binary, why = external.tool(binary_name, install=settings.install)
                if binary is not None:
                    assert tiny is not None
                    watched.append(_start_tool(tool, tool, binary, tiny, n_proc))
                    continue
            series[f"{tool}/cpu"].skipped = series[f"{tool}/wakeups"].skipped = why
        for w in list(watched):
            try:
                if w.key in ("supervisord", "circus"):
                    w.ready_when_children(n_proc, 120)
                else:
                    w.ready_from_worker(300)
            except (RuntimeError, ValueError) as exc:
                series[f"{w.key}/cpu"].skipped = series[f"{w.key}/wakeups"].skipped = str(exc)
                results.note(f"idle {w.label}: {exc}")
                w.stop()
                watched.remove(w)
        time.sleep(settings.settle_s)
        helpers: dict[str, Any] = {w.key: {"pids": w.pids, "helpers": w.helpers}
                                   for w in watched}
        results.extra["idle_processes"] = helpers
        for r in range(settings.rounds):
            log(f"  idle window {r + 1}/{settings.rounds} ({settings.window_s:g} s)")
            before = {w.key: schedstat(w.pids) for w in watched}
            t0 = time.monotonic()
            time.sleep(settings.window_s)
            elapsed = time.monotonic() - t0
            after = {w.key: schedstat(w.pids) for w in watched}
            per_minute = 60.0 / elapsed
            for w in watched:
                cpu = (after[w.key][0] - before[w.key][0]) / 1e6 * per_minute
                wakeups = (after[w.key][1] - before[w.key][1]) * per_minute
                series[f"{w.key}/cpu"].add([cpu])
                series[f"{w.key}/wakeups"].add([wakeups])
    finally:
        for w in watched:
            with contextlib.suppress(OSError):
                w.stop()
            if w.process.stdout is not None:
                w.process.stdout.close()

    for key, s in series.items():
        results.keep(f"idle/{key}", s)
    section = "5 idle cost"
    for metric, name in (("cpu", "CPU"), ("wakeups", "wakeups")):
        results.row(section, f"{n_proc} process children: {name}", series[f"otp-process/{metric}"],
                    series[f"floor-process/{metric}"])
        for tool in ("supervisord", "circus"):
            results.row(section, f"{n_proc} process children: {name}",
                        series[f"otp-process/{metric}"], series[f"{tool}/{metric}"])
        results.row(section, f"{n_task:,} asyncio children: {name}",
                    series[f"otp-asyncio/{metric}"], series[f"floor-asyncio/{metric}"])
    cpu = series["otp-process/cpu"]
    if cpu.n:
        results.target(f"idle: ≤ 10 ms supervisor CPU per minute with {n_proc} idle process "
                       "children",
                       f"{cpu.median:.2f} ms/min ({series['otp-process/wakeups'].median:.0f} "
                       "wakeups/min)", cpu.median <= 10.0)
    else:
        results.target("idle: ≤ 10 ms supervisor CPU per minute with 100 idle process children",
                       cpu.skipped or "not measured", None)
