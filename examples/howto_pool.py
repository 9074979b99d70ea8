"""How-to: a multiprocessing pool inside a process child.

The pool's process is the supervised child; its workers live in its process group,
so they die with it however it ends (a crash, kill -9, a stop).
"""

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import otp_py as otp


def square(n: int) -> int:
    return n * n


def serve(workers: int) -> None:
    try:
        # Leaving the with-block terminates the workers in order: a stop is a SIGTERM
        # to this process alone, raised here as otp.Shutdown.
        with multiprocessing.Pool(workers) as pool:
            print("squares:", pool.map(square, range(6)), flush=True)
            otp.notify_ready()  # the spec says ready=True: we are up now
            while True:
                pool.map(square, range(1000))
    finally:
        print("pool closed", flush=True)


def group_members(pgid: int) -> list[int]:
    """Live processes in a process group (Linux /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


tree = otp.SupervisorSpec(
    id="root",
    children=[otp.ChildSpec.process("pool", serve, args=(2,), ready=True, shutdown=10)],
)

if __name__ == "__main__":
    back = threading.Event()

    def show(report: otp.reports.Report) -> None:
        print(report.describe())
        if isinstance(report, otp.reports.ChildStarted) and report.restarts:
            back.set()

    with otp.start(tree, on_report=show) as sup:
        pid = sup.which_children()[0].pid
        print("processes in the pool's group:", len(group_members(pid)))
        os.kill(pid, signal.SIGKILL)
        back.wait(10)
        deadline = time.monotonic() + 5  # SIGKILLed workers take a moment to go
        while group_members(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        print("left of the old group:", len(group_members(pid)))
