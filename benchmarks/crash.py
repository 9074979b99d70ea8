"""Sections 1 and 2: how fast a crash is noticed, and how fast it is healed.

One supervised child crashes, over and over; every *crash cycle* gives two samples:

* **detection**: from the child's exit (its last timestamp before ``os._exit(1)``,
  or before it raises, for threads and tasks) to the supervisor's report of it (for
  otp_py, a report listener receiving :class:`otp_py.reports.ChildExited`; for a
  bare loop, its wait returning; for the Celery-style poller, ``is_alive()``
  returning False);
* **crash→restart**: from that exit to the new child running its target (its first
  timestamp).

Children stamp their lives with ``CLOCK_MONOTONIC`` (see :mod:`benchmarks.targets`);
process and command children live 5-15 ms before crashing, thread and task children
1-3 ms, so every crash finds the supervisor idle. Intensity is kept out of the way
(``SlidingWindow(10**9, 1)``).

Comparisons, run interleaved with otp_py round after round:

* the *raw floor* of each backend: ``multiprocessing.Process`` of the same start
  method restarted by a loop blocked on its sentinel; ``subprocess.Popen(...).wait()``
  (``waitpid``) for the tiny C program; a thread loop (``start``; ``join``); an
  asyncio loop restarting the task from its done-callback;
* supervisord and circus, each driving the same tiny C program with its defaults
  (supervisord needs ``startsecs=0``: with its default of 1 s a child that lives
  15 ms counts as a failed start and is given up after 3 retries);
* for detection, a Celery 0.4-style supervisor: ``is_alive()`` every
  ``check_interval`` (2 s), computed from a short run of 8 such pollers, each
  supervising one fork child that crashes at a random phase.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import otp_py as otp
from benchmarks import external, targets
from benchmarks.harness import CACHE, Results, Series, interleave, log, scratch_file

__all__ = ["Settings", "run"]

OUT_OF_THE_WAY = otp.SlidingWindow(max_restarts=10**9, period=1.0)
PROCESS_LIFE = (0.005, 0.015)  # seconds a process or command child lives
INPROC_LIFE = (0.001, 0.003)  # seconds a thread or task child lives


@dataclass(frozen=True)
class Settings:
    rounds: int
    cycles: dict[str, int]  # measured crash cycles per run, per backend
    warmup_cycles: int  # cycles dropped at the start of every run
    external_cycles: dict[str, int]  # per run of supervisord / circus
    celery_interval: float  # Celery 0.4's check_interval
    celery_window: float  # seconds the Celery-style pollers run
    celery_pollers: int
    external: bool  # run supervisord and circus (and install them if need be)
    install: bool
    warmup_runs: bool = True  # one unmeasured run of everything before the rounds


FULL = Settings(
    rounds=5,
    cycles={"forkserver": 30, "fork": 30, "spawn": 10, "command": 40, "thread": 100,
            "asyncio": 100},
    warmup_cycles=3,
    external_cycles={"supervisord": 4, "circus": 2},
    celery_interval=2.0,
    celery_window=16.0,
    celery_pollers=8,
    external=True,
    install=True,
)
QUICK = Settings(
    rounds=1,
    cycles={"forkserver": 5, "fork": 5, "spawn": 2, "command": 5, "thread": 10,
            "asyncio": 10},
    warmup_cycles=1,
    external_cycles={"supervisord": 1, "circus": 1},
    celery_interval=0.05,
    celery_window=0.6,
    celery_pollers=4,
    external=False,
    install=False,
    warmup_runs=False,
)

BACKENDS = ("forkserver", "fork", "spawn", "command", "thread", "asyncio")
LABELS = {
    "forkserver": "process, forkserver (default)",
    "fork": "process, fork",
    "spawn": "process, spawn",
    "command": "command (tiny C program)",
    "thread": "thread",
    "asyncio": "asyncio task",
}
RAW_LABELS = {
    "forkserver": "multiprocessing forkserver + sentinel loop",
    "fork": "multiprocessing fork + sentinel loop",
    "spawn": "multiprocessing spawn + sentinel loop",
    "command": "subprocess.Popen().wait() loop",
    "thread": "bare thread loop (start; join)",
    "asyncio": "bare asyncio loop (done-callback)",
}


# ----------------------------------------------------------------- bookkeeping


class Recorder:
    """The life stamps of an in-process child (thread or task), all generations."""

    def __init__(self, low_s: float, high_s: float) -> None:
        self.starts: list[int] = []
        self.exits: list[int] = []
        self.low_s = low_s
        self.high_s = high_s

    def life(self) -> float:
        return targets.life_s(len(self.starts), self.low_s, self.high_s)


def crash_thread(rec: Recorder) -> None:
    rec.starts.append(time.monotonic_ns())
    time.sleep(rec.life())
    rec.exits.append(time.monotonic_ns())
    raise RuntimeError("benchmark crash")


async def crash_task(rec: Recorder) -> None:
    rec.starts.append(time.monotonic_ns())
    await asyncio.sleep(rec.life())
    rec.exits.append(time.monotonic_ns())
    raise RuntimeError("benchmark crash")


def _log_stamps(path: str) -> tuple[list[int], list[int]]:
    starts: list[int] = []
    exits: list[int] = []
    for kind, _, ns in targets.read_log(path):
        (starts if kind == targets.START else exits).append(ns)
    return starts, exits


def _cycles(
    starts: Sequence[int], exits: Sequence[int], seen: Sequence[int] | None,
    warmup: int, cycles: int,
) -> dict[str, list[float]]:
    """Restart gaps (and detection times, given ``seen``) in ms for cycles
    ``warmup .. warmup + cycles - 1``."""
    last = warmup + cycles
    if len(exits) < last or len(starts) < last + 1 or (seen is not None and len(seen) < last):
        raise RuntimeError(
            f"incomplete run: {len(starts)} starts, {len(exits)} exits, "
            f"{len(seen) if seen is not None else '-'} reports; wanted {last} cycles")
    out = {"restart": [(starts[i + 1] - exits[i]) / 1e6 for i in range(warmup, last)]}
    if seen is not None:
        out["detect"] = [(seen[i] - exits[i]) / 1e6 for i in range(warmup, last)]
    if min(out["restart"]) < 0:
        raise RuntimeError("a child started before its predecessor exited: logs out of step")
    return out


# ----------------------------------------------------------------- otp_py


def _otp_spec(backend: str, sink: Any, tiny: str | None) -> otp.ChildSpec:
    low, high = PROCESS_LIFE
    if backend in ("forkserver", "fork", "spawn"):
        method = None if backend == "forkserver" else backend  # None: the default
        return otp.ChildSpec.process("crasher", targets.crash_after, args=(sink, low, high),
                                     start_method=method)
    if backend == "command":
        assert tiny is not None
        return otp.ChildSpec.command(
            "crasher", [tiny, sink, str(int(low * 1e6)), str(int(high * 1e6))])
    if backend == "thread":
        return otp.ChildSpec.thread("crasher", crash_thread, args=(sink,))
    return otp.ChildSpec.task("crasher", crash_task, args=(sink,))


def otp_cycles(backend: str, total: int, tiny: str | None) -> tuple[list[int], list[int],
                                                                    list[int]]:
    """Run one otp_py tree until its child has exited ``total`` times; return the
    child's start and exit stamps and the times the supervisor reported each exit."""
    in_process = backend in ("thread", "asyncio")
    recorder = Recorder(*INPROC_LIFE) if in_process else None
    log_path = None if in_process else scratch_file(f"otp-{backend}")
    seen: list[int] = []
    done = threading.Event()

    def listener(report: Any) -> None:
        if isinstance(report, otp.reports.ChildExited):
            seen.append(time.monotonic_ns())
            if len(seen) >= total:
                done.set()

    spec = _otp_spec(backend, recorder if in_process else log_path, tiny)
    tree = otp.SupervisorSpec(id="bench", intensity=OUT_OF_THE_WAY, children=[spec])
    with otp.start(tree, on_report=listener):
        if not done.wait(60 + total):
            raise RuntimeError(f"otp_py {backend}: {len(seen)} of {total} exits in time")
    if recorder is not None:
        return recorder.starts, recorder.exits, seen
    assert log_path is not None
    starts, exits = _log_stamps(log_path)
    os.unlink(log_path)
    return starts, exits, seen


