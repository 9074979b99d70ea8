"""Running in production: readiness and liveness probes.

A web server (Python's own http.server, run as a command child) is reported started
only once it answers HTTP. Then it stops answering (SIGSTOP here, as a wedged process
would: its port still accepts connections, nothing replies): its liveness probe fails
twice in a row, the child is reported hung, and the supervisor restarts it.
"""

import os
import signal
import socket
import sys
import tempfile
import threading

import otp_py as otp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


port = free_port()
url = f"http://127.0.0.1:{port}/"
restarted = threading.Event()


def show(report: otp.reports.Report) -> None:
    if isinstance(report, otp.reports.ChildStarted | otp.reports.ChildExited):
        print(report.describe().replace(str(port), "PORT"))
    if isinstance(report, otp.reports.ChildStarted) and report.restarts == 1:
        restarted.set()


with tempfile.TemporaryDirectory() as site, tempfile.TemporaryDirectory() as logs:
    web = otp.ChildSpec.command(
        "web", [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        cwd=site,
        output=otp.OutputCapture(dir=logs),  # its own lines go to log files
        start_timeout=10,  # the readiness probe must pass within 10 s
        shutdown=1,  # a stopped process ignores SIGTERM: killed after 1 s
        readiness=otp.probes.Http(url, interval=0.1),
        liveness=otp.probes.Http(url, interval=0.5, timeout=1, failure_threshold=2),
    )
    tree = otp.SupervisorSpec(id="root", children=[web])
    with otp.start(tree, on_report=show) as sup:
        # start() has returned: web has answered its readiness probe
        [info] = sup.which_children()
        readiness = info.details["probes"]["readiness"]
        print(f"readiness: {readiness['verdict']}, last answer {readiness['last']['detail']}")
        os.kill(info.pid, signal.SIGSTOP)
        restarted.wait(30)
        [info] = sup.which_children()
        print(f"web runs again in a new process: {info.pid is not None}")
