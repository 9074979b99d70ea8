"""Tutorial, steps 4 and 5: a nested supervisor, and the handle's API."""

import os
import signal
import threading
import time

import otp_py as otp


def work(role: str) -> None:
    while True:
        time.sleep(0.5)


pipeline = otp.SupervisorSpec(
    id="pipeline",
    strategy=otp.OneForAll(),  # fetcher and parser only make sense together
    children=[
        otp.ChildSpec.process("fetcher", work, args=("fetch",)),
        otp.ChildSpec.process("parser", work, args=("parse",)),
    ],
)
tree = otp.SupervisorSpec(
    id="root",
    children=[
        otp.ChildSpec.process("config", work, args=("config",)),
        pipeline,
        otp.ChildSpec.process("web", work, args=("web",)),
    ],
)

if __name__ == "__main__":
    restarted = threading.Event()

    def show(report: otp.reports.Report) -> None:
        print(report.describe())
        if isinstance(report, otp.reports.ChildStarted) and report.child_id == "parser":
            restarted.set()

    with otp.start(tree, on_report=show) as sup:
        print([child.id for child in sup.which_children()])
        print(sup.count_children("pipeline"))
        parser = sup.at("pipeline").which_children()[1]
        restarted.clear()
        os.kill(parser.pid, signal.SIGKILL)
        restarted.wait(10)
        sup.terminate_child("web")
        print("web is", sup.which_children()[2].state)
        sup.restart_child("web")
        print("web is", sup.which_children()[2].state)
    print("the tree is running:", sup.running)