# ----------------------------------------------------------------- raw floors


def raw_mp_cycles(method: str, total: int) -> tuple[list[int], list[int], list[int]]:
    """multiprocessing.Process of ``method``, restarted by a loop blocked on its
    sentinel."""
    ctx = multiprocessing.get_context(method)
    log_path = scratch_file(f"raw-{method}")
    seen: list[int] = []
    low, high = PROCESS_LIFE
    for _ in range(total):
        process = ctx.Process(target=targets.crash_after, args=(log_path, low, high))
        process.start()
        wait([process.sentinel])
        seen.append(time.monotonic_ns())
        process.join()
        process.close()
    starts, exits = _log_stamps(log_path)
    os.unlink(log_path)
    return starts, exits, seen


def raw_popen_cycles(tiny: str, total: int) -> tuple[list[int], list[int], list[int]]:
    """The tiny C program restarted by ``Popen(argv).wait()`` (a blocking waitpid)."""
    log_path = scratch_file("raw-command")
    low, high = PROCESS_LIFE
    argv = [tiny, log_path, str(int(low * 1e6)), str(int(high * 1e6))]
    seen: list[int] = []
    for _ in range(total):
        subprocess.Popen(argv).wait()
        seen.append(time.monotonic_ns())
    starts, exits = _log_stamps(log_path)
    os.unlink(log_path)
    return starts, exits, seen


