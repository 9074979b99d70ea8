"""Run a tree with :func:`otp_py.run` and signal ourselves once it is up, for test_api.

Usage: ``python run_tree.py SIGNAME``. Prints the reports' one-line descriptions and,
last, ``result: <repr of what run() returned>``. Not a test module.
"""

from __future__ import annotations

import os
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(os.path.dirname(HERE))]

import targets  # noqa: E402

import otp_py as otp  # noqa: E402
from otp_py import reports as rp  # noqa: E402


def main() -> None:
    signum = signal.Signals[sys.argv[1]]
    spec = otp.SupervisorSpec(
        id="root",
        children=[
            otp.ChildSpec.process("p", targets.ready_then_run, ready=True),
            otp.ChildSpec.command("c", ["sleep", "3600"]),
            otp.ChildSpec.thread("t", targets.thread_until_stopped),
        ],
    )

    def on_report(report: rp.Report) -> None:
        print(report.describe(), flush=True)
        if isinstance(report, rp.SupervisorStarted) and report.path == ("root",):
            os.kill(os.getpid(), signum)

    result = otp.run(spec, on_report=on_report)
    print(f"result: {result!r}", flush=True)


if __name__ == "__main__":
    main()
