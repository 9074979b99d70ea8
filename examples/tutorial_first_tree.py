"""Tutorial, steps 1 and 2: a first tree, and a child killed with kill -9 coming back."""

import os
import signal
import threading
import time

import otp_py as otp


def tick(name: str) -> None:
    """A worker: an endless loop, in an OS process of its own."""
    while True:
        time.sleep(0.5)


tree = otp.SupervisorSpec(
    id="root",
    children=[
        otp.ChildSpec.process("clock", tick, args=("clock",)),
        otp.ChildSpec.process("janitor", tick, args=("janitor",)),
    ],
)

if __name__ == "__main__":
    restarted = threading.Event()

    def show(report: otp.reports.Report) -> None:
        print(report.describe())
        if isinstance(report, otp.reports.ChildStarted) and report.restarts:
            restarted.set()

    with otp.start(tree, on_report=show) as sup:
        for child in sup.which_children():
            print(f"{child.id}: {child.state}, pid {child.pid}")
        clock = sup.which_children()[0].pid
        os.kill(clock, signal.SIGKILL)  # what `kill -9 <pid>` does
        restarted.wait(10)
        print("clock has a new pid:", sup.which_children()[0].pid != clock)
