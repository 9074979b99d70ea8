"""Run a tree whose children write a lot to standard error, for test_stderr_flood.

Usage: ``python stderr_flood_tree.py BYTES``. The tree has a command child and a
process child (both temporary), each writing ``BYTES`` bytes of numbered lines to its
standard error, then ending; the test chooses where the script's own standard error
goes (a pipe it never reads, a pipe it reads slowly, a file). The script prints one
line of JSON per event: ``{"started": true}``; then, while the children write, the
time ``which_children()`` took (through the handle of :func:`otp_py.start`), every
few milliseconds (``{"latency": seconds}``); then, once both children have ended (or
after a deadline), ``{"done": ..., "dropped": {child: bytes}, "reports": [...]}``:
the :class:`~otp_py.reports.OutputDropped` reports received.

Not a test module.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [ROOT]

import otp_py as otp  # noqa: E402
from otp_py import reports as rp  # noqa: E402
from tests.hardening.stderr_lines import lines  # noqa: E402

DROPPED = getattr(rp, "OutputDropped", ())
"""(looked up so that, on a version without it, the script still runs: and hangs)"""

SAMPLE_EVERY = 0.005
DEADLINE = 120.0


COMMAND = (
    "import sys; sys.path.insert(0, {root!r}); "
    "from tests.hardening.stderr_lines import lines; lines('cmd', {total})"
)


def spec(total: int) -> otp.SupervisorSpec:
    return otp.SupervisorSpec(id="root", children=[
        otp.ChildSpec.command(
            "cmd", [sys.executable, "-c", COMMAND.format(root=ROOT, total=total)],
            restart=otp.Restart.TEMPORARY),
        otp.ChildSpec.process("proc", lines, args=("proc", total),
                              restart=otp.Restart.TEMPORARY),
    ])


def say(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def main() -> None:
    total = int(sys.argv[1])
    dropped: list[Any] = []
    lock = threading.Lock()

    def listen(report: rp.Report) -> None:
        if isinstance(report, DROPPED):
            with lock:
                dropped.append(report)

    sup = otp.start(spec(total), on_report=listen)
    say(started=True)
    deadline = time.monotonic() + DEADLINE
    children = True
    while children and time.monotonic() < deadline:
        began = time.monotonic()
        children = bool(sup.which_children())
        say(latency=time.monotonic() - began)
        time.sleep(SAMPLE_EVERY)
    sup.stop()
    with lock:
        totals: dict[str, int] = {}
        for report in dropped:
            totals[report.child_id] = totals.get(report.child_id, 0) + report.dropped
        say(done=not children, dropped=totals,
            reports=[[r.child_id, r.time, r.dropped, r.total, r.describe()]
                     for r in dropped])
    # (an ordinary exit: the copies still queued are written on the way out, unless
    # the supervisor's stderr is stalled)


if __name__ == "__main__":
    main()
