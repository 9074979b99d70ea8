"""Running in production: a command child that says when it is ready.

``production_server.py`` speaks systemd's notify protocol; with ``ready=True`` it
gets a notify socket of its own (``$NOTIFY_SOCKET``), and the supervisor waits for its
``READY=1`` before it starts the next sibling. Its ``STATUS=`` is shown by
``which_children`` (and ``otp-py status``); with a heartbeat, its ``WATCHDOG=1``
pings must keep coming.
"""

import sys
from pathlib import Path

import otp_py as otp

SERVER = str(Path(__file__).with_name("production_server.py"))


def show(report: otp.reports.Report) -> None:
    if isinstance(report, otp.reports.ChildStarted):
        print(report.describe())


tree = otp.SupervisorSpec(id="root", children=[
    otp.ChildSpec.command("server", [sys.executable, SERVER], ready=True,
                          start_timeout=30, heartbeat=otp.Heartbeat(interval=0.5, timeout=5)),
    otp.ChildSpec.command("client", ["sleep", "infinity"]),
])

with otp.start(tree, on_report=show) as sup:
    for child in sup.which_children():
        status = child.details.get("status", "-")
        print(f"{child.id}: {child.state}, pid {child.pid}, status: {status}")
    ready_after = sup.which_children()[0].details["ready_after"]
    print(f"the server was ready {ready_after:.1f} s after it started")
