"""The two supervisors the chaos driver compares, behind one small interface.

:class:`OtpSystem` runs the stack's tree with ``otp-py run`` and reads it through the
control socket; :class:`SupervisordSystem` runs the same programs under supervisord
(``supervisord.py``'s configuration) and reads them through its XML-RPC interface.
The driver only asks each: start, what runs (the supervisor's own view: program name
and pid), kill the supervisor, start a stopped program, stop everything.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from examples.celery_stack import supervisord, tree
from examples.celery_stack.tree import Stack

# the supervisor's own processes, which are part of it while it lives
HELPER_MARKS = ("otp_py.backends.zygote", "import os, select, signal, sys, time")


class System:
    """One supervisor running one copy of the stack."""

    name = "?"

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.process: subprocess.Popen[bytes] | None = None
        self.generation = 0
        self.out = Path(stack.dir, "logs", f"{self.name}.out")

    # -- the supervisor process
    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        """Start the supervisor (again, after a kill: the same files and ports)."""
        self.generation += 1
        with open(self.out, "ab") as out:
            out.write(f"--- chaos: start {self.generation}\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                self.argv(), cwd=self.stack.root, env={**os.environ, **self.environment()},
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True)

    def environment(self) -> dict[str, str]:
        """Variables for the supervisor process itself."""
        return {}

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the supervisor itself (its children are left to their fate)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self, timeout: float) -> bool:
        """Ask the supervisor to stop everything in order; True if it ended in time."""
        if not self.alive():
            return True
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return False
        return True

    # -- what it runs, as it sees it
    def programs(self) -> dict[str, int | None]:
        """Program name (``redis``, ``w1``, ``w2``, ``beat``, ``web``) -> pid, or None
        for one that is not running. Empty when the supervisor does not answer."""
        raise NotImplementedError

    def start_program(self, name: str) -> None:
        """Start a program that the supervisor has stopped trying to run."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class OtpSystem(System):
    name = "otp_py"

    def __init__(self, stack: Stack, *, use_python_tree: bool = False) -> None:
        super().__init__(stack)
        self.socket = Path(stack.dir, "otp.sock")
        self.tree_file = Path(stack.dir, "tree.toml")
        self.tree_file.write_text(tree.render_toml(stack))
        self.use_python_tree = use_python_tree

    def argv(self) -> list[str]:
        target = ("examples.celery_stack.tree:from_env()" if self.use_python_tree
                  else str(self.tree_file))
        return [sys.executable, "-m", "otp_py", "run", target, "--log-dir",
                f"{self.stack.dir}/logs", "--socket", str(self.socket), "--view", "events"]

    def environment(self) -> dict[str, str]:
        # the worker probes read CELERY_STACK_DIR in the supervising process; the
        # Python tree (tree:from_env()) reads the ports too
        return {"CELERY_STACK_DIR": self.stack.dir,
                "CELERY_STACK_REDIS_PORT": str(self.stack.redis_port),
                "CELERY_STACK_WEB_PORT": str(self.stack.web_port)}

    def request(self, message: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(self.socket))
            sock.sendall(json.dumps(message).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        answer: dict[str, Any] = json.loads(data)
        return answer

    def programs(self) -> dict[str, int | None]:
        try:
            answer = self.request({"op": "status"})
        except (OSError, ValueError):
            return {}
        if not answer.get("ok"):
            return {}
        found: dict[str, int | None] = {}

        def walk(node: dict[str, Any]) -> None:
            if node.get("kind") not in (None, "supervisor"):
                name = node["path"].rsplit("/", 1)[-1]
                found[name] = node.get("pid") if node.get("state") == "running" else None
            for child in node.get("children") or ():
                walk(child)

        walk(answer["root"])
        return found

    def path(self, name: str) -> str:
        return {"redis": "celery/redis", "w1": "celery/workers/w1",
                "w2": "celery/workers/w2", "beat": "celery/beat"}.get(name, name)

    def start_program(self, name: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.request({"op": "start", "path": self.path(name)}, timeout=30)

    def describe(self) -> str:
        return "otp-py run tree.toml"


class SupervisordSystem(System):
    name = "supervisord"

    def __init__(self, stack: Stack) -> None:
        super().__init__(stack)
        self.conf = Path(stack.dir, "supervisord.conf")
        self.conf.write_text(supervisord.render(stack))

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(self.conf)]

    def programs(self) -> dict[str, int | None]:
        try:
            infos = supervisord.rpc(self.stack).supervisor.getAllProcessInfo()
        except Exception:  # not up yet, or gone: it does not answer
            return {}
        found: dict[str, int | None] = {}
        for info in infos:
            name = {"celerybeat": "beat"}.get(info["name"], info["name"])
            name = name.removeprefix("celery_")
            running = info["statename"] in ("RUNNING", "STARTING") and info["pid"]
            found[name] = int(info["pid"]) if running else None
        return found

    def group_name(self, name: str) -> str:
        return {"w1": "celery:celery_w1", "w2": "celery:celery_w2",
                "beat": "celerybeat"}.get(name, name)

    def start_program(self, name: str) -> None:
        with contextlib.suppress(Exception):
            supervisord.rpc(self.stack).supervisor.startProcess(self.group_name(name), False)

    def stop(self, timeout: float) -> bool:
        # supervisorctl shutdown: the same as SIGTERM to supervisord
        return super().stop(timeout)

    def describe(self) -> str:
        return "supervisord -c supervisord.conf (Celery's documented settings)"


def is_helper(cmdline: str) -> bool:
    """A process of the supervisor itself (otp_py's fork server or guardian)."""
    return any(mark in cmdline for mark in HELPER_MARKS)


def wait_until(predicate: Any, timeout: float, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return bool(predicate())
