"""What runs inside the fresh processes of the scale and idle benchmarks.

Each scale sample runs in a new interpreter (``python -m benchmarks.worker scale
...``) so that its memory figure starts from a clean heap: in a process that has
already built and freed a big tree, the allocator would hand the old memory back
and the growth of the resident set would say nothing. The worker warms up on a
small tree of the same kind (imports, fork server, guardian), then measures, and
prints one JSON object.

An idle worker (``python -m benchmarks.worker idle ...``) starts its children,
prints one JSON line (its pid and its helper processes' pids) when they are all
up, and then sits idle until it receives SIGTERM; the parent measures it from the
outside (``/proc``).

The kinds of children:

* ``asyncio``: ``async def`` children that say they are up and await a future
  that never completes (otp_py tasks, or bare ``loop.create_task``);
* ``thread``: threads that say they are up and wait for their stop token
  (otp_py) or a shared ``threading.Event`` (bare);
* ``process``: otp_py process children (its fork server) or
  ``multiprocessing`` forkserver processes running :func:`benchmarks.targets.idle`,
  which say they are up on a Unix datagram socket and sleep.
"""

from __future__ import annotations

import asyncio
import gc
import json
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from typing import Any

import otp_py as otp
from benchmarks import targets
from benchmarks.harness import quiet_logging

__all__ = ["TREE_SHAPES", "main"]

TREE_SHAPES = {
    # n: (supervisors under the root, supervisors under each of those, children each)
    5: (1, 1, 5),
    20: (2, 2, 5),
    50: (2, 5, 5),
    100: (4, 5, 5),
    200: (2, 10, 10),
    1_000: (10, 10, 10),
    10_000: (10, 10, 100),
}

_PAGE = os.sysconf("SC_PAGE_SIZE")



def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


