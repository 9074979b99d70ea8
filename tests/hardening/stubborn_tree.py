"""Trees with an asyncio child that swallows every cancellation, for
test_stubborn_task. Not a test module.

``TREE`` is for ``otp-py run tests.hardening.stubborn_tree:TREE``. Run as a script,
``python stubborn_tree.py MODE``:

* ``run``: ``otp.run(TREE)``; the test ends it with SIGTERM or SIGINT. Prints
  ``result: <what run() returned>``.
* ``start-then-exit``: ``otp.start(TREE)``, then the script simply ends, leaving the
  tree to the interpreter's exit hook.
* ``bare``: ``otp.start`` of a tree whose child swallows ``GeneratorExit`` as well
  (a bare ``except:``); terminates that child, then ends as ``start-then-exit`` does.

Every mode prints each report's description as it comes, and ``ready`` once the tree
is up.
"""

from __future__ import annotations

import asyncio
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import otp_py as otp  # noqa: E402
from otp_py import reports as rp  # noqa: E402

SHUTDOWN = 0.5


async def stubborn() -> None:
    """Swallows every cancellation, the graceful stop's and the kill's alike."""
    while True:
        try:  # noqa: SIM105 - written as the issue shows it
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            pass


async def deaf() -> None:
    """Swallows everything, ``GeneratorExit`` included: it cannot even be closed."""
    while True:
        try:  # noqa: SIM105
            await asyncio.sleep(1)
        except:  # noqa: E722 - the point of this child
            pass


async def calm() -> None:
    """A well-behaved neighbour."""
    await asyncio.Event().wait()


TREE = otp.SupervisorSpec(id="root", children=[
    otp.ChildSpec.task("calm", calm),
    otp.ChildSpec.task("stubborn", stubborn, shutdown=SHUTDOWN),
])

BARE_TREE = otp.SupervisorSpec(id="root", children=[
    otp.ChildSpec.task("deaf", deaf, shutdown=SHUTDOWN),
])


def on_report(report: rp.Report) -> None:
    print(report.describe(), flush=True)
    if isinstance(report, rp.SupervisorStarted) and report.path == ("root",):
        print("ready", flush=True)


def main() -> None:
    mode = sys.argv[1]
    if mode == "run":
        result = otp.run(TREE, on_report=on_report)
        print(f"result: {result!r}", flush=True)
    elif mode == "start-then-exit":
        otp.start(TREE, on_report=on_report)
        print("leaving the tree to the exit hook", flush=True)
    elif mode == "bare":
        sup = otp.start(BARE_TREE, on_report=on_report)
        sup.terminate_child("deaf")  # returns once it is declared unstoppable
        print("terminated", flush=True)
        print("leaving the tree to the exit hook", flush=True)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
