"""Replay a conformance scenario on otp_py's real runtime and print its trace.

    python tests/conformance/replay.py SCENARIO.json [--speed N]

The scenario's tree is built with otp_py; its workers are asyncio-task children that
report their starts and stops, fail the start attempts the scenario lists, and end
with the reason the timeline gives. The timeline runs at its given times (divided by
``--speed``; intensity periods are scaled alike, so decisions do not change). The
trace is printed in the recorded format (see the conformance README), so it can be
compared line for line with what Erlang/OTP 25 printed for the same scenario.

Exits 2 with a one-line message for a file that is not a valid scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scenario as sc

import otp_py as otp
from otp_py import reports as rp
from otp_py.backends.reasons import ExitWith


class _StartFailed(Exception):
    pass


class _Worker:
    """The replay's worker, as conf_worker.erl: it counts its start attempts per path,
    takes ``start_ms`` in each, fails or ignores the scripted ones, writes its own
    start/start_error/start_ignore/terminate lines, and ends with the reason the
    timeline gives. Stopped gracefully, it writes ``terminate PATH shutdown`` when the
    request arrives and takes ``stop_ms`` to finish; killed (at once, or during that
    cleanup), it writes ``terminate PATH killed``."""

    def __init__(self, replay: Replay, path: str, script: sc.Script) -> None:
        self.replay = replay
        self.path = path  # for a simple_one_for_one template, the supervisor's path
        self.script = script

    async def __call__(self, *names: str) -> None:
        replay, script = self.replay, self.script
        path = sc.worker_path(self.path, names)
        attempt = replay.attempts[path] = replay.attempts.get(path, 0) + 1
        if script.start_ms:
            await asyncio.sleep(script.start_ms / 1000.0 / replay.speed)
        if attempt in script.fail:
            replay.lines.append(f"start_error {path}")
            raise _StartFailed("start_failed")
        if attempt in script.ignore:
            replay.lines.append(f"start_ignore {path}")
            raise otp.Ignore()
        ending: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        replay.running[path] = ending
        replay.lines.append(f"start {path}")
        try:
            otp.notify_ready()
            try:
                reason = await ending
            except asyncio.CancelledError as exc:
                await self._stopped(path, exc)
                raise
        finally:
            if replay.running.get(path) is ending:
                del replay.running[path]
        _end_with(reason)

    async def _stopped(self, path: str, exc: asyncio.CancelledError) -> None:
        """The supervisor stops this worker: the task backend cancels it with
        ``"shutdown"`` (a graceful stop) or ``"killed"``."""
        lines = self.replay.lines
        if exc.args[:1] == ("killed",):
            lines.append(f"terminate {path} killed")
            return
        lines.append(f"terminate {path} shutdown")
        if self.script.stop_ms:
            try:
                await asyncio.sleep(self.script.stop_ms / 1000.0 / self.replay.speed)
            except asyncio.CancelledError:  # its shutdown timeout ran out: killed
                lines.append(f"terminate {path} killed")


def _end_with(reason: otp.reasons.ExitReason) -> None:
    if isinstance(reason, otp.reasons.Normal):
        return
    if isinstance(reason, otp.reasons.Shutdown):
        raise otp.Shutdown(reason.term) if reason.has_term else otp.Shutdown()
    if isinstance(reason, otp.reasons.Killed):  # a kill step: killed from outside
        raise ExitWith(reason)
    raise RuntimeError(sc.render_reason(reason))


class Replay:
    def __init__(self, scenario: sc.Scenario, speed: float = 1.0) -> None:
        self.scenario = scenario
        self.speed = speed
        self.lines: list[str] = []
        self.attempts: dict[str, int] = {}
        self.running: dict[str, asyncio.Future[Any]] = {}
        self.ids: dict[str, str] = {}  # "sup/w1" (a dynamic child's name) -> its id "w#1"

    def make_worker(self, path: str, fields: dict[str, Any], script: sc.Script) -> otp.ChildSpec:
        return otp.ChildSpec(start=_Worker(self, path, script), backend="asyncio", ready=True,
                             start_timeout=otp.INFINITY, **fields)

    def spec(self) -> otp.SupervisorSpec:
        tree = sc.build_tree(self.scenario, self.make_worker)
        return _scaled(tree, self.speed)

    def on_report(self, report: rp.Report) -> None:
        # Workers write their own lines; supervisors' starts and ends come from reports.
        if isinstance(report, rp.SupervisorStarting):
            self.lines.append("start " + ("/".join(report.path[1:]) or "root"))
        elif isinstance(report, rp.SupervisorExited):
            where = "/".join(report.path[1:]) or "root"
            self.lines.append(f"down {where} {sc.render_reason(report.reason)}")

    async def run(self) -> list[str]:
        spec = self.spec()
        loop = asyncio.get_running_loop()
        await self._align(loop)
        t0 = loop.time()
        started = False
        try:
            async with otp.supervise(spec, random=lambda: 0.5, on_report=self.on_report) as sup:
                started = True
                await self._timeline(sup, t0)
        except otp.SupervisorExitError as exc:
            if started:  # the root gave up during the timeline: its trace says so
                pass
            else:
                self.lines.append(f"start_failed root {sc.render_reason(exc.reason)}")
        return sc.normalize(self.lines, self.scenario)

    async def _align(self, loop: asyncio.AbstractEventLoop) -> None:
        """For ``align_ms``: start the root that far into a whole unit of the clock the
        restart windows stamp with (one second, divided by ``--speed``)."""
        align = self.scenario.align_ms
        if align is None:
            return
        unit = 1.0 / self.speed
        now = loop.time()
        target = (math.floor(now / unit) + 1) * unit + align / 1000.0 / self.speed
        await asyncio.sleep(max(0.0, target - now - 0.002))
        while loop.time() < target:
            await asyncio.sleep(0)

    async def _timeline(self, sup: otp.AsyncSupervisor, t0: float) -> None:
        loop = asyncio.get_running_loop()
        for step in self.scenario.timeline:
            delay = t0 + step["at"] / 1000.0 / self.speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if not sup.running:
                return
            await self._step(sup, step)
        last = self.scenario.timeline[-1]["at"] if self.scenario.timeline else 0
        delay = t0 + (last + 200) / 1000.0 / self.speed - loop.time()
        if delay > 0 and sup.running:
            await asyncio.sleep(delay)

    async def _step(self, sup: otp.AsyncSupervisor, step: dict[str, Any]) -> None:
        if "crash" in step or "exit" in step or "kill" in step:
            target = step.get("crash") or step.get("exit") or step["kill"]
            reason = (otp.reasons.Killed() if "kill" in step
                      else sc.parse_reason(step.get("reason", "boom")))
            ending = self.running.get(target)
            if ending is None or ending.done():
                self.lines.append(f"noproc {target}")
            else:
                self.lines.append(f"exit {target} {sc.render_reason(reason)}")
                ending.set_result(reason)
            await _settle()
        elif "call" in step:
            await self._call(sup, step)
        elif step.get("stop"):
            await sup.stop()

    async def _call(self, sup: otp.AsyncSupervisor, step: dict[str, Any]) -> None:
        fun, args, where = step["call"], step.get("args", []), step.get("sup", "root")
        dynamic = self.scenario.strategy_of(where) == "simple_one_for_one"
        handle = sup if where == "root" else sup.at(where)
        label = where
        value: Any = None
        error: BaseException | None = None
        try:
            if fun == "start_child" and dynamic:
                label = ",".join(args)
                value = await handle.start_child(args=tuple(args))
                if value is not None:  # (None: it ignored its start, nothing is kept)
                    self.ids[sc._join(where, args[0])] = value
            elif fun == "start_child":
                label = args[0]["id"]
                child = sc.build_child(args[0], sc._join(where, args[0]["id"]),
                                       self.make_worker)
                value = await handle.start_child(_scaled(child, self.speed))
            elif fun == "check_childspecs":
                label = "[" + ",".join(c["id"] for c in args) + "]"
                self.lines.append(f"call {fun} {label} -> "
                                  f"{sc.check_childspecs(args, self.make_worker)}")
                return
            elif fun == "which_children":
                value = await handle.which_children()
            elif fun == "count_children":
                value = await handle.count_children()
            else:
                label = child_id = args[0]
                if dynamic and fun != "get_childspec":
                    # a child is addressed by its name; one never started by that name
                    # (or forgotten) is addressed as the template is (OTP: a dead pid)
                    child_id = self.ids.get(sc._join(where, args[0]),
                                            self.scenario.template_id(where))
                value = await getattr(handle, fun)(child_id)
        except otp.OtpError as exc:
            error = exc
        result = sc.render_result(fun, value, error, dynamic=dynamic, speed=self.speed)
        self.lines.append(f"call {fun} {label} -> {result}")


async def _settle() -> None:
    # Let the consequences of a step (exit, restart) run before the next line.
    for _ in range(3):
        await asyncio.sleep(0)


def _scaled(spec: Any, speed: float) -> Any:
    """``spec`` with every intensity period and shutdown timeout divided by ``speed``."""
    import attrs

    if isinstance(spec, otp.SupervisorSpec):
        window = spec.intensity
        assert isinstance(window, otp.SlidingWindow)
        return attrs.evolve(
            spec,
            intensity=otp.SlidingWindow(window.max_restarts, window.period / speed,
                                        resolution=1.0 / speed),
            children=[_scaled(c, speed) for c in spec.children],
            shutdown=_scaled_timeout(spec.shutdown, speed),
        )
    return attrs.evolve(spec, shutdown=_scaled_timeout(spec.shutdown, speed))


def _scaled_timeout(value: Any, speed: float) -> Any:
    if value is otp.BRUTAL_KILL or value == otp.INFINITY:
        return value
    return value / speed


def replay(path: str | Path, speed: float = 1.0) -> list[str]:
    """The trace of the scenario at ``path`` (raises ScenarioError if invalid)."""
    scenario = sc.load(path)
    return asyncio.run(Replay(scenario, speed).run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", help="a scenario file (JSON)")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="run the timeline N times faster (default 1)")
    options = parser.parse_args(argv)
    if options.speed <= 0:
        print("replay: --speed must be positive", file=sys.stderr)
        return 2
    try:
        lines = replay(options.scenario, options.speed)
    except sc.ScenarioError as exc:
        print(f"replay: invalid scenario: {exc}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
