"""The Celery stack's tree, in Python: the same tree as ``tree.toml``.

Three ways to use it:

* ``python -m examples.celery_stack.tree DIR`` prepares DIR for one copy of the stack
  (free ports for Redis and the web app, its sub-directories) and writes DIR/tree.toml
  (the template filled in) and DIR/supervisord.conf (the same stack for supervisord),
  then prints how to run each;
* ``otp-py run 'examples.celery_stack.tree:from_env()'`` runs the Python tree, reading
  the directory and ports from ``CELERY_STACK_DIR``, ``CELERY_STACK_REDIS_PORT`` and
  ``CELERY_STACK_WEB_PORT``;
* :func:`build` returns the :class:`otp_py.SupervisorSpec` for a :class:`Stack`, and
  :func:`render_toml` the TOML text; ``tests/showcase`` checks that they are equal.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import socket
import string
import sys
from pathlib import Path

import otp_py as otp
from examples.celery_stack import liveness

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent  # the directory ``examples`` is imported from
TEMPLATE = HERE / "tree.toml"
WORKERS = ("w1", "w2")
APP = "examples.celery_stack.app"


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass(frozen=True)
class Stack:
    """Where one copy of the stack lives: its directory, its ports, its interpreter."""

    dir: str
    redis_port: int
    web_port: int
    python: str = sys.executable
    root: str = str(ROOT)

    @classmethod
    def new(cls, directory: str | os.PathLike[str]) -> Stack:
        """A stack in ``directory`` (made, with its sub-directories) on free ports."""
        stack = cls(dir=str(Path(directory).resolve()), redis_port=free_port(),
                    web_port=free_port())
        stack.prepare()
        return stack

    @classmethod
    def from_env(cls) -> Stack:
        """The stack the ``CELERY_STACK_*`` variables describe."""
        try:
            return cls(dir=os.environ["CELERY_STACK_DIR"],
                       redis_port=int(os.environ["CELERY_STACK_REDIS_PORT"]),
                       web_port=int(os.environ["CELERY_STACK_WEB_PORT"]))
        except KeyError as exc:
            raise SystemExit(f"celery_stack: set {exc.args[0]} (see examples/celery_stack/"
                             "README.md)") from None

    def prepare(self) -> None:
        for sub in ("redis", "heartbeat", "logs"):
            Path(self.dir, sub).mkdir(parents=True, exist_ok=True)

    @property
    def broker(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def env(self) -> dict[str, str]:
        """What the Celery and web processes read (see app.py)."""
        return {"CELERY_STACK_DIR": self.dir, "CELERY_STACK_BROKER": self.broker}

    # the command lines, shared with the supervisord configuration
    def redis_argv(self, *, notify: bool = False) -> list[str]:
        """Redis, with an append-only file fsynced at every write (``notify``: and
        READY=1 sent on systemd's notify socket once it accepts connections)."""
        argv = ["/bin/sh", f"{self.root}/examples/celery_stack/redis-server.sh",
                "--port", str(self.redis_port), "--bind", "127.0.0.1",
                "--protected-mode", "no", "--dir", f"{self.dir}/redis",
                "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                "--daemonize", "no"]
        return [*argv, "--supervised", "systemd"] if notify else argv

    def worker_argv(self, name: str) -> list[str]:
        return [self.python, "-m", "celery", "-A", APP, "worker", "--pool=prefork", "-c",
                "2", "-n", f"{name}@%h", "--without-mingle", "--without-gossip",
                "--loglevel=INFO"]

    def beat_argv(self) -> list[str]:
        return [self.python, "-m", "celery", "-A", APP, "beat", "-s",
                f"{self.dir}/beat-schedule", "--loglevel=INFO"]

    def web_argv(self) -> list[str]:
        return [self.python, "-m", "uvicorn", "examples.celery_stack.web:app", "--host",
                "127.0.0.1", "--port", str(self.web_port), "--no-access-log",
                "--timeout-graceful-shutdown", "2"]


def build(stack: Stack) -> otp.SupervisorSpec:
    """The tree of ``tree.toml``, for ``stack``, declared in Python."""
    env = stack.env()
    workers = otp.SupervisorSpec(
        id="workers",
        strategy=otp.OneForOne(),
        intensity=otp.SlidingWindow(max_restarts=10, period=30),
        children=[
            otp.ChildSpec.command(
                name, stack.worker_argv(name), cwd=stack.root, env=env, shutdown=5,
                liveness=otp.probes.Call(getattr(liveness, name).alive, interval=0.5,
                                         failure_threshold=2),
            )
            for name in WORKERS
        ],
    )
    celery = otp.SupervisorSpec(
        id="celery",
        strategy=otp.RestForOne(),
        intensity=otp.SlidingWindow(max_restarts=10, period=30)
        & otp.ExponentialBackoff(initial=0.1, maximum=2, jitter=0, reset_after=10),
        children=[
            otp.ChildSpec.command("redis", stack.redis_argv(notify=True),
                                  env={"CELERY_STACK_DIR": stack.dir}, shutdown=5, ready=True),
            workers,
            otp.ChildSpec.command("beat", stack.beat_argv(), cwd=stack.root, env=env,
                                  shutdown=5),
        ],
    )
    return otp.SupervisorSpec(
        id="celery_stack",
        strategy=otp.OneForOne(),
        intensity=otp.SlidingWindow(max_restarts=20, period=60),
        children=[
            celery,
            otp.ChildSpec.command(
                "web", stack.web_argv(), cwd=stack.root, env=env, shutdown=5,
                readiness=otp.probes.Http(f"{stack.web_url}/healthz", interval=0.2)),
        ],
    )


def from_env() -> otp.SupervisorSpec:
    """``otp-py run 'examples.celery_stack.tree:from_env()'``: the tree of the stack
    that the ``CELERY_STACK_*`` variables describe."""
    return build(Stack.from_env())


def render_toml(stack: Stack) -> str:
    """``tree.toml`` with ``stack``'s directory, ports, interpreter and root filled in."""
    return string.Template(TEMPLATE.read_text()).substitute(
        dir=stack.dir, redis_port=stack.redis_port, web_port=stack.web_port,
        python=stack.python, root=stack.root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.celery_stack.tree",
                                     description="prepare a directory for one copy of the "
                                     "Celery stack and write its tree.toml and "
                                     "supervisord.conf")
    parser.add_argument("dir")
    args = parser.parse_args(argv)
    from examples.celery_stack import supervisord

    stack = Stack.new(args.dir)
    tree = Path(stack.dir, "tree.toml")
    tree.write_text(render_toml(stack))
    conf = Path(stack.dir, "supervisord.conf")
    conf.write_text(supervisord.render(stack))
    print(f"redis on port {stack.redis_port}, web app on {stack.web_url}")
    print(f"otp_py:      cd {stack.root} && otp-py run {tree} --log-dir {stack.dir}/logs")
    print(f"supervisord: cd {stack.root} && {stack.python} -m supervisor.supervisord "
          f"-n -c {conf}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