class Counter:
    """Counts children that say they are up; ``all_up`` fires at ``n``."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.lock = threading.Lock()
        self.all_up = threading.Event()
        self.future: asyncio.Future[None] | None = None

    def up(self) -> None:
        with self.lock:
            self.count += 1
            if self.count == self.n:
                self.all_up.set()
                if self.future is not None and not self.future.done():
                    self.future.set_result(None)


async def idle_task(counter: Counter) -> None:
    counter.up()
    await asyncio.get_running_loop().create_future()


def idle_thread(counter: Counter) -> None:
    counter.up()
    otp.wait_for_stop()


def _tree(n: int, shape: str, leaf: Callable[[int], otp.ChildSpec]) -> otp.SupervisorSpec:
    if shape == "flat":
        return otp.SupervisorSpec(id="root", children=[leaf(i) for i in range(n)])
    a, b, c = TREE_SHAPES[n]
    serial = iter(range(n))
    return otp.SupervisorSpec(id="root", children=[
        otp.SupervisorSpec(id=f"s{i}", children=[
            otp.SupervisorSpec(id=f"s{i}.{j}", children=[leaf(next(serial)) for _ in range(c)])
            for j in range(b)
        ])
        for i in range(a)
    ])


class Listener:
    """A Unix datagram socket process children say "up" on."""

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="otp-bench-")
        self.path = os.path.join(self.directory, "up.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind(self.path)

    def wait(self, n: int, timeout: float = 120) -> None:
        self.sock.settimeout(timeout)
        for _ in range(n):
            self.sock.recv(16)

    def close(self) -> None:
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self.directory)


# --------------------------------------------------------------------- scale


def _scale_otp(kind: str, n: int, shape: str) -> dict[str, float]:
    if kind == "asyncio":
        counter = Counter(n)
        tree = _tree(n, shape, lambda i: otp.ChildSpec.task(f"c{i}", idle_task, args=(counter,)))

        async def main() -> dict[str, float]:
            counter.future = asyncio.get_running_loop().create_future()
            gc.collect()
            rss0 = rss_bytes()
            t0 = time.perf_counter()
            async with otp.supervise(tree):
                await counter.future
                t1 = time.perf_counter()
                rss1 = rss_bytes()
            t2 = time.perf_counter()
            return {"start_s": t1 - t0, "stop_s": t2 - t1, "bytes": rss1 - rss0}

        return asyncio.run(main())
    if kind == "thread":
        counter = Counter(n)
        tree = _tree(n, shape, lambda i: otp.ChildSpec.thread(f"c{i}", idle_thread,
                                                              args=(counter,)))
        gc.collect()
        rss0 = rss_bytes()
        t0 = time.perf_counter()
        sup = otp.start(tree)
        counter.all_up.wait(120)
        t1 = time.perf_counter()
        rss1 = rss_bytes()
        sup.stop()
        t2 = time.perf_counter()
        return {"start_s": t1 - t0, "stop_s": t2 - t1, "bytes": rss1 - rss0}
    listener = Listener()
    try:
        if shape == "sofo":  # simple_one_for_one: children added by start_child
            tree = otp.SupervisorSpec(id="root", strategy="simple_one_for_one", children=[
                otp.ChildSpec.process("c", targets.idle)])
        else:
            tree = _tree(n, shape, lambda i: otp.ChildSpec.process(
                f"c{i}", targets.idle, args=(listener.path,)))
        gc.collect()
        rss0 = rss_bytes()
        t0 = time.perf_counter()
        sup = otp.start(tree)
        if shape == "sofo":
            for _ in range(n):
                sup.start_child(args=(listener.path,))
        listener.wait(n)
        t1 = time.perf_counter()
        rss1 = rss_bytes()
        sup.stop()
        t2 = time.perf_counter()
    finally:
        listener.close()
    return {"start_s": t1 - t0, "stop_s": t2 - t1, "bytes": rss1 - rss0, "rss": rss1}


def _scale_bare(kind: str, n: int, shape: str = "flat") -> dict[str, float]:
    if kind == "asyncio":
        counter = Counter(n)

        async def main() -> dict[str, float]:
            loop = asyncio.get_running_loop()
            counter.future = loop.create_future()
            gc.collect()
            rss0 = rss_bytes()
            t0 = time.perf_counter()
            tasks = [loop.create_task(idle_task(counter)) for _ in range(n)]
            await counter.future
            t1 = time.perf_counter()
            rss1 = rss_bytes()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            t2 = time.perf_counter()
            return {"start_s": t1 - t0, "stop_s": t2 - t1, "bytes": rss1 - rss0}

        return asyncio.run(main())
    if kind == "thread":
        counter = Counter(n)
        stop = threading.Event()

        def body() -> None:
            counter.up()
            stop.wait()

        gc.collect()
        rss0 = rss_bytes()
        t0 = time.perf_counter()
        threads = [threading.Thread(target=body) for _ in range(n)]
        for thread in threads:
            thread.start()
        counter.all_up.wait(120)
        t1 = time.perf_counter()
        rss1 = rss_bytes()
        stop.set()
        for thread in threads:
            thread.join()
        t2 = time.perf_counter()
        return {"start_s": t1 - t0, "stop_s": t2 - t1, "bytes": rss1 - rss0}
    ctx = multiprocessing.get_context("forkserver")
    listener = Listener()
    try:
        gc.collect()
        rss0 = rss_bytes()
        t0 = time.perf_counter()
        processes = [ctx.Process(target=targets.idle, args=(listener.path,)) for _ in range(n)]
        for process in processes:
            process.start()
        listener.wait(n)
        t1 = time.perf_counter()
        rss1 = rss_bytes()
        if shape == "serial":  # one by one, last first, as OTP stops a static supervisor
            for process in reversed(processes):
                process.terminate()
                process.join()
        else:  # all at once
            for process in processes:
                process.terminate()
            for process in processes:
                process.join()
        t2 = time.perf_counter()
    finally:
        listener.close()
    return {"start_s": t1 - t0, "stop_s": t2 - t1, "bytes": rss1 - rss0, "rss": rss1}


def scale(who: str, kind: str, n: int, shape: str) -> dict[str, float]:
    """Warm up on a small tree of the same kind, then measure one start and stop."""
    small = 5 if kind == "process" else 20
    if who == "otp":
        _scale_otp(kind, small, shape)
        return _scale_otp(kind, n, shape)
    _scale_bare(kind, small, shape)
    return _scale_bare(kind, n, shape)


# --------------------------------------------------------------------- idle


def _helpers() -> dict[str, int]:
    found: dict[str, int] = {}
    from otp_py.backends.zygote import ForkServer
    from otp_py.runtime.guardian import Guardian

    if ForkServer._shared is not None and ForkServer._shared.pid:
        found["otp_py fork server"] = ForkServer._shared.pid
    if Guardian._shared is not None and Guardian._shared.pid:
        found["otp_py guardian"] = Guardian._shared.pid
    try:
        from multiprocessing import forkserver, resource_tracker

        pid = forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
        if pid:
            found["multiprocessing forkserver"] = pid
        pid = resource_tracker._resource_tracker._pid  # type: ignore[attr-defined]
        if pid:
            found["multiprocessing resource tracker"] = pid
    except AttributeError:
        pass
    return found


def _announce(extra: dict[str, Any] | None = None) -> None:
    print(json.dumps({"pid": os.getpid(), "helpers": _helpers(), **(extra or {})}), flush=True)


def idle(who: str, kind: str, n: int) -> None:
    """Start ``n`` idle children, announce, and sit idle until SIGTERM."""
    if who == "otp":
        listener = Listener() if kind == "process" else None
        counter = Counter(n)
        if kind == "process":
            assert listener is not None
            tree = _tree(n, "flat", lambda i: otp.ChildSpec.process(
                f"c{i}", targets.idle, args=(listener.path,)))
        else:
            tree = _tree(n, "flat", lambda i: otp.ChildSpec.task(f"c{i}", idle_task,
                                                                 args=(counter,)))

        def announce_when_up() -> None:
            if listener is not None:
                listener.wait(n)
                listener.close()
            else:
                counter.all_up.wait(120)
            _announce()

        def on_report(report: Any) -> None:
            if isinstance(report, otp.reports.SupervisorStarted) and report.path == ("root",):
                # Not on the tree's loop: a listener must not block it.
                threading.Thread(target=announce_when_up).start()

        otp.run(tree, on_report=on_report)  # SIGTERM stops it in order
        return
    if kind == "process":
        ctx = multiprocessing.get_context("forkserver")
        listener = Listener()
        processes = [ctx.Process(target=targets.idle, args=(listener.path,)) for _ in range(n)]
        for process in processes:
            process.start()
        listener.wait(n)
        listener.close()
        stopping = threading.Event()

        def on_term(*_: Any) -> None:
            stopping.set()
            for process in processes:
                process.terminate()

        signal.signal(signal.SIGTERM, on_term)
        _announce()
        # The floor: a supervisor blocked until one of its children ends.
        sentinels = [process.sentinel for process in processes]
        while not stopping.is_set():
            wait(sentinels)
        for process in processes:
            process.join()
        return
    counter = Counter(n)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        counter.future = loop.create_future()
        tasks = [loop.create_task(idle_task(counter)) for _ in range(n)]
        await counter.future
        stop = loop.create_future()
        loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
        _announce()
        await stop
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


def main(argv: list[str]) -> int:
    quiet_logging()
    mode, who, kind, n = argv[0], argv[1], argv[2], int(argv[3])
    if mode == "scale":
        print(json.dumps(scale(who, kind, n, argv[4] if len(argv) > 4 else "flat")))
    else:
        idle(who, kind, n)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
