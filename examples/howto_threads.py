"""How-to: thread children. Stop tokens, heartbeats, and threads that will not stop."""

import threading
import time

import otp_py as otp


def poll(interval: float) -> None:
    """The well-behaved loop: wait on the stop token instead of time.sleep."""
    polls = 0
    while not otp.wait_for_stop(interval):  # True as soon as a stop is asked for
        polls += 1
        otp.heartbeat()  # "still making progress"
    print(f"poller: stopped after {polls} polls", flush=True)


def batch() -> None:
    """A loop that checks the token between steps of work."""
    while not otp.stop_requested():
        time.sleep(0.05)  # one step of work


def stuck() -> None:
    """Ticks three times, then hangs in a call that never returns in time."""
    for _ in range(3):
        otp.heartbeat()
        time.sleep(0.1)
    time.sleep(3.0)


def stubborn() -> None:
    """Ignores the stop token altogether."""
    time.sleep(3.0)


tree = otp.SupervisorSpec(
    id="root",
    intensity=otp.SlidingWindow(max_restarts=3, period=10.0),
    children=[
        otp.ChildSpec.thread("poller", poll, args=(0.05,),
                             heartbeat=otp.Heartbeat(interval=0.1, timeout=0.5)),
        otp.ChildSpec.thread("batch", batch),
        otp.ChildSpec.thread("stuck", stuck, restart="temporary", shutdown=0.2,
                             heartbeat=otp.Heartbeat(interval=0.1, timeout=0.5)),
        otp.ChildSpec.thread("stubborn", stubborn, restart="temporary", shutdown=0.2),
    ],
)

if __name__ == "__main__":
    stuck_found = threading.Event()

    def show(report: otp.reports.Report) -> None:
        print(report.describe(), flush=True)
        if isinstance(report, otp.reports.ChildExited) and report.child_id == "stuck":
            stuck_found.set()

    with otp.start(tree, on_report=show):
        stuck_found.wait(10)  # then leave the block: the tree stops
    print("threads still running:", sorted(t.name for t in threading.enumerate()
                                           if t.name.startswith("otp:")))
