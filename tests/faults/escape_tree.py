"""Run a tree whose children start descendants that leave their process group, for
test_supervisor_death and tests/hardening/test_containment.

Usage: ``python escape_tree.py DIR [plain]``. The root has a process and a command
child of each kind (a ``setsid`` grandchild; a daemonising double fork), each writing
``"<own pid> <descendant pid>"`` to a file in ``DIR``; with ``plain``, two command
children whose grandchildren stay in their process group instead. Once all have, the script
prints one line of JSON (``ready``, the pids of children and descendants, its
guardian's pid), then runs until killed: each line read from stdin (``guardian``)
asks for the guardian's pid again, printed as a line of JSON.

Not a test module.
"""

from __future__ import annotations

import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path[:0] = [os.path.join(ROOT, "tests", "runtime"), ROOT]

import otp_py as otp  # noqa: E402
from otp_py.runtime.guardian import Guardian  # noqa: E402
from tests.faults import targets  # noqa: E402

KINDS = ("setsid", "daemonising")
NAMES = [f"{k}-{kind}" for k in ("cmd", "proc") for kind in KINDS]
NAMES_PLAIN = ["cmd-1", "cmd-2"]


PLAIN = ('sleep 3600 & echo "$$ $!" > "$1.tmp"; mv "$1.tmp" "$1"; wait')


def spec(directory: str, plain: bool) -> otp.SupervisorSpec:
    if plain:
        return otp.SupervisorSpec(id="root", children=[
            otp.ChildSpec.command(name, ["sh", "-c", PLAIN, "sh", os.path.join(directory, name)])
            for name in NAMES_PLAIN])
    children: list[otp.ChildSpec] = []
    for kind in KINDS:
        command = getattr(targets, f"command_{kind}" if kind == "daemonising"
                          else "command_setsid_grandchild")
        process = getattr(targets, kind if kind == "daemonising" else "setsid_grandchild")
        children.append(otp.ChildSpec.command(f"cmd-{kind}",
                                              command(os.path.join(directory, f"cmd-{kind}"))))
        children.append(otp.ChildSpec.process(f"proc-{kind}", process,
                                              args=(os.path.join(directory, f"proc-{kind}"),),
                                              ready=True))
    return otp.SupervisorSpec(id="root", children=children)


def main() -> None:
    directory = sys.argv[1]
    plain = sys.argv[2:] == ["plain"]
    otp.start(spec(directory, plain))
    files = [os.path.join(directory, name) for name in (NAMES_PLAIN if plain else NAMES)]
    deadline = time.monotonic() + 30
    while not all(os.path.exists(f) for f in files):  # (a test helper: a short wait)
        if time.monotonic() > deadline:
            raise SystemExit("the descendants did not start")
        time.sleep(0.01)
    pids = []
    for f in files:
        with open(f) as pid_file:
            pids += [int(p) for p in pid_file.read().split()]
    print(json.dumps({"ready": True, "pids": pids, "guardian": Guardian.shared().pid}),
          flush=True)
    for _ in sys.stdin:
        print(json.dumps({"guardian": Guardian.shared().pid}), flush=True)


if __name__ == "__main__":
    main()
