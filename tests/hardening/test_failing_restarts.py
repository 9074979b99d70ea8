"""A restart that fails at once does not starve the tree's loop (issue 12, item 2).

A command child whose program has vanished fails every start at once. With a budget
that allows 100,000 restarts a second, the supervisor retries it as fast as it can;
each retry must wait its turn behind what already waits on the loop (as OTP's
``try_again_restart`` waits in the mailbox), so a signal, a control request and a
call are still served between two retries.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psutil

import otp_py as otp
from tests.cli.clitools import Cli, run, wait_until

_T = TypeVar("_T")

BUDGET = otp.SlidingWindow(max_restarts=100_000, period=1)


def _vanishing_program(tmp_path: Path) -> Path:
    program = tmp_path / "vanishing-sleep"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", program)
    program.chmod(0o755)
    return program


def _tree_file(tmp_path: Path, program: Path) -> Path:
    path = tmp_path / "tree.toml"
    path.write_text(f"""
id = "retrier"
intensity = {{ max_restarts = 100000, period = 1 }}

[[children]]
id = "gone"
command = ["{program}", "1000"]
""")
    return path


def _child_pid(supervisor_pid: int, program: Path) -> int:
    for child in psutil.Process(supervisor_pid).children(recursive=True):
        try:
            if child.exe() == str(program) or str(program) in child.cmdline():
                return child.pid
        except psutil.Error:
            continue
    return 0


def test_a_tree_retrying_a_vanished_program_still_answers_and_stops(
        tmp_path: Path, runtime: Path) -> None:
    program = _vanishing_program(tmp_path)
    with Cli(["run", str(_tree_file(tmp_path, program)), "--view", "events"], runtime) as cli:
        sock = runtime / "otp-py" / "retrier.sock"
        wait_until(sock.is_socket, what="the control socket")
        pid: list[int] = []
        wait_until(lambda: pid.append(_child_pid(cli.proc.pid, program)) or pid[-1],
                   what="the command child running")
        program.unlink()  # every start from now on fails at once
        os.kill(pid[-1], signal.SIGKILL)
        supervisor = psutil.Process(cli.proc.pid)
        # The supervisor is now retrying the restart as fast as the budget lets it.
        cli.wait_for(r"gone.*(fail|No such file)")
        for _ in range(3):
            began = time.monotonic()
            answer = run(["status", "--timeout", "5"], runtime, timeout=10)
            elapsed = time.monotonic() - began
            assert answer.returncode == 0, answer.stderr
            assert "gone" in answer.stdout
            assert elapsed < 1.0 + _python_start_allowance(), (
                f"status took {elapsed:.2f} s while the restart was retried")
        assert supervisor.is_running()
        began = time.monotonic()
        cli.proc.send_signal(signal.SIGTERM)
        code = cli.wait(timeout=10)
        stopped_in = time.monotonic() - began
        assert stopped_in < 2.0, f"SIGTERM took {stopped_in:.2f} s to end the tree"
        assert code == 0, cli.output[-2000:]


def _within(seconds: float, call: Callable[[], _T]) -> _T:
    """``call()``'s answer, failing (not hanging) when it takes over ``seconds``."""
    answer: list[_T] = []
    worker = threading.Thread(target=lambda: answer.append(call()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert answer, f"no answer within {seconds} s"
    return answer[0]


def _python_start_allowance() -> float:
    """What starting a fresh ``otp-py status`` interpreter costs here, measured, so
    the bound is on the tree's answer, not on the machine's speed."""
    began = time.monotonic()
    run(["--help"], Path("/tmp"), timeout=30)
    return time.monotonic() - began


def test_calls_are_served_between_retries_through_the_api(tmp_path: Path) -> None:
    """The same through the Python API: calls and ``stop()`` are served while the
    restart is retried, and the retries did happen in between."""
    program = _vanishing_program(tmp_path)
    failures = threading.Event()
    count = [0]

    def listen(report: otp.reports.Report) -> None:
        if isinstance(report, otp.reports.ChildStartFailed):
            count[0] += 1
            if count[0] >= 100:
                failures.set()

    tree = otp.SupervisorSpec(
        id="root", intensity=BUDGET,
        children=[otp.ChildSpec.command("gone", [str(program), "1000"])])
    sup = otp.start(tree, on_report=listen)
    try:
        pid = sup.which_children()[0].pid
        program.unlink()
        os.kill(pid, signal.SIGKILL)
        assert failures.wait(30), "the restart was not retried"
        for _ in range(20):
            began = time.monotonic()
            rows = _within(2.0, sup.which_children)
            assert time.monotonic() - began < 1.0  # (the issue: answers within 1 s)
            assert rows[0].id == "gone"
        began = time.monotonic()
    finally:
        sup.stop(timeout=10)
    assert time.monotonic() - began < 2.0
