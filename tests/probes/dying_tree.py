"""A tree whose child has an exec liveness probe running, for test_runtime: prints
the probe command's pid once it runs, then blocks until the test SIGKILLs it.

Usage: ``python dying_tree.py PIDS_FILE``. Not a test module."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(os.path.dirname(HERE))]

import otp_py as otp  # noqa: E402

pids = Path(sys.argv[1])
child = otp.ChildSpec.command(
    "w", [sys.executable, "-c", "import time; time.sleep(600)"],
    liveness=otp.probes.Exec(["sh", "-c", f"echo $$ >> {pids}; exec sleep 600"],
                             interval=0.05, timeout=600))
sup = otp.start(otp.SupervisorSpec(id="root", children=[child]))
deadline = time.monotonic() + 20
while not (pids.exists() and pids.read_text().strip()):
    if time.monotonic() > deadline:
        raise SystemExit("the probe never ran")
    time.sleep(0.01)
print(pids.read_text().split()[0], flush=True)
time.sleep(600)
