"""Run a tree of stubborn children under otp_py.run(), for test_shutdown_bounds.

Usage: ``python sigint_tree.py LOG``. Every child ignores its graceful stop for a
long shutdown timeout and logs (to LOG) ``up NAME PID`` when it starts and ``term
NAME`` when asked to stop. Prints ``ready`` once the tree is up, each report's
description while it runs, and ``result: <what run() returned>`` at the end. The test
sends SIGINT, waits until a child logs its stop request, and sends SIGINT again.
Not a test module.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [os.path.join(ROOT, "tests", "runtime"), ROOT]

import otp_py as otp  # noqa: E402
from otp_py import reports as rp  # noqa: E402
from tests.faults import targets  # noqa: E402

SHUTDOWN = 10.0


def stubborn(backend: str, name: str, log: str) -> otp.ChildSpec:
    if backend == "command":
        return otp.ChildSpec.command(name, targets.command_stubborn_logged(log, name),
                                     shutdown=SHUTDOWN)
    start = {"process": targets.proc_stubborn_logged,
             "asyncio": targets.task_stubborn_logged}[backend]
    return otp.ChildSpec(id=name, start=start, args=(log, name), backend=backend,
                         ready=True, shutdown=SHUTDOWN)


def spec(log: str) -> otp.SupervisorSpec:
    return otp.SupervisorSpec(id="root", children=[
        stubborn("process", "a", log),
        stubborn("command", "b", log),
        stubborn("asyncio", "c", log),
        otp.SupervisorSpec(id="mid", children=[
            stubborn("process", "d", log),
            stubborn("command", "e", log),
        ]),
        otp.SupervisorSpec(id="leaf", backend="process", children=[
            stubborn("process", "f", log),
            stubborn("command", "g", log),
        ]),
    ])


def main() -> None:
    log = sys.argv[1]

    def on_report(report: rp.Report) -> None:
        print(report.describe(), flush=True)
        if isinstance(report, rp.SupervisorStarted) and report.path == ("root",):
            print("ready", flush=True)

    result = otp.run(spec(log), on_report=on_report)
    print(f"result: {result!r}", flush=True)


if __name__ == "__main__":
    main()
