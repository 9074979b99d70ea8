"""Replay a conformance scenario on the pure decision core (no runtime, fake clock).

This checks the core alone: workers are simulated, as conf_worker.erl behaves. Each
counts its start attempts per path, takes ``start_ms`` (of fake time) in each, fails
or ignores the scripted ones, and writes its own lines; stopped gracefully it takes
``stop_ms`` to end. ``replay.py`` replays the same scenarios on the real runtime.
Both must print the trace Erlang/OTP recorded.

    python tests/conformance/sim_replay.py SCENARIO.json

Exits 2 with a one-line message for a file that is not a valid scenario.
"""

from __future__ import annotations

import heapq
import itertools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scenario as sc

import otp_py as otp
from otp_py import reports as rp
from otp_py._core import events as ev
from otp_py._core.simulate import _Sim
from otp_py._core.supervisor import SupervisorCore

_START_FAILED = otp.reasons.Abnormal(sc.ErlangTerm("start_failed"))


class _SimWorker:
    """A worker spec's start in the simulation: never run, it carries the worker's
    path (a simple_one_for_one template's: its supervisor's) and its script."""

    def __init__(self, path: str, script: sc.Script) -> None:
        self.path = path
        self.script = script

    async def __call__(self, *names: str) -> None:  # pragma: no cover - never run
        pass


