"""The chaos driver: break the Celery stack in six ways, under otp_py and supervisord.

``python -m examples.celery_stack.chaos --seconds N`` runs, for each system in turn
(``--systems otp_py,supervisord``), one copy of the stack in a temporary directory on
free ports, sends it a steady stream of numbered idempotent tasks through the web app
(``POST /tasks?n=N``, retried until accepted), and injects, one after the other, from
a healthy stack:

``worker-kill``       kill -9 of a worker's main process, while it runs a task
``pool-child-kill``   kill -9 of a prefork pool child, while it runs a task
``redis-kill``        kill -9 of redis-server
``worker-freeze``     SIGSTOP of a worker's main process (it must be found and replaced)
``redis-crash-loop``  redis-server fails at start ``--crash-starts`` times, then kill -9
``supervisor-kill``   SIGKILL of the supervisor itself, then it is started again

For each fault it measures:

* **back in**: seconds from the fault to the first task that proves the broken part
  works again: a task done by the same worker in a new main process (worker faults),
  by a new pool child of that worker (pool child), by *both* workers among tasks
  accepted after the fault (Redis faults, supervisor kill: a worker that stays
  connected to nothing shows here);
* **interrupted done**: seconds until the tasks that were running in the killed or
  frozen processes have been done (by redelivery);
* **lost**: accepted tasks never done, even after the final drain, counted at the
  last fault before they were accepted (give or take a second); **dup**: tasks done
  more than once, counted at the last fault before their first run ended (a task is
  acknowledged as it ends: one that ended before the fault was not in flight);
* **left over**: processes of the stack that are alive and that the supervisor does not
  know (its programs, their descendants and its own helpers are known), counted at
  the end of the fault's window, and after the final stop;
* **operator**: what the driver had to do, as an operator would, because the
  supervisor had not recovered by the end of the window (the window lasts
  ``N/6`` seconds, and up to twice that while recovery is awaited); the next fault then
  starts from a healthy stack again.

The table is printed at the end; ``--json FILE`` keeps every measurement,
``--plot FILE.png`` draws tasks completed per second with the faults marked, and
``--rst FILE`` writes the table for the docs page (``report.py`` does the same from
the JSON).
The driver makes itself a child subreaper, so every orphan of the stack becomes its
child: it sees them all, and kills whatever is left when it ends.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
from examples.celery_stack.systems import OtpSystem, SupervisordSystem, System, is_helper
from examples.celery_stack.tree import WORKERS, Stack

FAULTS = ("worker-kill", "pool-child-kill", "redis-kill", "worker-freeze",
          "redis-crash-loop", "supervisor-kill")
LABELS = {
    "worker-kill": "kill -9 worker main process",
    "pool-child-kill": "kill -9 prefork pool child",
    "redis-kill": "kill -9 redis-server",
    "worker-freeze": "SIGSTOP worker (liveness)",
    "redis-crash-loop": "redis-server crash loop at start",
    "supervisor-kill": "SIGKILL supervisor, start again",
}
MARGIN = 0.5  # seconds: an acknowledgement follows the end of a task by less than this


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} chaos: {message}", file=sys.stderr, flush=True)


def become_subreaper() -> None:
    """Orphans of the stack become our children (Linux prctl PR_SET_CHILD_SUBREAPER)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


# ---------------------------------------------------------------- what the tasks did

@dataclass(frozen=True)
class Line:
    kind: str  # S (started), D (done), B (beat tick)
    n: int
    pid: int
    ppid: int  # the worker's main process
    node: str  # w1, w2 (beat for B)
    t: float


