"""Run a tree in a process of its own, for tests/hardening/test_subreaper.

Usage: ``python subreaper_tree.py MODE DIR``. MODE is ``run`` (``otp.run()``),
``run-no`` (``otp.run(subreaper=False)``), ``start`` (``otp.start()``) or
``start-yes`` (``otp.start(subreaper=True)``). The tree has one command child, a
shell that daemonises a ``sleep`` (its pids go to ``DIR/daemon``), and one task child
that starts subprocesses of its own in sessions of their own and waits for them
(their exit statuses go to ``DIR/statuses``, one JSON list), so that a reaper that
took a status someone waits for would show. Once both files are written it prints
a line of JSON (its pid, whether it is a child subreaper) and runs until SIGTERM.

Not a test module.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [os.path.join(ROOT, "tests", "runtime"), ROOT]

import otp_py as otp  # noqa: E402
from tests.faults import targets  # noqa: E402


async def own_subprocesses(path: str) -> None:
    """Exit statuses a reaper must not take: a Popen in a thread, an asyncio
    subprocess, a command child's, all outside our process group."""
    statuses = []
    for n in range(10):
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", f"exit {n + 1}", start_new_session=True)
        statuses.append(await proc.wait())
        ran = await asyncio.to_thread(subprocess.run, ["sh", "-c", f"exit {n + 20}"],
                                      start_new_session=True)
        statuses.append(ran.returncode)
    with open(path + ".tmp", "w") as f:
        json.dump(statuses, f)
    os.rename(path + ".tmp", path)
    await asyncio.Event().wait()


def spec(directory: str) -> otp.SupervisorSpec:
    return otp.SupervisorSpec(id="root", children=[
        otp.ChildSpec.command("daemonising",
                              targets.command_daemonising(os.path.join(directory, "daemon"))),
        otp.ChildSpec.task("own", own_subprocesses,
                           args=(os.path.join(directory, "statuses"),)),
    ])


def is_subreaper() -> bool:
    """``prctl(PR_GET_CHILD_SUBREAPER)``, asked of the kernel directly."""
    value = ctypes.c_int(0)
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(37, ctypes.byref(value), 0, 0, 0) == 0  # PR_GET_CHILD_SUBREAPER
    return value.value == 1


def announce(directory: str) -> None:
    files = [os.path.join(directory, name) for name in ("daemon", "statuses")]
    while not all(os.path.exists(f) for f in files):
        threading.Event().wait(0.01)
    print(json.dumps({"pid": os.getpid(), "subreaper": is_subreaper()}), flush=True)


def main() -> None:
    mode, directory = sys.argv[1], sys.argv[2]
    threading.Thread(target=announce, args=(directory,), daemon=True).start()
    if mode.startswith("run"):
        if mode == "run":
            otp.run(spec(directory))  # the default
        else:
            otp.run(spec(directory), subreaper=False)
    else:
        sup = (otp.start(spec(directory), subreaper=True) if mode == "start-yes"
               else otp.start(spec(directory)))  # the default
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        while not stopped.wait(0.5):
            pass
        sup.stop()


if __name__ == "__main__":
    main()
