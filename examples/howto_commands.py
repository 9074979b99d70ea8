"""How-to: supervise external programs (command children)."""

import signal
import sys
import threading

import otp_py as otp

WORKER = """
import time
try:
    while True:
        time.sleep(0.1)
except KeyboardInterrupt:
    print("worker: SIGINT, finishing the current batch", flush=True)
"""

tree = otp.SupervisorSpec(
    id="root",
    intensity=otp.SlidingWindow(max_restarts=5, period=10.0),
    children=[
        # An argv list: no shell is involved.
        otp.ChildSpec.command(
            "server", [sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1"], shutdown=2
        ),
        # A command line, split like a shell would; environment and directory of its own.
        otp.ChildSpec.command(
            "migrate",
            "sh -c 'echo migrating $DATABASE from $(pwd)'",
            env={"DATABASE": "orders"},
            cwd="/tmp",
            restart=otp.Restart.TRANSIENT,  # exit status 0 is a normal end: not restarted
        ),
        # A program that wants SIGINT, not SIGTERM, to stop cleanly.
        otp.ChildSpec.command(
            "worker", [sys.executable, "-c", WORKER], stop_signal=signal.SIGINT
        ),
        # A program that fails: exit status 3, a line on its standard error.
        otp.ChildSpec.command("flaky", "sh -c 'sleep 0.3; echo cannot reach the API >&2; exit 3'"),
    ],
)

if __name__ == "__main__":
    flaky_restarted = threading.Event()

    def show(report: otp.reports.Report) -> None:
        print(report.describe(), flush=True)
        if isinstance(report, otp.reports.ChildStarted) and report.restarts == 2:
            flaky_restarted.set()  # flaky came back twice

    with otp.start(tree, on_report=show) as sup:
        flaky_restarted.wait(10)
        for child in sup.which_children():
            print(f"{child.id}: {child.state}, pid {child.pid}", flush=True)