class Results:
    """``results.log``, read as it grows, from a thread of its own."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.lines: list[Line] = []
        self.starts: dict[int, list[Line]] = defaultdict(list)
        self.dones: dict[int, list[Line]] = defaultdict(list)
        self._offset, self._rest = 0, b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="results", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(0.05)

    def refresh(self) -> None:
        """Read what has been appended since the last look (the thread does it every
        50 ms; a fault is aimed after a look of its own)."""
        with self.lock, contextlib.suppress(FileNotFoundError), open(self.path, "rb") as file:
            file.seek(self._offset)
            data = file.read()
            self._offset += len(data)
            *whole, self._rest = (self._rest + data).split(b"\n")
            for raw in whole:
                self._add(raw.decode())

    def _add(self, raw: str) -> None:
        fields = raw.split()
        if len(fields) != 6:
            return
        line = Line(fields[0], int(fields[1]), int(fields[2]), int(fields[3]),
                    fields[4].split("@")[0], float(fields[5]))
        self.lines.append(line)
        if line.kind == "S":
            self.starts[line.n].append(line)
        elif line.kind == "D":
            self.dones[line.n].append(line)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def first_done(self, after: float, test: Callable[[Line], bool]) -> Line | None:
        with self.lock:
            for line in self.lines:
                if line.kind == "D" and line.t > after and test(line):
                    return line
        return None

    def running(self) -> list[Line]:
        """Tasks started and not yet done by the process that started them."""
        with self.lock:
            done = {(line.n, line.pid) for line in self.lines if line.kind == "D"}
            return [line for line in self.lines
                    if line.kind == "S" and (line.n, line.pid) not in done]

    def done_numbers(self) -> dict[int, int]:
        with self.lock:
            return {n: len(lines) for n, lines in self.dones.items()}


# ---------------------------------------------------------------- the task stream

class Enqueuer:
    """Sends task n, n+1, ... at ``rate`` per second; each is retried until accepted."""

    def __init__(self, url: str, rate: float, work: float) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.rate, self.work = rate, work
        self.accepted: dict[int, float] = {}
        self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="enqueuer", daemon=True)
        self._connection: http.client.HTTPConnection | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _post(self, n: int) -> bool:
        try:
            if self._connection is None:
                self._connection = http.client.HTTPConnection(self.host, self.port, timeout=3)
            self._connection.request("POST", f"/tasks?n={n}&work={self.work}")
            response = self._connection.getresponse()
            response.read()
            return response.status == 202
        except (OSError, http.client.HTTPException):
            if self._connection is not None:
                self._connection.close()
            self._connection = None
            return False

    def _run(self) -> None:
        n, due = 1, time.monotonic()
        while not self._stop.is_set():
            while not self._post(n):
                self.refused += 1
                if self._stop.wait(0.1):
                    return
            self.accepted[n] = time.time()
            n += 1
            due = max(due + 1 / self.rate, time.monotonic() - 1)  # no burst after an outage
            self._stop.wait(max(0.0, due - time.monotonic()))


def web_results(url: str) -> dict[str, Any]:
    """What the web app reports (GET /results), or {} if it does not answer."""
    host, port = url.removeprefix("http://").split(":")
    try:
        connection = http.client.HTTPConnection(host, int(port), timeout=5)
        connection.request("GET", "/results")
        answer: dict[str, Any] = json.loads(connection.getresponse().read())
        connection.close()
        return answer
    except (OSError, http.client.HTTPException, ValueError):
        return {}


def redis_answers(port: int) -> bool:
    """Whether a Redis on ``port`` answers PING (within 0.2 s)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def web_ready(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        connection = http.client.HTTPConnection(host, int(port), timeout=1)
        connection.request("GET", "/healthz")
        ok = connection.getresponse().status == 200
        connection.close()
        return ok
    except (OSError, http.client.HTTPException):
        return False


# ---------------------------------------------------------------- processes

def stack_processes() -> dict[int, psutil.Process]:
    """Every live descendant of the driver (orphans of the stack included), reaping
    the orphans that have ended."""
    found = {}
    for process in psutil.Process().children(recursive=True):
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                if process.ppid() == os.getpid():
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(process.pid, os.WNOHANG)
                continue
            found[process.pid] = process
        except psutil.NoSuchProcess:
            continue
    return found


def _descendants(pid: int) -> set[int]:
    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def known_pids(system: System) -> set[int]:
    """The supervisor, its own helpers, the programs it reports and their descendants."""
    if not system.alive() or system.pid is None:
        return set()
    known = {system.pid}
    with contextlib.suppress(psutil.NoSuchProcess):
        for child in psutil.Process(system.pid).children():
            with contextlib.suppress(psutil.NoSuchProcess):
                if is_helper(" ".join(child.cmdline())):
                    known.add(child.pid)
    for pid in system.programs().values():
        if pid:
            known |= {pid, *_descendants(pid)}
    return known


def describe(process: psutil.Process) -> str:
    try:
        argv = process.cmdline()
    except psutil.NoSuchProcess:
        return "?"
    text = " ".join(argv)
    for word in ("redis-server", "uvicorn", " beat", "worker", "zygote", "import os, select"):
        if word in text:
            name = {" beat": "celery beat", "worker": "celery worker",
                    "import os, select": "otp_py guardian", "zygote": "otp_py fork server"}
            label = name.get(word, word)
            if word == "worker":
                node = next((a.split("@")[0] for a in argv if "@" in a), "?")
                label = f"celery worker {node}"
            return label
    return os.path.basename(argv[0]) if argv else "?"


def leftovers(system: System) -> list[str]:
    """Processes of the stack alive and unknown to the supervisor, in two looks a
    second apart (a program being restarted between the looks is not counted)."""
    first = {pid for pid in stack_processes() if pid not in known_pids(system)}
    time.sleep(1.0)
    processes = stack_processes()
    again = {pid for pid in processes if pid not in known_pids(system)}
    return sorted(describe(processes[pid]) for pid in first & again)


def kill_all(processes: Iterable[psutil.Process]) -> None:
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    time.sleep(0.2)
    stack_processes()  # reap


# ---------------------------------------------------------------- one fault

@dataclass
class FaultRun:
    fault: str
    t: float = 0.0
    target: str = ""
    back_in: float | None = None
    redis_back_in: float | None = None  # Redis faults: until it answered PING again
    hit: list[int] = field(default_factory=list)  # the pids the fault struck
    interrupted: list[int] = field(default_factory=list)
    interrupted_done_in: float | None = None
    lost: int = 0
    duplicated: int = 0
    lost_tasks: list[int] = field(default_factory=list)
    lost_detail: list[dict[str, Any]] = field(default_factory=list)
    duplicated_tasks: list[int] = field(default_factory=list)
    left_over: list[str] = field(default_factory=list)
    operator: str = ""
    repaired_at: float | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class SystemRun:
    system: str
    t0: float = 0.0
    faults: list[FaultRun] = field(default_factory=list)
    accepted: int = 0
    done: int = 0
    lost: int = 0
    duplicated: int = 0
    final_left_over: list[str] = field(default_factory=list)
    stopped_in_time: bool = True
    completions: list[float] = field(default_factory=list)  # first completion times
    web_results: dict[str, Any] = field(default_factory=dict)  # GET /results at the end
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)  # when the run began
    notes: list[str] = field(default_factory=list)


