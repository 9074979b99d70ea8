"""Shared fixtures: every test is checked for leaked processes, zombies, threads and
file descriptors."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import psutil
import pytest

from otp_py.runtime.guardian import Guardian

LEAK_DEADLINE = 5.0
"""Seconds teardown waits for the leftovers of a test to be reaped before failing it
(a killed grandchild is reaped by init, not by us)."""


def _helper_pids() -> set[int]:
    """Long-lived helpers that legitimately outlive a tree: the guardian, the
    multiprocessing fork server and resource tracker."""
    pids: set[int] = set()
    guardian = Guardian._shared
    if guardian is not None and guardian.pid is not None:
        pids.add(guardian.pid)
    from otp_py.backends.zygote import ForkServer

    server = ForkServer._shared
    if server is not None and server.pid is not None:
        pids.add(server.pid)
    try:
        from multiprocessing import forkserver, resource_tracker

        pid = forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
        if pid:
            pids.add(pid)
        pid = resource_tracker._resource_tracker._pid  # type: ignore[attr-defined]
        if pid:
            pids.add(pid)
    except AttributeError:
        pass
    return pids


def _descendants() -> list[psutil.Process]:
    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


def _fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


@pytest.fixture(scope="session", autouse=True)
def _warm_helpers() -> Iterator[None]:
    """Start the helpers once, before any snapshot, so their descriptors and pids
    are part of every baseline."""
    from otp_py.backends.zygote import ForkServer

    ForkServer.shared()._launch()
    Guardian.shared().ensure_started()
    yield


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if it leaves a process, zombie, thread or open fd behind."""
    if request.node.get_closest_marker("allow_leaks"):
        yield
        return
    before_pids = {p.pid for p in _descendants()}
    before_threads = set(threading.enumerate())
    before_fds = _fds()
    yield
    deadline = time.monotonic() + LEAK_DEADLINE
    while True:
        helpers = _helper_pids()
        procs = [p for p in _descendants() if p.pid not in before_pids | helpers]
        zombies = []
        for p in _descendants():
            try:
                if p.status() == psutil.STATUS_ZOMBIE:
                    zombies.append(p)
            except psutil.Error:
                pass
        threads = [t for t in threading.enumerate() if t not in before_threads and t.is_alive()]
        fds = _fds() - before_fds
        if not (procs or zombies or threads or fds):
            return
        if time.monotonic() > deadline:
            details = []
            if procs:
                details.append(f"processes {[(p.pid, _name(p)) for p in procs]}")
            if zombies:
                details.append(f"zombies {[p.pid for p in zombies]}")
            if threads:
                details.append(f"threads {[t.name for t in threads]}")
            if fds:
                details.append(f"fds {sorted(fds)} -> {[_target(fd) for fd in sorted(fds)]}")
            pytest.fail("test leaked: " + "; ".join(details))
        time.sleep(0.01)


def _name(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline()) or p.name()
    except psutil.Error:
        return "?"


def _target(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "allow_leaks: the test checks leaks itself (e.g. it kills a tree's process)"
    )
