"""A supervisord configuration, as a supervision tree.

    [program:web]
    command=python -m http.server 0 --bind 127.0.0.1
    stopwaitsecs=10

    [program:worker]
    command=sh -c 'while :; do sleep 1; done'
    numprocs=2
    process_name=%(program_name)s_%(process_num)d
    stopsignal=INT
    environment=QUEUE="emails"

    [program:report]
    command=sh -c 'echo nothing to report; exit 2'
    autorestart=unexpected
    exitcodes=0,2
    directory=/tmp

    [group:queue]
    programs=worker
"""

import signal
import sys
import time

import otp_py as otp

web = otp.ChildSpec.command(
    "web", [sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1"], shutdown=10
)
workers = [
    otp.ChildSpec.command(
        f"worker_{n}",
        "sh -c 'while :; do sleep 1; done'",
        stop_signal=signal.SIGINT,
        env={"QUEUE": "emails"},
    )
    for n in range(2)
]
report = otp.ChildSpec.command(
    "report",
    "sh -c 'echo nothing to report; exit 2'",
    restart=otp.Restart.TRANSIENT,  # autorestart=unexpected
    decider=otp.Decider({otp.OnExitCode(2): otp.Decision.STOP}),  # exitcodes=0,2
    cwd="/tmp",
)
tree = otp.SupervisorSpec(
    id="supervisord",
    intensity=otp.SlidingWindow(3, 10.0) & otp.ExponentialBackoff(initial=1.0),
    children=[
        web,
        otp.SupervisorSpec(id="queue", strategy=otp.OneForAll(), children=workers),
        report,
    ],
)

if __name__ == "__main__":
    with otp.start(tree, on_report=lambda r: print(r.describe(), flush=True)) as sup:
        time.sleep(0.5)
        for child in sup.which_children() + sup.which_children("queue"):
            print(f"{child.id}: {child.state}")
