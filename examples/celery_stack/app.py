"""The Celery application of the stack: ``celery -A examples.celery_stack.app worker``.

Configured from the environment, so one module serves every copy of the stack (each
chaos run has its own directory and ports):

``CELERY_STACK_BROKER``
    the Redis URL (``redis://127.0.0.1:PORT/0``);
``CELERY_STACK_DIR``
    the stack's directory: ``results.log`` (what the tasks did) and ``heartbeat/``
    (one file per worker, touched by its event loop: its liveness).

The settings are the ones a Celery deployment needs to lose no task when a process
dies (each is Celery's documented setting, none is otp_py's):

* ``task_acks_late``: a message is acknowledged after its task ran, not before, so a
  worker killed mid-task leaves it unacknowledged, to be delivered again;
* ``task_reject_on_worker_lost``: when a *pool child* dies mid-task, the worker puts the
  message back (the default acknowledges it as failed: lost);
* ``worker_prefetch_multiplier = 1``: a worker holds no more messages than it has
  pool processes, so a killed worker strands few;
* ``visibility_timeout``: a message a dead worker held goes back to the queue after
  this many seconds (Redis has no per-connection acknowledgement; the default is one
  hour). The stack's tasks take a fraction of a second, so 10 s is safe;
* ``worker_cancel_long_running_tasks_on_connection_loss``: a task that cannot be
  acknowledged because the broker went away is cancelled rather than finished and
  run again (its message is redelivered either way).

The tasks are idempotent and numbered: ``record(n)`` appends ``S`` (started) and ``D``
(done) lines for ``n`` to ``results.log``; running it twice is harmless and shows up
as two ``D`` lines, which is how the chaos driver counts duplicates.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from celery import Celery, bootsteps

BROKER = os.environ.get("CELERY_STACK_BROKER", "redis://127.0.0.1:6379/0")
DIRECTORY = Path(os.environ.get("CELERY_STACK_DIR", "."))
RESULTS = DIRECTORY / "results.log"
HEARTBEATS = DIRECTORY / "heartbeat"
HEARTBEAT_INTERVAL = 0.5  # seconds between two touches of a worker's heartbeat file

app = Celery("celery_stack", broker=BROKER)
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_cancel_long_running_tasks_on_connection_loss=True,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=None,  # keep trying while the broker is away
    broker_connection_timeout=2,
    broker_transport_options={
        "visibility_timeout": 10,
        "unacked_restore_interval": 1,  # look for stranded messages every second
        "unacked_restore_throttle": 1,
        # the lock around that look: a worker killed while holding it (kill -9, a
        # SIGKILLed supervisor) would stop every look for its default 300 s
        "unacked_mutex_expire": 5,
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
    },
    broker_pool_limit=4,
    worker_send_task_events=False,
    beat_schedule={"tick": {"task": "stack.tick", "schedule": 2.0}},
    timezone="UTC",
)


def _append(line: str) -> None:
    """Append one line to results.log in one write (O_APPEND: lines never interleave)."""
    fd = os.open(RESULTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@app.task(name="stack.record", bind=True)
def record(self: Any, n: int, work: float = 0.2) -> int:
    """Task number ``n``: note its start, work for ``work`` seconds, note its end.

    Each line carries the pool process's pid, its parent (the worker's main process)
    and the worker's node name, so the driver knows who ran it.
    """
    who = f"{os.getpid()} {os.getppid()} {self.request.hostname}"
    _append(f"S {n} {who} {time.time():.6f}\n")
    time.sleep(work)
    _append(f"D {n} {who} {time.time():.6f}\n")
    return n


@app.task(name="stack.tick")
def tick() -> None:
    """celery beat's periodic task: a ``B`` line shows beat and the workers are alive."""
    _append(f"B 0 {os.getpid()} {os.getppid()} beat {time.time():.6f}\n")


class Heartbeat(bootsteps.StartStopStep):
    """Touch ``heartbeat/<node name>`` from the worker's own event loop.

    The timer runs on the worker's main loop (prefork's hub), the loop that also
    consumes messages: when the main process is frozen (SIGSTOP), blocked, or stuck
    reconnecting, the file stops being touched. Its age is the worker's liveness,
    the check Kubernetes users of Celery commonly write, readable without a broker
    round trip (``celery inspect ping`` needs the broker and a Python start).
    """

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.tref: Any = None
        self.path = HEARTBEATS / str(worker.hostname)

    def start(self, worker: Any) -> None:
        HEARTBEATS.mkdir(parents=True, exist_ok=True)
        self.touch()
        self.tref = worker.timer.call_repeatedly(HEARTBEAT_INTERVAL, self.touch)

    def stop(self, worker: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    def touch(self) -> None:
        with open(self.path, "w") as file:
            file.write(f"{os.getpid()} {time.time():.6f}\n")


app.steps["worker"].add(Heartbeat)
