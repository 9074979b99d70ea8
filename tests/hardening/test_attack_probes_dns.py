"""Attack: TCP and HTTP probes whose host name never resolves (a resolver that
hangs: a dead DNS server, a firewall dropping its packets).

asyncio resolves names in the loop's default executor, a handful of threads that
the tree's asyncio children share (``asyncio.to_thread``, ``loop.getaddrinfo``:
any HTTP client). Before the fix each attempt queued one more ``getaddrinfo``
there: the stuck ones took every thread, and an asyncio child's ``to_thread`` waited
behind them. Now a probe resolves in the probes' own pool, at most one resolution
of a probe out at a time.

The hanging resolver is stood in for by ``socket.getaddrinfo`` blocking for names
under ``.hang.invalid`` (what the C library's call does when no answer comes)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import otp_py as otp
from otp_py import reports as rp
from tests.reports import Recorder

RELEASE = threading.Event()


@pytest.fixture
def hanging_resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".hang.invalid"):
            RELEASE.wait(30)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    RELEASE.clear()
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    try:
        yield
    finally:
        RELEASE.set()
    for thread in threading.enumerate():
        if thread.name.startswith(("otp_py-probe-call", "asyncio_")):
            thread.join(5)


def test_probes_of_an_unresolvable_name_do_not_starve_the_loops_executor(
        hanging_resolver: None) -> None:
    lags: list[float] = []

    async def uses_to_thread() -> None:
        while True:
            began = time.monotonic()
            await asyncio.to_thread(lambda: None)
            lags.append(time.monotonic() - began)
            await asyncio.sleep(0.05)

    async def forever() -> None:
        await asyncio.sleep(3600)

    children = [otp.ChildSpec(id=f"p{i}", start=forever, backend="asyncio",
                              liveness=probe)
                for i, probe in enumerate(
                    [otp.probes.Tcp(5432, f"db{i}.hang.invalid", interval=0.05, timeout=0.1,
                                    failure_threshold=1000) for i in range(4)]
                    + [otp.probes.Http(f"http://web{i}.hang.invalid/", interval=0.05,
                                       timeout=0.1, failure_threshold=1000)
                       for i in range(4)])]
    children.append(otp.ChildSpec(id="client", start=uses_to_thread, backend="asyncio"))
    recorder = Recorder()
    with otp.start(otp.SupervisorSpec(id="root", children=children), on_report=recorder) as sup:
        time.sleep(1.5)  # 30 intervals: 15 timeouts of each probe
        count = len(lags)
        deadline = time.monotonic() + 1.0
        while len(lags) == count:
            assert time.monotonic() < deadline, \
                "the asyncio child's to_thread() has waited for over a second"
            time.sleep(0.01)
        [info] = [c for c in sup.which_children() if c.id == "p0"]
        last = info.details["probes"]["liveness"]["last"]
        assert last is not None and not last["ok"]
    assert recorder.of(rp.ChildExited) == []