class Driver:
    def __init__(self, system: System, args: argparse.Namespace) -> None:
        self.system = system
        self.stack = system.stack
        self.args = args
        self.results = Results(Path(self.stack.dir, "results.log"))
        self.enqueuer = Enqueuer(self.stack.web_url, args.rate, args.work)
        self.run = SystemRun(system.name)
        self.window = max(args.seconds / len(FAULTS), args.min_window)
        self.frozen: set[int] = set()

    # -- helpers
    def programs(self) -> dict[str, int | None]:
        return self.system.programs()

    def accepted_after(self, after: float) -> Callable[[Line], bool]:
        accepted = self.enqueuer.accepted
        return lambda line: accepted.get(line.n, 0.0) > after

    def both_workers_after(self, after: float, old_mains: set[int] = frozenset()) -> float | None:
        """When both workers have done a task accepted after ``after`` (in a main
        process not in ``old_mains``), or None."""
        times = []
        fresh = self.accepted_after(after)
        for node in WORKERS:
            line = self.results.first_done(after, lambda x, node=node: x.node == node
                                           and fresh(x) and x.ppid not in old_mains)
            if line is None:
                return None
            times.append(line.t)
        return max(times)

    def healthy(self) -> bool:
        programs = self.programs()
        if not programs or any(pid is None for pid in programs.values()):
            return False
        if self.frozen & set(programs.values()):
            return False
        now = time.time()
        return self.both_workers_after(now - 3.0) is not None

    def wait_healthy(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.healthy():
                return True
            time.sleep(0.2)
        return False

    def busy_pool_child(self, timeout: float = 5.0, full: bool = False) -> Line | None:
        """A task running right now in a pool child of a live, unfrozen worker.

        With ``full``: in a worker whose two pool children both run a task started
        recently enough to be still running when the fault lands, if that comes within
        ``timeout``; else any busy pool child."""
        mains = {pid for name, pid in self.programs().items() if name in WORKERS and pid}
        mains -= self.frozen
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.results.refresh()
            fresh_after = time.time() - (self.args.work - 0.05)
            running = [line for line in reversed(self.results.running())
                       if line.ppid in mains and psutil.pid_exists(line.pid)]
            if full:
                per_worker: dict[int, set[int]] = defaultdict(set)
                for line in running:
                    if line.t > fresh_after:
                        per_worker[line.ppid].add(line.pid)
                running = [line for line in running if len(per_worker[line.ppid]) >= 2]
            if running:
                return running[0]
            time.sleep(0.01)
        return self.busy_pool_child(timeout=1.0) if full else None

    def hit_by(self, pids: set[int]) -> list[int]:
        """``pids`` and their children: the processes a fault hits."""
        hit = set(pids)
        for pid in pids:
            hit |= _descendants(pid)
        return sorted(hit)

    def interrupted(self, run: FaultRun) -> list[int]:
        """The tasks running in the processes the fault hit, at the moment it hit:
        started there before it, not done there before it (read once the run is over,
        so that a task that ended just before the fault is not counted)."""
        hit = set(run.hit)
        with self.results.lock:
            ended = {(line.n, line.pid) for line in self.results.lines
                     if line.kind == "D" and line.t <= run.t}
            return sorted({line.n for line in self.results.lines
                           if line.kind == "S" and line.t < run.t and line.pid in hit
                           and (line.n, line.pid) not in ended})

    # -- the faults
    def inject(self, fault: str) -> tuple[FaultRun, Callable[[], float | None]]:
        """Break the stack; return the record and the test of its recovery."""
        run = FaultRun(fault)
        programs = self.programs()
        if fault in ("worker-kill", "worker-freeze"):
            # A worker frozen while it waits for a message swallows the next one: Redis
            # hands it over (BRPOP), the frozen process never reads it, and kombu's Redis
            # transport records a message as unacknowledged only once the client has
            # read it: killed, it is lost, whatever supervises it. Freezing a worker
            # whose pool is full (it waits for nothing) keeps that broker-side loss out
            # of what is measured here: the supervisor's part (--freeze-idle: any time).
            full = fault == "worker-freeze" and not self.args.freeze_idle
            busy = self.busy_pool_child(full=full)
            node = busy.node if busy else "w1"
            main = programs.get(node) or 0
            run.hit = self.hit_by({main})
            run.target = f"{node} main process (pid {main})"
            run.t = time.time()
            if fault == "worker-kill":
                os.kill(main, signal.SIGKILL)
            else:
                os.kill(main, signal.SIGSTOP)
                self.frozen.add(main)
            line = lambda x: x.node == node and x.ppid != main  # noqa: E731
            return run, lambda: self._first(run.t, line)
        if fault == "pool-child-kill":
            busy = self.busy_pool_child()
            if busy is None:
                run.notes.append("no pool child was running a task: killed w1's first child")
                main = programs.get("w1") or 0
                children = psutil.Process(main).children()
                pid, node = children[0].pid, "w1"
            else:
                pid, main, node = busy.pid, busy.ppid, busy.node
            known = {p.pid for p in psutil.Process(main).children()} if psutil.pid_exists(
                main) else set()
            run.hit = [pid]
            run.target = f"{node} pool child (pid {pid}, of {main})"
            run.t = time.time()
            os.kill(pid, signal.SIGKILL)
            line = lambda x: x.node == node and x.pid not in known  # noqa: E731
            return run, lambda: self._first(run.t, line)
        if fault in ("redis-kill", "redis-crash-loop"):
            redis = programs.get("redis") or 0
            if fault == "redis-crash-loop":
                Path(self.stack.dir, "redis-fail-starts").write_text(f"{self.args.crash_starts}\n")
                run.target = f"redis-server (pid {redis}), then {self.args.crash_starts} " \
                             "failed starts"
            else:
                run.target = f"redis-server (pid {redis})"
            run.t = time.time()
            os.kill(redis, signal.SIGKILL)
            return run, lambda: self.both_workers_after(run.t)
        if fault == "supervisor-kill":
            old = set(stack_processes())
            mains = {pid for name, pid in programs.items() if name in WORKERS and pid}
            run.target = f"{self.system.name} (pid {self.system.pid})"
            run.t = time.time()
            self.system.kill()
            time.sleep(1.0)
            survivors = [p for pid, p in stack_processes().items() if pid in old]
            if survivors:
                run.notes.append("1 s after the kill, still running: "
                                 + summarize(describe(p) for p in survivors))
            else:
                run.notes.append("1 s after the kill, nothing of it was left running")
            self.system.start()
            self.old_generation = old
            return run, lambda: self.both_workers_after(run.t, mains)
        raise ValueError(fault)

    def _first(self, after: float, test: Callable[[Line], bool]) -> float | None:
        line = self.results.first_done(after, test)
        return None if line is None else line.t

    def repair(self, run: FaultRun) -> None:
        """Do what an operator would do to a stack that did not recover by itself."""
        actions = []
        for pid in sorted(self.frozen):
            if psutil.pid_exists(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                actions.append(f"kill -9 frozen worker {pid}")
        self.frozen.clear()
        if run.fault == "supervisor-kill":
            old = [p for pid, p in stack_processes().items()
                   if pid in getattr(self, "old_generation", set())]
            if old:
                kill_all(old)
                actions.append(f"kill -9 {len(old)} processes of the killed supervisor")
        Path(self.stack.dir, "redis-fail-starts").unlink(missing_ok=True)
        time.sleep(0.5)
        for name, pid in self.programs().items():
            if pid is None:
                self.system.start_program(name)
                actions.append(f"start {name}")
        if not self.system.alive():
            self.system.start()
            actions.append(f"start {self.system.name}")
        run.operator = "; ".join(actions) if actions else "none needed"
        if actions:
            run.repaired_at = time.time()

    def fault_at(self, when: float) -> int | None:
        """The index of the last fault injected before ``when`` (less ``MARGIN``)."""
        index = None
        for number, run in enumerate(self.run.faults):
            if run.t - MARGIN <= when:
                index = number
        return index

    # -- the whole run
    def execute(self) -> SystemRun:
        system, args = self.system, self.args
        log(f"{system.name}: starting the stack in {self.stack.dir} "
            f"(redis :{self.stack.redis_port}, web :{self.stack.web_port})")
        self.run.t0 = time.time()
        self.run.load_average = os.getloadavg()
        system.start()
        if not _wait(lambda: web_ready(self.stack.web_url), 90):
            raise SystemExit(f"{system.name}: the web app did not answer within 90 s")
        self.enqueuer.start()
        if not self.wait_healthy(90):
            raise SystemExit(f"{system.name}: the stack did not get healthy within 90 s")
        log(f"{system.name}: healthy; faults every {self.window:g} s")
        for fault in args.faults:
            if not self.wait_healthy(30):
                log(f"{system.name}: not healthy before {fault}; going on")
            run, recovered = self.inject(fault)
            self.run.faults.append(run)
            log(f"{system.name}: {fault}: {run.target}")
            start = time.monotonic()
            watch_redis = fault in ("redis-kill", "redis-crash-loop", "supervisor-kill")
            while True:
                elapsed = time.monotonic() - start
                if watch_redis and run.redis_back_in is None and time.time() > run.t + 0.05 \
                        and redis_answers(self.stack.redis_port):
                    run.redis_back_in = time.time() - run.t
                if run.back_in is None:
                    when = recovered()
                    if when is not None:
                        run.back_in = max(0.0, when - run.t)
                if elapsed >= self.window and run.back_in is not None:
                    break
                if elapsed >= 2 * self.window:
                    break
                time.sleep(0.1)
            run.left_over = leftovers(system)
            healthy = self.healthy()
            if run.back_in is None or not healthy or self.frozen or run.left_over:
                self.repair(run)
                if run.back_in is None:
                    run.notes.append(f"not back within {2 * self.window:g} s")
            log(f"{system.name}: {fault}: back in {fmt(run.back_in)}, left over "
                f"{len(run.left_over)}, operator: {run.operator or '-'}")
        self.enqueuer.stop()
        log(f"{system.name}: {len(self.enqueuer.accepted)} tasks accepted; draining")
        accepted = self.enqueuer.accepted
        _wait(lambda: set(accepted) <= set(self.results.done_numbers()), args.drain)
        # the interrupted tasks: when they were done
        for run in self.run.faults:
            run.interrupted = self.interrupted(run)
            ends = [min(line.t for line in self.results.dones[n] if line.t > run.t)
                    for n in run.interrupted
                    if any(line.t > run.t for line in self.results.dones.get(n, []))]
            if run.interrupted and len(ends) == len(run.interrupted):
                run.interrupted_done_in = max(ends) - run.t
        self.run.web_results = web_results(self.stack.web_url)
        self.finish()
        return self.run

    def finish(self) -> None:
        system = self.system
        log(f"{system.name}: stopping")
        self.run.stopped_in_time = system.stop(self.args.stop_timeout)
        time.sleep(1.0)
        rest = stack_processes()
        self.run.final_left_over = sorted(describe(p) for p in rest.values())
        kill_all(rest.values())
        self.results.close()
        done = self.results.done_numbers()
        accepted = self.enqueuer.accepted
        self.run.accepted = len(accepted)
        self.run.done = len(set(accepted) & set(done))
        self.run.lost = len(set(accepted) - set(done))
        self.run.duplicated = sum(1 for n in accepted if done.get(n, 0) > 1)
        self.run.completions = sorted(min(line.t for line in self.results.dones[n])
                                      for n in done)
        # A task run twice was in flight at the fault that made it run again: the last
        # fault before its first run ended (a task is acknowledged as it ends). A lost
        # task: the last fault before it was accepted.
        for n in accepted:
            if done.get(n, 0) > 1:
                index = self.fault_at(min(line.t for line in self.results.dones[n]))
                if index is not None:
                    self.run.faults[index].duplicated += 1
                    self.run.faults[index].duplicated_tasks.append(n)
            elif n not in done:
                index = self.fault_at(accepted[n] + 1.0)
                if index is not None:
                    fault = self.run.faults[index]
                    fault.lost += 1
                    fault.lost_tasks.append(n)
                    started = bool(self.results.starts.get(n))
                    before = fault.t - accepted[n]
                    fault.lost_detail.append({"n": n, "accepted_before": round(before, 3),
                                              "started": started})
                    fault.notes.append(
                        f"task {n} was accepted {before:+.3f} s before the fault, "
                        f"{'started' if started else 'never started'}")


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def summarize(names: Iterable[str]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for name in names:
        counts[name] += 1
    return ", ".join(f"{name} x{count}" if count > 1 else name
                     for name, count in sorted(counts.items()))


def fmt(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds:.1f} s"


# ---------------------------------------------------------------- the table

def table(runs: list[SystemRun]) -> str:
    header = ("fault", "system", "back in", "interrupted done", "lost", "dup", "left over",
              "operator")
    rows = [header]
    faults = [f.fault for f in runs[0].faults] if runs else []
    for index, fault in enumerate(faults):
        for run in runs:
            if index >= len(run.faults):
                continue
            f = run.faults[index]
            interrupted = (f"{fmt(f.interrupted_done_in)} ({len(f.interrupted)})"
                           if f.interrupted else "-")
            rows.append((LABELS[fault], run.system, fmt(f.back_in), interrupted,
                         str(f.lost), str(f.duplicated), str(len(f.left_over)),
                         "-" if f.operator in ("", "none needed") else "yes"))
    for run in runs:
        rows.append(("whole run (after the final stop)", run.system, "", "",
                     f"{run.lost}/{run.accepted}", str(run.duplicated),
                     str(len(run.final_left_over)), ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for number, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) if i < 2 else cell.rjust(width)
                               for i, (cell, width) in enumerate(zip(row, widths, strict=True)))
                     .rstrip())
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def details(runs: list[SystemRun]) -> str:
    out = []
    for run in runs:
        out.append(f"{run.system}:")
        for f in run.faults:
            parts = [f"target {f.target}"]
            if f.redis_back_in is not None:
                parts.append(f"Redis answered again after {f.redis_back_in:.1f} s")
            if f.interrupted:
                parts.append(f"interrupted tasks {f.interrupted}")
            if f.lost_tasks:
                parts.append(f"lost tasks {f.lost_tasks}")
            if f.duplicated_tasks:
                parts.append(f"run twice {f.duplicated_tasks}")
            if f.left_over:
                parts.append(f"left over: {summarize(f.left_over)}")
            if f.operator and f.operator != "none needed":
                parts.append(f"operator: {f.operator}")
            parts += f.notes
            out.append(f"  {f.fault}: " + "; ".join(parts))
        if run.final_left_over:
            out.append(f"  after the final stop, left over: {summarize(run.final_left_over)}")
        if not run.stopped_in_time:
            out.append("  the final stop did not end in time: the supervisor was killed")
    return "\n".join(out)


# ---------------------------------------------------------------- main

def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import importlib.metadata
    import platform

    versions = {}
    for dist in ("otp_py", "celery", "kombu", "redis", "billiard", "uvicorn", "supervisor"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[dist] = importlib.metadata.version(dist)
    redis = subprocess.run(["redis-server", "--version"], capture_output=True, text=True,
                           check=False).stdout.split()
    versions["redis-server"] = next((w.split("=")[1] for w in redis if w.startswith("v=")),
                                    "?")
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "kernel": platform.release(), "versions": versions}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m examples.celery_stack.chaos",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120,
                        help="length of the fault phase per system (default 120)")
    parser.add_argument("--systems", default="otp_py,supervisord",
                        help="comma-separated: otp_py, supervisord (default both)")
    parser.add_argument("--faults", default=",".join(FAULTS),
                        help=f"comma-separated, in order (default {','.join(FAULTS)})")
    parser.add_argument("--rate", type=float, default=8.0, help="tasks per second (8)")
    parser.add_argument("--work", type=float, default=0.2, help="seconds per task (0.2)")
    parser.add_argument("--crash-starts", type=int, default=5,
                        help="failed starts of redis-server in the crash loop (5)")
    parser.add_argument("--min-window", type=float, default=8.0,
                        help="shortest window per fault, seconds (8)")
    parser.add_argument("--drain", type=float, default=45.0,
                        help="seconds to wait at the end for every task to be done (45)")
    parser.add_argument("--stop-timeout", type=float, default=60.0,
                        help="seconds the final stop may take (60)")
    parser.add_argument("--freeze-idle", action="store_true",
                        help="freeze a worker whether or not it waits for a message (it "
                        "may swallow one: see worker-freeze in the README)")
    parser.add_argument("--python-tree", action="store_true",
                        help="otp_py runs tree.py's tree instead of tree.toml")
    parser.add_argument("--json", help="write every measurement to this file")
    parser.add_argument("--plot", help="draw tasks completed per second to this PNG")
    parser.add_argument("--rst", help="write the table for the docs page to this file")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directories (logs) and print them")
    args = parser.parse_args(argv)
    args.systems = [s for s in args.systems.split(",") if s]
    args.faults = [f for f in args.faults.split(",") if f]
    for name in args.systems:
        if name not in ("otp_py", "supervisord"):
            parser.error(f"unknown system {name!r}: otp_py or supervisord")
    for name in args.faults:
        if name not in FAULTS:
            parser.error(f"unknown fault {name!r}: one of {', '.join(FAULTS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if shutil.which("redis-server") is None:
        print("chaos: redis-server is not installed (apt-get install redis-server)",
              file=sys.stderr)
        return 2
    become_subreaper()
    # a SIGTERM ends the run through the finally below, which kills the stack
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    runs = []
    directories = []
    try:
        for name in args.systems:
            directory = tempfile.mkdtemp(prefix=f"celery-stack-{name}-")
            directories.append(directory)
            stack = Stack.new(directory)
            system = (OtpSystem(stack, use_python_tree=args.python_tree) if name == "otp_py"
                      else SupervisordSystem(stack))
            driver = Driver(system, args)
            try:
                runs.append(driver.execute())
            finally:
                if system.alive():
                    system.stop(10)
                kill_all(stack_processes().values())
    finally:
        kill_all(stack_processes().values())
        for directory in directories:
            if args.keep:
                print(f"kept {directory}", file=sys.stderr)
            else:
                shutil.rmtree(directory, ignore_errors=True)
    from examples.celery_stack import report

    data = {"args": dict(vars(args)), "machine": machine(),
            "runs": [asdict(run) for run in runs]}
    print(table(runs))
    print()
    print(details(runs))
    print()
    print(report.machine_line(data, runs))
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=1) + "\n")
    if args.rst:
        Path(args.rst).write_text(report.rst(data))
    if args.plot:
        from examples.celery_stack.plot import plot

        plot(data["runs"], args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
