"""Run a three-level tree in a restart storm, then die, for test_supervisor_death.

Usage: ``python death_tree.py MODE [fork]``. The tree (process and command children
at every level, the bottom level a subtree in a process of its own, a crashing child
at each level; with ``fork``, the middle level also has a process child started with
``start_method="fork"``) is started; once the crashers have been restarted a few
times the script prints ``ready`` (one line of JSON), then:

* ``sigkill``, ``sigterm-unhandled``: blocks until the test kills it (with SIGKILL;
  with SIGTERM, which nobody handles: the process dies of it);
* ``sigterm-run``: the tree runs under :func:`otp_py.run`, which handles SIGTERM by
  stopping it in order; prints ``result: ...`` when run() returns;
* ``exception-start``: the main thread raises an unhandled exception while the tree
  runs in a background thread (:func:`otp_py.start`);
* ``exception-supervise``: the body of ``async with otp.supervise(...)`` raises.

Not a test module.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [os.path.join(ROOT, "tests", "runtime"), ROOT]

import targets as runtime_targets  # noqa: E402

import otp_py as otp  # noqa: E402
from otp_py import reports as rp  # noqa: E402
from tests.faults import targets  # noqa: E402

RESTARTS_BEFORE_READY = 3
STORM = otp.SlidingWindow(100_000, 1)  # never gives up: the storm goes on
CRASH_AFTER = 0.05


def spec(fork: bool) -> otp.SupervisorSpec:
    background = ["sh", "-c", "sleep 3600 & wait"]
    leaf = otp.SupervisorSpec(id="leaf", backend="process", intensity=STORM, children=[
        # a pool cannot stop gracefully (see test_shutdown_bounds): do not wait 5 s
        otp.ChildSpec.process("pool", runtime_targets.with_pool, args=(2,), ready=True,
                              shutdown=0.5),
        otp.ChildSpec.command("cmd", background),
        otp.ChildSpec.process("crasher", targets.crash_soon, args=(CRASH_AFTER,)),
    ])
    forked = [otp.ChildSpec.process("forked", runtime_targets.with_sleepers, args=(1,),
                                    ready=True, start_method="fork")] if fork else []
    mid = otp.SupervisorSpec(id="mid", intensity=STORM, children=[
        *forked,
        otp.ChildSpec.process("sleepers", runtime_targets.with_sleepers, args=(1,),
                              ready=True),
        otp.ChildSpec.command("cmd", background),
        otp.ChildSpec.command("crasher", ["sh", "-c", f"sleep {CRASH_AFTER}; exit 1"]),
        leaf,
    ])
    return otp.SupervisorSpec(id="root", intensity=STORM, children=[
        otp.ChildSpec.process("sleepers", runtime_targets.with_sleepers, args=(2,),
                              ready=True),
        otp.ChildSpec.command("cmd", background),
        otp.ChildSpec.process("crasher", targets.crash_soon, args=(CRASH_AFTER,)),
        mid,
    ])


class Storm:
    """A report listener: ``ready`` once the three crashers (at the root, in the
    middle and in the leaf, whose reports come from the leaf's own process) were
    each restarted a few times."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self._counts: dict[tuple[str, ...], int] = {}

    def __call__(self, report: rp.Report) -> None:
        if isinstance(report, rp.ChildStarted) and report.child_id == "crasher":
            self._counts[report.path] = report.restarts
            if len(self._counts) == 3 and min(self._counts.values()) >= RESTARTS_BEFORE_READY:
                self.ready.set()


def say_ready() -> None:
    print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)


def main() -> None:
    mode = sys.argv[1]
    tree = spec(fork=sys.argv[2:] == ["fork"])
    storm = Storm()
    if mode == "sigterm-run":

        def on_report(report: rp.Report) -> None:
            already = storm.ready.is_set()
            storm(report)
            if storm.ready.is_set() and not already:
                say_ready()

        result = otp.run(tree, on_report=on_report)
        print(f"result: {result!r}", flush=True)
        return
    if mode == "exception-supervise":

        async def body() -> None:
            async with otp.supervise(tree, on_report=storm):
                await asyncio.get_running_loop().run_in_executor(None, storm.ready.wait)
                say_ready()
                raise RuntimeError("boom in the middle of restarts")

        asyncio.run(body())
        return
    otp.start(tree, on_report=storm)
    storm.ready.wait()
    say_ready()
    if mode == "exception-start":
        raise RuntimeError("boom in the middle of restarts")
    threading.Event().wait()  # until killed


if __name__ == "__main__":
    main()