def raw_thread_cycles(total: int) -> tuple[list[int], list[int], list[int]]:
    """A thread restarted by a loop blocked in ``join()``."""
    rec = Recorder(*INPROC_LIFE)
    seen: list[int] = []

    def body() -> None:
        with contextlib.suppress(RuntimeError):
            crash_thread(rec)

    for _ in range(total):
        thread = threading.Thread(target=body)
        thread.start()
        thread.join()
        seen.append(time.monotonic_ns())
    return rec.starts, rec.exits, seen


def raw_task_cycles(total: int) -> tuple[list[int], list[int], list[int]]:
    """A task restarted from its own done-callback: the least asyncio can do."""
    rec = Recorder(*INPROC_LIFE)
    seen: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        finished = loop.create_future()

        def done(task: asyncio.Task[None]) -> None:
            seen.append(time.monotonic_ns())
            task.exception()  # retrieved: no "never retrieved" warning
            if len(seen) < total:
                loop.create_task(crash_task(rec)).add_done_callback(done)
            else:
                finished.set_result(None)

        loop.create_task(crash_task(rec)).add_done_callback(done)
        await finished

    asyncio.run(main())
    return rec.starts, rec.exits, seen


# ----------------------------------------------------------------- supervisord, circus


def _wait_for_starts(log_path: str, wanted: int, timeout: float, process: Any) -> None:
    deadline = time.monotonic() + timeout
    size = wanted * 2 * targets.RECORD.size  # START and EXIT records of earlier cycles
    while time.monotonic() < deadline:
        if os.path.getsize(log_path) >= size - targets.RECORD.size:
            starts, _ = _log_stamps(log_path)
            if len(starts) >= wanted:
                return
        if process.poll() is not None:
            raise RuntimeError(f"it exited early with status {process.returncode}")
        time.sleep(0.05)
    raise RuntimeError(f"fewer than {wanted} starts within {timeout:.0f} s")


