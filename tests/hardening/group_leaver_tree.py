"""A tree (run as a script, in a session of its own) with a command child that
leaves the process group it was made to lead, for the group it came from (the
tree's); the tree then stops it and says how long that took."""

from __future__ import annotations

import os
import sys
import time

import otp_py as otp

LEAVER = ("import os, time\n"
          "os.setpgid(0, os.getpgid(os.getppid()))\n"
          "print('left', flush=True)\n"
          "time.sleep(120)\n")


def main() -> None:
    child = otp.ChildSpec.command("leaver", [sys.executable, "-u", "-c", LEAVER],
                                  shutdown=float(sys.argv[1]))
    with otp.start(otp.SupervisorSpec(id="root", children=[child])) as sup:
        [info] = sup.which_children()
        assert info.pid is not None
        deadline = time.monotonic() + 30
        while os.getpgid(info.pid) != os.getpgrp():
            assert time.monotonic() < deadline, "the child did not leave its group"
            time.sleep(0.02)
        began = time.monotonic()
        sup.terminate_child("leaver")
        print(f"stopped {info.pid} in {time.monotonic() - began:.2f}", flush=True)


if __name__ == "__main__":
    main()
