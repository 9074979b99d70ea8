"""Attacks on the web observer's event stream: readers that connect and never read."""

from __future__ import annotations

import asyncio
import gc
import socket
import weakref

import pytest

import otp_py as otp
from tests.web import trees

pytest.importorskip("aiohttp", reason="the web extra (aiohttp) is not installed")

from otp_py.web import Recorder, WebObserver
from otp_py.web import server as web_server

TIMEOUT = 30.0


def spec() -> otp.SupervisorSpec:
    return otp.SupervisorSpec(id="root", children=[otp.ChildSpec.asyncio("idle", trees.idle)])


def test_a_stream_reader_that_never_reads_is_disconnected_once_too_far_behind() -> None:
    """Attack: open /api/stream with a tiny receive buffer and never read, while the
    tree keeps reporting. Its handler blocks in a write; the stream must be dropped
    (socket closed, handler ended) rather than kept for ever with its backlog."""

    async def test() -> None:
        recorder = Recorder()
        async with otp.supervise(spec(), on_report=recorder) as sup:
            observer = WebObserver(sup, spec(), recorder=recorder)
            try:
                _, port = await observer.start("127.0.0.1", 0)
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.setblocking(False)
                await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
                try:
                    sock.send(b"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                    async with asyncio.timeout(TIMEOUT):
                        while not observer._clients:  # the stream is open
                            await asyncio.sleep(0.01)
                    big = {"text": "x" * 100_000}
                    for i in range(web_server.QUEUE + 200):
                        observer._broadcast("report", big)
                        if i % 50 == 0:
                            await asyncio.sleep(0)  # let the handler write what it can
                    runner = observer._runner
                    assert runner is not None and runner.server is not None
                    async with asyncio.timeout(TIMEOUT):
                        while runner.server.connections:
                            await asyncio.sleep(0.02)
                    assert not observer._clients
                finally:
                    sock.close()
            finally:
                await observer.close()

    asyncio.run(asyncio.wait_for(test(), 120))


def test_a_closed_observer_is_let_go_by_the_trees_recorder() -> None:
    """Attack: serve and close the observer of one running tree again and again (a
    user's app that mounts it per session, or a watchdog restarting it). The tree's
    recorder kept every closed observer subscribed, with its events and page files:
    memory grew with each one for the tree's whole life."""

    async def test() -> None:
        recorder = Recorder()
        async with otp.supervise(spec(), on_report=recorder) as sup:
            refs = []
            for _ in range(3):
                observer = WebObserver(sup, spec(), recorder=recorder)
                await observer.start("127.0.0.1", 0)
                await observer.close()
                refs.append(weakref.ref(observer))
                del observer
            gc.collect()
            assert [ref() for ref in refs] == [None, None, None]
            assert not recorder._subscribers

    asyncio.run(asyncio.wait_for(test(), 60))
