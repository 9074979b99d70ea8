"""The chaos soak: a three-level tree of every backend under a seeded fault injector.

Out of the default run (marked ``slow``). Run it for ten minutes with::

    OTP_PY_SOAK_SECONDS=600 python -m pytest -m slow tests/soak -s

``OTP_PY_SOAK_SECONDS`` (default 60) is how long faults are injected,
``OTP_PY_SOAK_SEED`` the injector's seed, and ``OTP_PY_SOAK_REPORT`` a file to write
the summary table to (reStructuredText; docs/soak.rst includes
``docs/soak/summary.rst.inc``).

The injector kills (SIGKILL), crashes (an exception, or exit status 3 for commands)
and hangs (SIGSTOP or a held GIL for processes, a silent heartbeat for threads, a
blocked event loop for tasks) random children, and now and then crashes one
supervisor's children faster than its intensity allows, to make it escalate. It also
commits what a hostile child or a bad day does: a task that swallows every
cancellation while its one_for_all supervisor restarts it; a program that vanishes,
so that every restart fails at once (for 0.3 s, at full speed: 100,000 restarts a
second are allowed there); a child that floods its standard error while the
supervisor's own standard error is a pipe nobody reads; a child that leaves a daemon
behind (double fork and ``setsid``, out of its process group) and crashes; and a
SIGKILL of the guardian process. Like an operator, it adds back the temporary
children that were forgotten and restarts the transient supervisor that gave up.

Invariants, checked continuously by :class:`tests.soak.checker.Checker` (every
report) and at each checkpoint (every ``CHECK_EVERY`` seconds the injector pauses,
the tree settles, and):

* every decision is what the restart types and strategies require, and no supervisor
  restarts more often than its intensity allows before it escalates;
* the process table holds exactly the running process and command children;
* the file descriptors and threads of the supervising process are what they were at
  the first checkpoint (and, after the stop, what they were before the start);
* the supervising process's memory does not keep growing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest

import otp_py as otp
from otp_py import reasons
from tests.conftest import _descendants, _fds, _helper_pids
from tests.soak import workers
from tests.soak.checker import Checker
from tests.soak.tree import soak_tree

DURATION = float(os.environ.get("OTP_PY_SOAK_SECONDS", "60"))
SEED = int(os.environ.get("OTP_PY_SOAK_SEED", "20240"))
REPORT = os.environ.get("OTP_PY_SOAK_REPORT")

CHECK_EVERY = 30.0
"""Seconds between checkpoints."""
MEAN_GAP = 0.5
"""Mean seconds between two injections (exponentially distributed)."""
MIN_UPTIME = 0.5
"""A child is a target once it has run this long (its signal handlers are set)."""
SETTLE = 30.0
"""How long a checkpoint waits for the tree to settle."""
MEMORY_GROWTH = 16 * 2**20
"""The most the supervising process's RSS may grow from the first checkpoint past
warm-up to the end of the soak."""

def specs_by_path(spec: otp.SupervisorSpec,
                  path: tuple[str, ...] = ()) -> dict[tuple[str, ...], otp.SupervisorSpec]:
    path = path or (spec.id,)
    found = {path: spec}
    for child in spec.children:
        if child.is_supervisor:
            found.update(specs_by_path(child, (*path, child.id)))
    return found


Row = tuple[tuple[str, ...], otp.ChildInfo]  # (the supervisor's path, the child)


def walk(sup: otp.Supervisor) -> list[Row]:
    """Every child of every running supervisor of the tree."""
    rows: list[Row] = []

    def visit(relative: str, path: tuple[str, ...]) -> None:
        try:
            children = sup.which_children(relative)
        except otp.SupervisorNotRunningError:
            return  # it is being restarted
        for info in children:
            rows.append((path, info))
            if info.is_supervisor and info.state == "running":
                visit(f"{relative}/{info.id}" if relative else info.id, (*path, info.id))

    visit("", ("root",))
    return rows


def relative(path: tuple[str, ...]) -> str:
    return "/".join(path[1:])


class Soak:
    """The injector, the checkpoints and the tallies."""

    def __init__(self, sup: otp.Supervisor, checker: Checker, spec: otp.SupervisorSpec,
                 rng: random.Random) -> None:
        self.sup = sup
        self.checker = checker
        self.rng = rng
        self.specs = specs_by_path(spec)
        self.injected: Counter[str] = Counter()
        self.operator: Counter[str] = Counter()
        self.leaks: list[str] = []
        self.rss: list[tuple[float, int]] = []
        self.checkpoints = 0
        self.reference: tuple[int, int] | None = None  # (fds, threads) once settled
        self.began = time.monotonic()
        self.stalled: threading.Event | None = None  # set: stderr is not read
        self.flaky_program = ""
        self.interpreter = ""
        self.flood_answers: list[float] = []  # which_children() during floods, seconds

    # ------------------------------------------------------------- targets

    def running_workers(self) -> list[Row]:
        now = time.monotonic()
        return [(path, info) for path, info in walk(self.sup)
                if not info.is_supervisor and info.state == "running"
                and self.checker.uptime(path, info.id, now) >= MIN_UPTIME]

    # ------------------------------------------------------------- faults

    def inject(self) -> None:
        kind = self.rng.choices(
            ["kill", "crash", "hang", "burst", "operator", "stubborn", "vanish", "flood",
             "escape", "guardian"],
            weights=[30, 35, 20, 5, 10, 3, 3, 5, 5, 2])[0]
        if kind == "burst":
            self.burst()
        elif kind == "operator":
            self.operate()
        elif kind == "stubborn":
            self.stubborn()
        elif kind == "vanish":
            self.vanish()
        elif kind == "guardian":
            self.kill_guardian()
        elif kind in ("flood", "escape"):
            rows = [r for r in self.running_workers() if r[1].pid is not None]
            if rows:
                info = self.rng.choice(rows)[1]
                if kind == "flood":
                    self.flood(info)
                else:
                    self.signal(info.pid, signal.SIGWINCH,
                                f"leaves a daemon and crashes ({info.spec.backend})")
        else:
            rows = self.running_workers()
            if kind == "kill":
                rows = [r for r in rows if r[1].pid is not None]
            elif kind == "hang":
                rows = [r for r in rows if r[1].spec.backend != "command"]
            if rows:
                self.fault(kind, *self.rng.choice(rows))

    def fault(self, kind: str, path: tuple[str, ...], info: otp.ChildInfo) -> None:
        backend = info.spec.backend
        if kind == "kill":
            self.signal(info.pid, signal.SIGKILL, "kill (SIGKILL)")
        elif kind == "crash":
            if backend in ("process", "command"):
                self.signal(info.pid, signal.SIGUSR1, f"crash ({backend})")
            else:
                workers.give((*path, info.id), "crash")
                self.injected[f"crash ({backend})"] += 1
        elif backend == "process":
            if self.rng.random() < 0.5:
                self.signal(info.pid, signal.SIGSTOP, "hang: frozen (SIGSTOP)")
            else:
                self.signal(info.pid, signal.SIGUSR2, "hang: holds the GIL")
        else:
            workers.give((*path, info.id), "hang")
            what = "hang: silent heartbeat" if backend == "thread" else "hang: blocks the loop"
            self.injected[what] += 1

    def signal(self, pid: int | None, signum: int, what: str) -> None:
        if pid is None:
            return
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return  # it ended meanwhile
        self.injected[what] += 1

    # ------------------------------------------------------------- hostile children

    def stubborn(self) -> None:
        """mid_a's task swallows every cancellation; a crash of its process sibling
        makes the one_for_all supervisor stop it: it must give up on it at its
        shutdown timeout (reported unstoppable) and carry on."""
        path = ("root", "mid_a")
        rows = {info.id: info for parent, info in self.running_workers() if parent == path}
        task, proc = rows.get("a_task"), rows.get("a_proc")
        if task is None or proc is None or proc.pid is None:
            return
        self.checker.allow_unstoppable(path, "a_task")
        workers.give((*path, "a_task"), "stubborn")
        if not self._wait(lambda: workers.ORDERS.get((*path, "a_task")) is None, 2.0):
            self.checker.cancel_unstoppable(path, "a_task")
            return
        self.signal(proc.pid, signal.SIGUSR1, "stubborn task: swallows every cancellation")

    def vanish(self) -> None:
        """f_cmd's program disappears and f_cmd is killed: every restart fails at
        once, as fast as the budget allows, while the rest of the tree carries on."""
        rows = [info for parent, info in self.running_workers()
                if parent == ("root", "flaky") and info.pid is not None]
        if not rows or not self.flaky_program:
            return
        link = self.flaky_program
        os.unlink(link)
        failures = self.checker.counts["start failures"]
        try:
            self.signal(rows[0].pid, signal.SIGKILL, "program vanished: restarts fail at once")
            self._wait(lambda: self.checker.counts["start failures"] > failures + 50, 2.0)
            self.sup.which_children()  # the tree answers meanwhile
        finally:
            os.symlink(self.interpreter, link)

    def flood(self, info: otp.ChildInfo) -> None:
        """The child writes megabytes to its standard error while the supervisor's
        own standard error is a pipe that nobody reads for a while."""
        if self.stalled is None:
            return
        self.stalled.set()
        try:
            self.signal(info.pid, signal.SIGHUP, f"floods stderr ({info.spec.backend})")
            began = time.monotonic()
            self.sup.which_children()
            self.flood_answers.append(time.monotonic() - began)
            time.sleep(1.0)  # the pipe stays full for a second
        finally:
            self.stalled.clear()

    def kill_guardian(self) -> None:
        from otp_py.runtime.guardian import Guardian

        guardian = Guardian._shared
        if guardian is not None and guardian.pid is not None:
            self.signal(guardian.pid, signal.SIGKILL, "guardian killed (SIGKILL)")

    def burst(self) -> None:
        """Crash a nested supervisor's process children one after another, each once
        it is back, faster than its intensity allows: it must escalate."""
        path = self.rng.choice([p for p in self.specs if len(p) > 1 and p[-1] != "flaky"])
        spec = self.specs[path]
        limit = spec.intensity.max_restarts
        before = self.checker.escalations.copy()
        self.injected["burst (to escalation)"] += 1
        deadline = time.monotonic() + spec.intensity.period * 0.8
        last: int | None = None
        for _ in range(limit + 1):
            rows = [info for parent, info in walk(self.sup) if parent == path
                    and info.pid is not None and info.state == "running" and info.pid != last]
            if not rows or time.monotonic() > deadline:
                break
            info = self.rng.choice(rows)
            with contextlib.suppress(ProcessLookupError):
                os.kill(info.pid, signal.SIGKILL)  # type: ignore[arg-type]
            last = info.pid
            self._wait(lambda old=info: self._replaced(path, old), 2.0)
        self._wait(lambda: self.checker.escalations != before, 2.0)

    def _replaced(self, path: tuple[str, ...], old: otp.ChildInfo) -> bool:
        for parent, info in walk(self.sup):
            if parent == path and info.id == old.id:
                return info.state == "running" and info.pid != old.pid
        return True  # gone (its supervisor escalated)

    @staticmethod
    def _wait(condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    # ------------------------------------------------------------- the operator

    def operate(self) -> None:
        """Add back forgotten temporary children; restart a transient supervisor that
        gave up (mid_b): what an operator (or a deploy script) would do."""
        rows = walk(self.sup)
        present: dict[tuple[str, ...], dict[str, otp.ChildInfo]] = {}
        for path, info in rows:
            present.setdefault(path, {})[info.id] = info
        for path, children in present.items():
            for spec in self.specs[path].children:
                info = children.get(spec.id)
                if info is None and spec.restart is otp.Restart.TEMPORARY:
                    self.api(path, spec.id, "add back a forgotten temporary child",
                             lambda p=path, s=spec: self.sup.start_child(
                                 s, supervisor=relative(p)))
                elif (info is not None and info.is_supervisor and info.state == "stopped"
                      and spec.restart is otp.Restart.TRANSIENT):
                    self.api(path, spec.id, "restart a supervisor that gave up",
                             lambda p=path, s=spec: self.sup.restart_child(
                                 "/".join((*p[1:], s.id))))

    def api(self, path: tuple[str, ...], child: str, what: str,
            call: Callable[[], Any]) -> None:
        self.checker.allow_api_start(path, child)
        try:
            call()
        except (otp.OtpError, TypeError, ValueError):
            # the supervisor was restarting, or the child came back by itself
            self.checker.cancel_api_start(path, child)
            return
        self.operator[what] += 1

    # ------------------------------------------------------------- checkpoints

    def settle(self) -> list[Row] | None:
        """Complete the tree and wait until every child runs and nothing happens."""
        deadline = time.monotonic() + SETTLE
        while time.monotonic() < deadline:
            self.operate()
            rows = walk(self.sup)
            supervisors = {p for p, _ in rows} | {(*p, i.id) for p, i in rows
                                                   if i.is_supervisor}
            complete = (supervisors == set(self.specs)
                        and all(i.state == "running" for _, i in rows)
                        and len(rows) == sum(len(s.children) for s in self.specs.values()))
            quiet = time.monotonic() - self.checker.last_report > 0.5
            if complete and quiet and self.checker.idle():
                return rows
            time.sleep(0.1)
        self.leaks.append(f"checkpoint {self.checkpoints}: the tree did not settle "
                          f"within {SETTLE} s")
        return None

    def checkpoint(self) -> None:
        self.checkpoints += 1
        rows = self.settle()
        if rows is None:
            return
        expected = {info.pid for _, info in rows if info.pid is not None}
        table = eventually(lambda: processes() == expected, 10.0)
        if not table:
            got = processes()
            self.leaks.append(f"checkpoint {self.checkpoints}: process table "
                              f"{sorted(got)} != running children {sorted(expected)}: "
                              f"extra {describe(got - expected)}, missing "
                              f"{sorted(expected - got)}")
        if not eventually(lambda: not escaped_daemons(), 5.0):
            self.leaks.append(f"checkpoint {self.checkpoints}: daemons that escaped their "
                              f"process group survived their child: "
                              f"{describe(escaped_daemons())}")
        counts = (len(_fds()), threading.active_count())
        if self.reference is None:
            self.reference = counts
        elif not eventually(lambda: (len(_fds()), threading.active_count())
                            == self.reference, 5.0):
            self.leaks.append(f"checkpoint {self.checkpoints}: (fds, threads) "
                              f"{(len(_fds()), threading.active_count())} != "
                              f"{self.reference} at the first checkpoint")
        self.rss.append((time.monotonic() - self.began, psutil.Process().memory_info().rss))

    def memory_growth(self) -> int:
        """RSS growth from the first sample past warm-up (a fifth of the run) to the
        largest sample after it."""
        warm = [rss for at, rss in self.rss if at >= DURATION / 5] or [
            rss for _, rss in self.rss]
        return max(warm) - warm[0] if warm else 0


def processes() -> set[int]:
    """Our live descendants, helpers aside (a zombie counts: it was not reaped)."""
    helpers = _helper_pids()
    return {p.pid for p in _descendants() if p.pid not in helpers}


def escaped_daemons() -> set[int]:
    """Daemons left by escaping workers, wherever they went (init, a subreaper)."""
    found = set()
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"]
        if cmdline and cmdline[0] == workers.DAEMON_NAME:
            found.add(proc.pid)
    return found


def describe(pids: set[int]) -> list[str]:
    out = []
    for pid in sorted(pids):
        try:
            p = psutil.Process(pid)
            out.append(f"{pid} {p.status()} {' '.join(p.cmdline())[:60]}")
        except psutil.Error:
            out.append(f"{pid} ?")
    return out


def eventually(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@contextlib.contextmanager
def stderr_through_a_pipe() -> Iterator[threading.Event]:
    """Make this process's standard error a pipe, copied to the real one by a thread
    that stops reading while the event yielded is set: a supervisor whose stderr is a
    full pipe, as under a stalled log collector."""
    read_end, write_end = os.pipe()
    saved = os.dup(2)
    stalled = threading.Event()
    resumed = threading.Event()
    done = threading.Event()

    def copy() -> None:
        while not done.is_set():
            if stalled.is_set():
                resumed.wait(0.1)
                continue
            try:
                data = os.read(read_end, 65536)
            except OSError:
                return
            if not data:
                return
            with contextlib.suppress(OSError):
                os.write(saved, data)

    os.dup2(write_end, 2)
    copier = threading.Thread(target=copy, name="soak-stderr-copier", daemon=True)
    copier.start()
    try:
        yield stalled
    finally:
        stalled.clear()
        os.dup2(saved, 2)
        os.close(write_end)  # the copier reads what is left, then sees the end
        done.set()
        copier.join(10)
        os.close(read_end)
        os.close(saved)


@contextlib.contextmanager
def flaky_program(directory: str) -> Iterator[str]:
    """A link to the interpreter, for f_cmd; the injector removes and restores it."""
    link = os.path.join(directory, "flaky-python")
    os.symlink(os.path.realpath(sys.executable), link)
    try:
        yield link
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(link)


@contextlib.contextmanager
def quiet_logger() -> Iterator[None]:
    """No log records: with none handled, otp_py builds none, and pytest's log
    capture does not hoard ten minutes of them in the process whose memory we
    measure."""
    logger = logging.getLogger("otp_py")
    propagate = logger.propagate
    logger.propagate = False
    try:
        yield
    finally:
        logger.propagate = propagate


# ------------------------------------------------------------------- the summary


def summary(soak: Soak, checker: Checker, duration: float, wall: float,
            end_leaks: list[str]) -> str:
    def table(title: str, rows: list[tuple[str, Any]]) -> list[str]:
        width = max([len(title), *(len(k) for k, _ in rows)])
        values = [str(v) for _, v in rows]
        vwidth = max([5, *(len(v) for v in values)])
        rule = f"{'=' * width}  {'=' * vwidth}"
        lines = [rule, f"{title.ljust(width)}  {'count'.rjust(vwidth)}", rule]
        lines += [f"{k.ljust(width)}  {v.rjust(vwidth)}" for (k, _), v in zip(rows, values,
                                                                              strict=True)]
        return [*lines, rule, ""]

    injected = sorted(soak.injected.items())
    executed = dict(workers.EXECUTED)
    leaks = len(soak.leaks) + len(end_leaks)
    rss = [r for _, r in soak.rss]
    lines = [
        f"Seed {SEED}: faults injected for {duration:.0f} s; {soak.checkpoints} "
        f"checkpoints (the last once the injection stopped); {wall:.0f} s in all, the "
        f"final stop included.",
        "",
        *table("faults injected", [*injected, ("total", sum(soak.injected.values()))]),
        *table("what the tree did", [
            ("exits decided", sum(checker.exits.values())),
            ("restarts", checker.counts["restarts"]),
            ("restarts retried after a failed start", checker.counts["retries"]),
            ("unstoppable tasks abandoned", checker.counts["unstoppable children abandoned"]),
            ("children started", checker.counts["starts"]),
            ("escalations: leaf supervisors", checker.escalations["leaf"]),
            ("escalations: middle supervisors", checker.escalations["middle"]),
            ("escalations: root", checker.escalations["root"]),
            *((f"operator: {k}", v) for k, v in sorted(soak.operator.items())),
        ]),
        *table("exit reasons", sorted(checker.exits.items())),
        f"While the supervisor's standard error was a full pipe, which_children() "
        f"answered in {max(soak.flood_answers) * 1000:.0f} ms at worst "
        f"({len(soak.flood_answers)} floods)." if soak.flood_answers else
        "No flood was injected.",
        "",
        *table("invariants", [
            ("decision and intensity violations", checker.violations),
            ("leaks found (processes, fds, threads)", leaks),
            ("thread and task orders carried out", sum(executed.values())),
        ]),
        f"Memory of the supervising process (RSS): {rss[0] / 2**20:.1f} MiB at the first "
        f"checkpoint, {rss[-1] / 2**20:.1f} MiB at the last; growth after warm-up "
        f"{soak.memory_growth() / 2**20:.1f} MiB (bound {MEMORY_GROWTH / 2**20:.0f} MiB)."
        if rss else "Memory: no checkpoint settled.",
        "",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------- the test


@pytest.mark.slow
def test_chaos_soak(tmp_path: Any) -> None:
    with stderr_through_a_pipe() as stalled, flaky_program(str(tmp_path)) as program:
        _soak(stalled, program)


def _soak(stalled: threading.Event, program: str) -> None:
    spec = soak_tree(program)
    rng = random.Random(SEED)
    before_fds = _fds()
    before_threads = set(threading.enumerate())
    before_pids = {p.pid for p in _descendants()}
    checker = Checker(spec)
    with quiet_logger():
        began = time.monotonic()
        sup = otp.start(spec, on_report=checker)
        soak = Soak(sup, checker, spec, rng)
        soak.stalled = stalled
        soak.flaky_program = program
        soak.interpreter = os.path.realpath(sys.executable)
        end = began + DURATION
        next_check = began + min(CHECK_EVERY, DURATION / 2)
        try:
            while time.monotonic() < end:
                if not sup.running:
                    break  # the root gave up: reported below
                if time.monotonic() >= next_check:
                    soak.checkpoint()
                    next_check = time.monotonic() + CHECK_EVERY
                soak.inject()
                time.sleep(min(rng.expovariate(1 / MEAN_GAP), 3.0))
            injecting = time.monotonic() - began
            if sup.running:
                soak.checkpoint()
        finally:
            final = sup.stop(60)
        wall = time.monotonic() - began
    end_leaks = []
    if final != reasons.Shutdown():
        end_leaks.append(f"the tree ended with {final!r} (the root gave up?)")
    if not eventually(lambda: processes() - before_pids == set(), 5.0):
        end_leaks.append(f"processes left: {describe(processes() - before_pids)}")
    if not eventually(lambda: not escaped_daemons(), 5.0):
        end_leaks.append(f"escaped daemons left: {describe(escaped_daemons())}")
        for pid in escaped_daemons():
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
    if not eventually(lambda: _fds() == before_fds, 5.0):
        end_leaks.append(f"fds left: {sorted(_fds() - before_fds)}")
    if not eventually(lambda: set(threading.enumerate()) <= before_threads, 5.0):
        end_leaks.append(f"threads left: {set(threading.enumerate()) - before_threads}")
    text = summary(soak, checker, injecting, wall, end_leaks)
    print("\n" + text)
    if REPORT:
        with open(REPORT, "w") as f:
            f.write(text)
    problems = checker.messages + soak.leaks + end_leaks
    assert checker.violations == 0 and not soak.leaks and not end_leaks, "\n".join(problems)
    assert soak.memory_growth() <= MEMORY_GROWTH
    assert sum(soak.injected.values()) > 0
