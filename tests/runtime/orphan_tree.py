"""Run a tree whose children have children of their own, for test_orphans.

Usage: ``python orphan_tree.py FIFO``. Starts the tree, waits until the command
child's background grandchild exists (it writes to FIFO), prints the pids of every
descendant as one line of JSON, then blocks until killed. Not a test module.
"""

from __future__ import annotations

import json
import os
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(os.path.dirname(HERE))]

import psutil  # noqa: E402
import targets  # noqa: E402

import otp_py as otp  # noqa: E402


def spec(fifo: str) -> otp.SupervisorSpec:
    return otp.SupervisorSpec(
        id="root",
        children=[
            otp.ChildSpec.process("pool", targets.with_pool, args=(2,), ready=True),
            otp.ChildSpec.process("sleepers", targets.with_sleepers, args=(2,), ready=True),
            otp.ChildSpec.process("plain", targets.run_forever),
            otp.ChildSpec.process("forked", targets.with_sleepers, args=(1,), ready=True,
                                  start_method="fork"),
            otp.ChildSpec.command(
                "cmd", ["sh", "-c", 'sleep 3600 & echo up > "$1"; wait', "sh", fifo]
            ),
            otp.SupervisorSpec(
                id="sub",
                backend="process",
                children=[
                    otp.ChildSpec.process("inner", targets.with_sleepers, args=(1,),
                                          ready=True),
                ],
            ),
        ],
    )


def main() -> None:
    fifo = sys.argv[1]
    otp.start(spec(fifo))
    with open(fifo) as f:  # the command's grandchild is up
        f.readline()
    pids = [p.pid for p in psutil.Process().children(recursive=True)]
    print(json.dumps(pids), flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
