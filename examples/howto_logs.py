"""How-to: keep each child's output in log files of its own."""

import re
import sys
import tempfile
import threading
from pathlib import Path

import otp_py as otp

TALKER = "import sys; print('hello from the talker'); print('a warning', file=sys.stderr)"


def batch(n: int) -> None:
    for i in range(n):
        print(f"batch line {i}")  # a plain print: captured, line by line
    raise RuntimeError("the batch failed")


def tree(log_dir: str) -> otp.SupervisorSpec:
    return otp.SupervisorSpec(
        id="root",
        intensity=otp.SlidingWindow(max_restarts=5, period=10.0),
        # Every process and command child below: its stdout and stderr in log_dir,
        # rotated at 1 KiB, 2 old files kept.
        output=otp.OutputCapture(dir=log_dir, max_bytes="1KB", backups=2),
        children=[
            otp.ChildSpec.command("talker", [sys.executable, "-c", TALKER],
                                  restart=otp.Restart.TRANSIENT),
            otp.SupervisorSpec(id="jobs", children=[
                # This one also copies each line to the tree's own stdout and stderr,
                # prefixed with its path.
                otp.ChildSpec.process("batch", batch, args=(3,),
                                      restart=otp.Restart.TEMPORARY,
                                      output=otp.OutputCapture(passthrough=True)),
            ]),
        ],
    )


def show(path: Path) -> None:
    print(f"{path.name}:")
    for line in path.read_text().splitlines():
        # (the pids and times vary from run to run)
        print("  " + re.sub(r"pid \d+|at \S+$", lambda m: m[0].split()[0] + " ...", line))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as log_dir:
        ended: set[str] = set()
        both_ended = threading.Event()

        def note(report: otp.reports.Report) -> None:
            if isinstance(report, otp.reports.ChildExited):
                ended.add(report.child_id)
                if ended == {"talker", "batch"}:
                    both_ended.set()

        with otp.start(tree(log_dir), on_report=note):
            both_ended.wait(30)
        root = Path(log_dir)
        print(sorted(str(p.relative_to(root)) for p in root.rglob("*")))
        show(root / "talker.stdout.log")
        show(root / "jobs" / "batch.stdout.log")
