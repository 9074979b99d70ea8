"""Supervise a process that runs a multiprocessing pool, the Celery 0.4 way.

Run it::

    python examples/celery_pool.py

then kill the pool's process (``kill -9 <pid>``, the pid it prints) and watch the
supervisor start a new one, pool workers and all. Ctrl-C or SIGTERM stops
everything; so does a crash loop (more than 3 restarts within 10 seconds), which
ends the program with an error instead.
"""

import multiprocessing
import os
import time

import otp_py


def square(n: int) -> int:
    return n * n


def serve(numbers: int) -> None:
    """The supervised process: a pool of two workers doing a round of work a second."""
    with multiprocessing.Pool(processes=2) as pool:
        print(f"pool process {os.getpid()} started", flush=True)
        while True:
            print("squares:", pool.map(square, range(numbers)), flush=True)
            time.sleep(1)


if __name__ == "__main__":
    supervisor = otp_py.OFASupervisor(
        target=serve,
        args=[5],
        ping_timeout=10,  # no answer to pings for 10 s: hung, so restarted
        check_interval=1,  # ping every second
        join_timeout=2,  # a stopped process gets 2 s before it is killed
        max_restart_freq=3,  # more than 3 restarts...
        max_restart_freq_time=10,  # ...within 10 s: give up
    )
    try:
        supervisor.start()  # blocks until Ctrl-C or SIGTERM
    except otp_py.MaxRestartsExceededError as exc:
        raise SystemExit(f"giving up: {exc}") from None
    print("stopped", flush=True)