class SimReplay:
    """One scenario on the core: the simulator's mailbox and timers, with workers
    scripted as the recorder's and a timeline that waits for busy supervisors."""

    def __init__(self, scenario: sc.Scenario) -> None:
        self.scenario = scenario
        self.spec = sc.build_tree(scenario, self._make_worker)
        self.sim = _Sim(self.spec, None, {})
        self._execute_action = self.sim.execute
        self._start_nested = self.sim.start
        self._stop_nested = self.sim.stop
        self.sim.execute = self._execute  # type: ignore[method-assign]
        self.sim.start = self._start  # type: ignore[method-assign]
        self.sim.stop = self._stop  # type: ignore[method-assign]
        self.lines: list[str] = []
        self.attempts: dict[str, int] = {}
        self.live: dict[str, tuple[SupervisorCore, int]] = {}  # path -> running worker
        self.workers: dict[tuple[int, int], tuple[str, sc.Script]] = {}
        self.stopping: dict[tuple[int, int], int] = {}  # worker in its stop_ms -> token
        self.pending: list[tuple[float, int, Callable[[], None]]] = []
        self.cancelled: set[int] = set()
        self.seq = itertools.count()
        self.ids: dict[str, str] = {}  # "sup/w1" -> the dynamic child's id "w#1"
        self.offset = (scenario.align_ms or 0) / 1000.0

    @staticmethod
    def _make_worker(path: str, fields: dict[str, Any], script: sc.Script) -> otp.ChildSpec:
        return otp.ChildSpec(start=_SimWorker(path, script), backend="asyncio", **fields)

    # -- the simulator's hooks

    def _execute(self, core: SupervisorCore, action: ev.Action) -> None:
        if isinstance(action, ev.Emit):  # supervisors' lines, as they happen
            report = action.report
            where = "/".join(report.path[1:]) or "root"
            if isinstance(report, rp.SupervisorStarting):
                self.lines.append(f"start {where}")
            elif isinstance(report, rp.SupervisorExited):
                self.lines.append(f"down {where} {sc.render_reason(report.reason)}")
        self._execute_action(core, action)

    def _start(self, core: SupervisorCore, action: ev.StartChild) -> None:
        if action.spec.is_supervisor:
            self._start_nested(core, action)
            return
        worker: _SimWorker = action.spec.start
        path = sc.worker_path(worker.path, tuple(action.spec.args))
        attempt = self.attempts[path] = self.attempts.get(path, 0) + 1
        script = worker.script

        def outcome() -> None:
            if attempt in script.fail:
                self.lines.append(f"start_error {path}")
                self.sim.post(core, ev.ChildStartFailed(action.ref, _START_FAILED))
            elif attempt in script.ignore:
                self.lines.append(f"start_ignore {path}")
                self.sim.post(core, ev.ChildIgnored(action.ref))
            else:
                self.lines.append(f"start {path}")
                self.live[path] = (core, action.ref)
                self.workers[(id(core), action.ref)] = (path, script)
                self.sim.post(core, ev.ChildUp(action.ref))

        if script.start_ms:
            self._later(script.start_ms / 1000.0, outcome)
        else:
            outcome()

    def _stop(self, core: SupervisorCore, ref: int, *, kill: bool) -> None:
        key = (id(core), ref)
        if key in self.sim.sup_of_ref:
            self._stop_nested(core, ref, kill=kill)
            return
        entry = self.workers.get(key)
        if entry is None:
            return  # it has already ended
        path, script = entry
        if kill:
            token = self.stopping.pop(key, None)
            if token is not None:
                self.cancelled.add(token)  # killed during its cleanup
            self.lines.append(f"terminate {path} killed")
            self._ended(core, ref, otp.reasons.Killed())
            return
        if key in self.stopping:
            return
        self.lines.append(f"terminate {path} shutdown")
        if script.stop_ms:
            def done() -> None:
                self.stopping.pop(key, None)
                self._ended(core, ref, otp.reasons.Shutdown())

            self.stopping[key] = self._later(script.stop_ms / 1000.0, done)
        else:
            self._ended(core, ref, otp.reasons.Shutdown())

    def _ended(self, core: SupervisorCore, ref: int, reason: otp.reasons.ExitReason) -> None:
        path, _ = self.workers.pop((id(core), ref))
        if self.live.get(path) == (core, ref):
            del self.live[path]
        self.sim.post(core, ev.ChildDown(ref, reason))

    # -- time

    def _later(self, delay: float, fn: Callable[[], None]) -> int:
        token = next(self.seq)
        heapq.heappush(self.pending, (self.sim.now + delay, token, fn))
        return token

    def _next_time(self) -> float | None:
        times = [t[0] for t in self.sim.timers[:1]] + [p[0] for p in self.pending[:1]]
        return min(times) if times else None

    def _run_one(self) -> bool:
        """Run the earliest timer or worker event; False if there is none."""
        sim = self.sim
        if self.pending and (not sim.timers or self.pending[0][0] <= sim.timers[0][0]):
            at, token, fn = heapq.heappop(self.pending)
            sim.now = max(sim.now, at)
            if token in self.cancelled:
                self.cancelled.discard(token)
            else:
                fn()
        elif sim.timers:
            at, _, core, token = heapq.heappop(sim.timers)
            sim.now = max(sim.now, at)
            if (id(core), token) in sim.cancelled:
                sim.cancelled.discard((id(core), token))
            else:
                sim.post(core, ev.TimerFired(token))
        else:
            return False
        sim.run_mailbox()
        return True

    def advance_to(self, when: float) -> None:
        while True:
            at = self._next_time()
            if at is None or at > when:
                break
            self._run_one()
        self.sim.now = max(self.sim.now, when)

    def _until(self, done: Callable[[], bool]) -> None:
        """Let fake time run until ``done()`` (a busy supervisor answering)."""
        while not done() and self._run_one():
            pass

    # -- the timeline

    def run(self) -> list[str]:
        sim = self.sim
        sim.now = self.offset  # the root starts align_ms into a whole second
        sim.post(sim.root, ev.Init())
        sim.run_mailbox()
        self._until(lambda: sim.root.state != "starting")
        if sim.exit_reason is not None:
            self.lines.append(f"start_failed root {sc.render_reason(sim.exit_reason)}")
            return sc.normalize(self.lines, self.scenario)
        for step in self.scenario.timeline:
            self.advance_to(self.offset + step["at"] / 1000.0)
            if sim.exit_reason is not None:
                break
            self._step(step)
        last = self.scenario.timeline[-1]["at"] if self.scenario.timeline else 0
        self.advance_to(self.offset + (last + 200) / 1000.0)
        if sim.exit_reason is None and sim.root.state == "running":
            sim.post(sim.root, ev.Stop())
            sim.run_mailbox()
        self._until(lambda: sim.exit_reason is not None)
        return sc.normalize(self.lines, self.scenario)

    def _step(self, step: dict[str, Any]) -> None:
        sim = self.sim
        if "crash" in step or "exit" in step or "kill" in step:
            target = step.get("crash") or step.get("exit") or step["kill"]
            reason = (otp.reasons.Killed() if "kill" in step
                      else sc.parse_reason(step.get("reason", "boom")))
            running = self.live.get(target)
            if running is None:
                self.lines.append(f"noproc {target}")
                return
            self.lines.append(f"exit {target} {sc.render_reason(reason)}")
            core, ref = running
            if (id(core), ref) not in self.stopping:  # (one in its cleanup is busy)
                self._ended(core, ref, reason)
                sim.run_mailbox()
        elif "call" in step:
            self._call(step)
        elif step.get("stop"):
            sim.post(sim.root, ev.Stop())
            sim.run_mailbox()

    def _call(self, step: dict[str, Any]) -> None:
        fun, args, sup = step["call"], step.get("args", []), step.get("sup", "root")
        dynamic = self.scenario.strategy_of(sup) == "simple_one_for_one"
        label = sup
        request: ev.Request
        if fun == "check_childspecs":
            label = "[" + ",".join(c["id"] for c in args) + "]"
            self.lines.append(f"call {fun} {label} -> "
                              f"{sc.check_childspecs(args, self._make_worker)}")
            return
        if fun == "start_child" and dynamic:
            label = ",".join(args)
            request = ev.StartChildRequest(extra_args=tuple(args))
        elif fun == "start_child":
            label = args[0]["id"]
            try:
                request = ev.StartChildRequest(spec=sc.build_child(
                    args[0], sc._join(sup, args[0]["id"]), self._make_worker))
            except otp.SpecError as exc:  # refused where it is written
                self.lines.append(f"call {fun} {label} -> {sc.render_error(exc)}")
                return
        elif fun == "which_children":
            request = ev.WhichChildren()
        elif fun == "count_children":
            request = ev.CountChildren()
        else:
            label = child_id = args[0]
            if dynamic and fun != "get_childspec":
                child_id = self.ids.get(sc._join(sup, args[0]), self.scenario.template_id(sup))
            request = {"terminate_child": ev.TerminateChild,
                       "restart_child": ev.RestartChild,
                       "delete_child": ev.DeleteChild,
                       "get_childspec": ev.GetChildSpec}[fun](child_id)
        core = self.sim.core_at("" if sup == "root" else sup)
        if core is None:
            return
        request_id = next(self.sim.request_ids)
        self.sim.post(core, ev.Call(request_id, request))
        self.sim.run_mailbox()
        self._until(lambda: request_id in self.sim.replies)  # a busy one answers later
        reply = self.sim.replies.pop(request_id, None)
        if reply is None:
            return
        if fun == "start_child" and dynamic and reply.error is None and reply.value:
            self.ids[sc._join(sup, args[0])] = reply.value
        result = sc.render_result(fun, reply.value, reply.error, dynamic=dynamic)
        self.lines.append(f"call {fun} {label} -> {result}")


def trace(scenario: sc.Scenario) -> list[str]:
    """The trace of ``scenario`` replayed on the pure core."""
    return SimReplay(scenario).run()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: sim_replay.py SCENARIO.json", file=sys.stderr)
        return 2
    try:
        scenario = sc.load(argv[1])
    except sc.ScenarioError as exc:
        print(f"sim_replay: invalid scenario: {exc}", file=sys.stderr)
        return 2
    for line in trace(scenario):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