def stop_tool(process: subprocess.Popen[Any], timeout: float = 15) -> None:
    """SIGTERM a supervisord or circusd started in a session of its own, wait, then
    SIGKILL whatever is left of its process group (programs it started, circus's
    helpers), so nothing outlives the measurement."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with contextlib.suppress(OSError):
        os.killpg(process.pid, signal.SIGKILL)


def supervisord_config(workdir: Path, argv: Sequence[str], numprocs: int = 1) -> Path:
    """A supervisord config running ``argv`` (defaults except ``startsecs=0``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    lines = [
        "[supervisord]",
        "nodaemon=true",
        f"logfile={workdir / 'supervisord.log'}",
        f"pidfile={workdir / 'supervisord.pid'}",
        f"childlogdir={workdir}",
        "loglevel=warn",
        "",
        "[program:tiny]",
        "command=" + " ".join(argv),
        "autorestart=true",
        "startsecs=0",
        "stdout_logfile=NONE",
        "stderr_logfile=NONE",
    ]
    if numprocs > 1:
        lines += [f"numprocs={numprocs}", "process_name=%(program_name)s_%(process_num)03d"]
    path = workdir / "supervisord.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


def circus_config(workdir: Path, argv: Sequence[str], numprocesses: int = 1) -> Path:
    """A circusd config running ``argv`` with circus's defaults (its two endpoints
    on Unix sockets in ``workdir``, so no TCP port is taken; no ``stats_endpoint``,
    which would turn on the circusd-stats process that is off by default)."""
    workdir.mkdir(parents=True, exist_ok=True)
    lines = [
        "[circus]",
        f"endpoint = ipc://{workdir / 'endpoint'}",
        f"pubsub_endpoint = ipc://{workdir / 'pubsub'}",
        "",
        "[watcher:tiny]",
        f"cmd = {argv[0]}",
        "args = " + " ".join(argv[1:]),
        f"numprocesses = {numprocesses}",
    ]
    path = workdir / "circus.ini"
    path.write_text("\n".join(lines) + "\n")
    return path


def external_cycles(tool: str, binary: str, tiny: str, total: int) -> dict[str, list[float]]:
    """Run supervisord or circusd over the tiny program until it started
    ``total + 1`` times; return the restart gaps (ms) after the first cycle."""
    log_path = scratch_file(tool)
    low, high = PROCESS_LIFE
    argv = [tiny, log_path, str(int(low * 1e6)), str(int(high * 1e6))]
    workdir = CACHE / "scratch" / f"{tool}-{os.getpid()}"
    if tool == "supervisord":
        config = supervisord_config(workdir, argv)
        command = [binary, "-c", str(config)]
    else:
        config = circus_config(workdir, argv)
        command = [binary, str(config)]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for_starts(log_path, total + 2, 30 + 10 * total, process)
    finally:
        stop_tool(process)
    starts, exits = _log_stamps(log_path)
    os.unlink(log_path)
    return _cycles(starts, exits, None, 1, total)


# ----------------------------------------------------------------- Celery 0.4


def celery_detection(settings: Settings) -> list[float]:
    """Detection times (ms) of Celery 0.4's supervision loop: ``is_alive()``, then
    sleep ``check_interval``; a dead child is joined and started again. Several
    such supervisors run side by side for ``celery_window`` seconds, each over one
    fork child that lives a random 0.1-1.1 ``check_interval`` (so crashes fall at
    every phase of the poll)."""
    ctx = multiprocessing.get_context("fork")
    log_path = scratch_file("celery")
    interval = settings.celery_interval
    low, high = 0.1 * interval, 1.1 * interval
    until = time.monotonic() + settings.celery_window
    seen: dict[int, list[int]] = {}  # pid -> when a dead child of that pid was noticed
    lock = threading.Lock()

    def supervise() -> None:
        process = ctx.Process(target=targets.crash_after, args=(log_path, low, high))
        process.start()
        while time.monotonic() < until:
            if not process.is_alive():
                noticed = time.monotonic_ns()
                with lock:
                    seen.setdefault(process.pid or 0, []).append(noticed)
                process.join(2)  # Celery's join_timeout
                process = ctx.Process(target=targets.crash_after, args=(log_path, low, high))
                process.start()
            time.sleep(interval)
        process.kill()
        process.join()

    pollers = [threading.Thread(target=supervise) for _ in range(settings.celery_pollers)]
    for poller in pollers:
        poller.start()
    for poller in pollers:
        poller.join()
    samples = []
    for kind, pid, ns in targets.read_log(log_path):
        # Pids are reused (a busy machine can wrap a pid_max of 32,768 in seconds):
        # an exit is noticed by the first notice of its pid that follows it.
        later = [t for t in seen.get(pid, ()) if t >= ns] if kind == targets.EXIT else []
        if later:
            samples.append((min(later) - ns) / 1e6)
    os.unlink(log_path)
    return samples


# ----------------------------------------------------------------- the section


def run(results: Results, settings: Settings) -> None:
    """Measure every backend's detection and crash→restart times against their
    comparisons, and add the rows and targets to ``results``."""
    tiny, why_no_tiny = external.tiny_program()
    series: dict[str, Series] = {}
    for backend in BACKENDS:
        for kind in ("detect", "restart"):
            series[f"{kind}/{backend}/otp"] = Series(f"otp_py {LABELS[backend]}", "ms")
            series[f"{kind}/{backend}/raw"] = Series(RAW_LABELS[backend], "ms")
    for tool in ("supervisord", "circus"):
        series[f"restart/command/{tool}"] = Series(f"{tool} (defaults)", "ms")
    if tiny is None:
        for key, s in series.items():
            if "/command/" in key:
                s.skipped = why_no_tiny
        results.note(f"command children: {why_no_tiny}")

    warm, by = settings.warmup_cycles, settings.cycles

    def otp_runner(backend: str) -> Callable[[], dict[str, list[float]] | None]:
        def runner() -> dict[str, list[float]] | None:
            total = warm + by[backend] + 1
            out = _cycles(*otp_cycles(backend, total, tiny), warm, by[backend])
            return {f"{k}/{backend}/otp": v for k, v in out.items()}
        return runner

    def raw_runner(backend: str) -> Callable[[], dict[str, list[float]] | None]:
        def runner() -> dict[str, list[float]] | None:
            total = warm + by[backend] + 1
            if backend in ("forkserver", "fork", "spawn"):
                stamps = raw_mp_cycles(backend, total)
            elif backend == "command":
                assert tiny is not None
                stamps = raw_popen_cycles(tiny, total)
            elif backend == "thread":
                stamps = raw_thread_cycles(total)
            else:
                stamps = raw_task_cycles(total)
            out = _cycles(*stamps, warm, by[backend])
            return {f"{k}/{backend}/raw": v for k, v in out.items()}
        return runner

    # Processes, threads and tasks: otp_py and its floor, interleaved.
    runners: dict[str, Callable[[], dict[str, list[float]] | None]] = {}
    for backend in ("forkserver", "fork", "spawn", "thread", "asyncio"):
        runners[f"otp {backend}"] = otp_runner(backend)
        runners[f"raw {backend}"] = raw_runner(backend)
    log("sections 1-2: crash cycles of process, thread and task children")
    interleave(runners, series, settings.rounds, warmup=settings.warmup_runs,
               label="crash cycles")

    # Commands: otp_py, the bare loop, supervisord and circus, interleaved.
    if tiny is not None:
        command_runners: dict[str, Callable[[], dict[str, list[float]] | None]] = {
            "otp command": otp_runner("command"),
            "raw command": raw_runner("command"),
        }
        for tool, binary_name in (("supervisord", "supervisord"), ("circus", "circusd")):
            target = series[f"restart/command/{tool}"]
            if not settings.external:
                target.skipped = "not run by --quick (each restart takes a second or more)"
                continue
            binary, why = external.tool(binary_name, install=settings.install)
            if binary is None:
                target.skipped = why
                results.note(f"{tool}: {why}")
                continue
            command_runners[tool] = _external_runner(tool, binary, tiny,
                                                     settings.external_cycles[tool], target)
        log("sections 1-2: crash cycles of command children")
        interleave(command_runners, series, max(1, min(settings.rounds, 3)),
                   warmup=settings.warmup_runs, label="command cycles")

    log("section 1: Celery 0.4-style polling supervisor")
    celery = Series(f"Celery 0.4 poller (is_alive every {settings.celery_interval:g} s)", "ms")
    if settings.celery_interval != 2.0:
        celery.note = "quick run: check_interval scaled down"
    celery.add(celery_detection(settings))
    series["detect/celery"] = celery

    for key, s in series.items():
        results.keep(key, s)
    for backend in BACKENDS:
        results.row("1 crash detection", LABELS[backend], series[f"detect/{backend}/otp"],
                    celery)
    for backend in BACKENDS:
        results.row("1 crash detection", LABELS[backend] + " (floor)",
                    series[f"detect/{backend}/otp"], series[f"detect/{backend}/raw"])
    for backend in BACKENDS:
        results.row("2 crash→restart", LABELS[backend], series[f"restart/{backend}/otp"],
                    series[f"restart/{backend}/raw"])
        if backend == "forkserver":
            results.row("2 crash→restart", LABELS[backend] + " vs bare fork",
                        series["restart/forkserver/otp"], series["restart/fork/raw"])
    for tool in ("supervisord", "circus"):
        results.row("2 crash→restart", LABELS["command"], series["restart/command/otp"],
                    series[f"restart/command/{tool}"])
    _targets(results, series)


def _external_runner(
    tool: str, binary: str, tiny: str, cycles: int, target: Series
) -> Callable[[], dict[str, list[float]] | None]:
    def runner() -> dict[str, list[float]] | None:
        try:
            out = external_cycles(tool, binary, tiny, cycles)
        except (RuntimeError, OSError) as exc:
            target.skipped = f"{tool} could not run: {exc}"
            log(f"  {tool}: {target.skipped}")
            return None
        return {f"restart/command/{tool}": out["restart"]}
    return runner


def _targets(results: Results, series: dict[str, Series]) -> None:
    worst = max(
        (series[f"detect/{b}/otp"] for b in ("forkserver", "fork", "spawn")),
        key=lambda s: s.tail,
    )
    results.target(
        "crash detection p99 ≤ 2 ms for process children",
        f"worst process backend p99 {worst.tail:.2f} ms ({worst.label}); "
        f"Celery poller median {series['detect/celery'].median:.0f} ms",
        worst.tail <= 2.0,
    )
    ours, floor = series["detect/forkserver/otp"], series["detect/forkserver/raw"]
    ratio = ours.median / floor.median
    results.target(
        "process crash detection (forkserver) median ≤ 1.3x the bare forkserver sentinel "
        "loop's, p99 ≤ 1 ms",
        f"{ours.median:.2f} ms vs {floor.median:.2f} ms = {ratio:.2f}x; p99 {ours.tail:.2f} ms",
        ratio <= 1.3 and ours.tail <= 1.0,
    )
    ours = series["restart/forkserver/otp"]
    fork = series["restart/fork/raw"]
    ratio = ours.median / fork.median
    results.target(
        "process crash→restart median (default start method) ≤ 1.5x a bare fork loop",
        f"{ours.median:.2f} ms vs {fork.median:.2f} ms = {ratio:.2f}x",
        ratio <= 1.5,
    )
    cmd, popen = series["restart/command/otp"], series["restart/command/raw"]
    if cmd.n and popen.n:
        ratio = cmd.median / popen.median
        results.target(
            "command crash→restart median ≤ 1.3x a bare Popen().wait() loop",
            f"{cmd.median:.2f} ms vs {popen.median:.2f} ms = {ratio:.2f}x",
            ratio <= 1.3,
        )
    else:
        results.target("command crash→restart median ≤ 1.3x a bare Popen().wait() loop",
                       cmd.skipped or "not measured", None)
