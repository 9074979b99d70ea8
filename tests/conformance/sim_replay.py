"""Replay a conformance scenario on the pure decision core (no runtime, fake clock).

This checks the core alone: workers are simulated (they start instantly, stop when
asked). ``replay.py`` replays the same scenarios on the real runtime. Both must print
the trace Erlang/OTP recorded.

    python tests/conformance/sim_replay.py SCENARIO.json
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scenario as sc

import otp_py as otp
from otp_py import reports as rp
from otp_py._core import events as ev
from otp_py._core.simulate import _Sim


async def _idle(*names: str) -> None:  # never run: the simulation starts nothing
    pass


def trace(scenario: sc.Scenario) -> list[str]:
    names: dict[str, str] = {}  # "root/w#1" -> "w1"

    def make_worker(path: str, fields: dict[str, Any]) -> otp.ChildSpec:
        return otp.ChildSpec(start=_idle, backend="asyncio", **fields)

    spec = sc.build_tree(scenario, make_worker)
    fails = sc.fail_starts(scenario)
    sim = _Sim(spec, None, {})
    attempts: dict[str, int] = {}
    lines: list[str] = []
    seen = 0

    def path_of(report: Any) -> str:
        parts = [*report.path[1:], report.child_id]
        rel = "/".join(parts)
        return names.get(rel, rel)

    def flush() -> None:
        nonlocal seen
        for report in sim.reports[seen:]:
            worker = not getattr(report, "is_supervisor", False)
            if isinstance(report, rp.SupervisorStarting):
                lines.append("start " + ("/".join(report.path[1:]) or "root"))
            elif isinstance(report, rp.ChildStarted) and worker:
                lines.append(f"start {path_of(report)}")
            elif isinstance(report, rp.ChildStartFailed) and worker:
                lines.append(f"start_error {path_of(report)}")
            elif isinstance(report, rp.ChildTerminated) and worker:
                lines.append(f"terminate {path_of(report)} {sc.render_reason(report.reason)}")
            elif isinstance(report, rp.SupervisorExited):
                where = "/".join(report.path[1:]) or "root"
                lines.append(f"down {where} {sc.render_reason(report.reason)}")
        seen = len(sim.reports)

    # Start failures by attempt, counted per path as the recorder does.
    original_start = sim.start

    def start(core: Any, action: ev.StartChild) -> None:
        if not action.spec.is_supervisor:
            rel = "/".join((*core.path[1:], action.child_id))
            key = names.get(rel, rel)
            key = key if not core.spec.strategy.dynamic else (
                "/".join(core.path[1:]) or "root")
            attempts[key] = attempts.get(key, 0) + 1
            if attempts[key] in fails.get(key, ()):
                sim.post(core, ev.ChildStartFailed(action.ref, otp.reasons.Abnormal(
                    sc.ErlangTerm("start_failed"))))
                return
        original_start(core, action)

    sim.start = start  # type: ignore[method-assign]
    sim.post(sim.root, ev.Init())
    sim.run_mailbox()
    flush()
    if sim.exit_reason is not None:
        lines.append(f"start_failed root {sc.render_reason(sim.exit_reason)}")
        return lines
    by_name: dict[str, str] = {}  # scenario name -> worker path in the sim
    for step in scenario.timeline:
        sim.advance_to(step["at"] / 1000.0)
        flush()
        if sim.exit_reason is not None:
            break
        if "crash" in step or "exit" in step:
            target = step.get("crash") or step.get("exit")
            reason = sc.parse_reason(step.get("reason", "boom"))
            real = by_name.get(target, target)
            if real in sim.path_of_worker:
                lines.append(f"exit {target} {sc.render_reason(reason)}")
                sim.fail(real, reason)
                sim.run_mailbox()
            else:
                lines.append(f"noproc {target}")
        elif "call" in step:
            fun, args, sup = step["call"], step.get("args", []), step.get("sup", "root")
            dynamic = scenario.strategy_of(sup) == "simple_one_for_one"
            sup_rel = "" if sup == "root" else sup
            label = sup
            request: ev.Request
            if fun == "check_childspecs":
                label = "[" + ",".join(c["id"] for c in args) + "]"
                lines.append(f"call {fun} {label} -> {sc.check_childspecs(args, make_worker)}")
                continue
            if fun == "start_child":
                if dynamic:
                    label = ",".join(args)
                    request = ev.StartChildRequest(extra_args=tuple(args))
                else:
                    label = args[0]["id"]
                    try:
                        request = ev.StartChildRequest(spec=sc.build_child(
                            args[0], sc._join(sup, args[0]["id"]), make_worker))
                    except otp.SpecError as exc:  # refused where it is written
                        lines.append(f"call {fun} {label} -> {sc.render_error(exc)}")
                        continue
            elif fun in ("which_children", "count_children"):
                request = ev.WhichChildren() if fun == "which_children" else ev.CountChildren()
            else:
                label = args[0]
                child_id = args[0]
                if dynamic:
                    child_id = next((k.rsplit("/", 1)[-1] for k, v in names.items()
                                     if v == sc._join(sup, args[0])), "?")
                request = {"terminate_child": ev.TerminateChild,
                           "restart_child": ev.RestartChild,
                           "delete_child": ev.DeleteChild,
                           "get_childspec": ev.GetChildSpec}[fun](child_id)
            reply = sim.call(sup_rel, request)
            if fun == "start_child" and dynamic and reply is not None and reply.error is None:
                rel = "/".join(filter(None, (sup_rel, reply.value)))
                names[rel] = sc._join(sup, args[0])
                by_name[sc._join(sup, args[0])] = rel
                # re-render the start line with the scenario's name
                for i in range(len(lines) - 1, -1, -1):
                    if lines[i] == f"start {rel}":
                        lines[i] = f"start {names[rel]}"
                        break
            flush()
            if reply is not None:
                result = sc.render_result(fun, reply.value, reply.error, dynamic=dynamic)
                lines.append(f"call {fun} {label} -> {result}")
        elif step.get("stop"):
            sim.post(sim.root, ev.Stop())
            sim.run_mailbox()
        flush()
    last = scenario.timeline[-1]["at"] / 1000.0 if scenario.timeline else 0.0
    sim.advance_to(last + 0.2)
    flush()
    if sim.exit_reason is None:
        sim.post(sim.root, ev.Stop())
        sim.run_mailbox()
        flush()
    return sc.normalize(lines, scenario)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: sim_replay.py SCENARIO.json", file=sys.stderr)
        return 2
    try:
        scenario = sc.load(argv[1])
    except sc.ScenarioError as exc:
        print(f"sim_replay: {exc}", file=sys.stderr)
        return 2
    for line in trace(scenario):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
