"""Attacks on the web observer's connections: floods of them, and idle ones."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import IO

import pytest

import otp_py as otp

pytest.importorskip("aiohttp", reason="the web extra (aiohttp) is not installed")

from otp_py.web import Recorder, WebObserver
from otp_py.web import server as web_server
from tests.web import trees

ROOT = Path(__file__).resolve().parents[2]
FLOOD = 400


def _line(stream: IO[str], prefix: str) -> str:
    """The rest of the next line that starts with ``prefix`` (children print too)."""
    for line in stream:
        if line.startswith(prefix):
            return line[len(prefix):].strip()
    raise AssertionError(f"the tree ended before printing {prefix!r}")


async def _hold(port: int, held: list[asyncio.StreamWriter]) -> str:
    """One connection of the flood: ask for something small and keep the connection."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port), 3)
    except (OSError, TimeoutError):
        return "not connected"
    held.append(writer)
    try:
        writer.write(b"GET /api/events?limit=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        line = await asyncio.wait_for(reader.readline(), 3)
    except (OSError, TimeoutError):
        return "no answer"
    return "served" if line.startswith(b"HTTP/1.1 200") else "refused"


def test_a_flood_of_connections_leaves_the_tree_its_file_descriptors() -> None:
    """Attack: open 400 connections to the observer of a tree limited to 256 file
    descriptors and keep them. Each took a descriptor of the tree's process, until
    the tree could open no pipe, start no child and accept nothing on its control
    socket. The observer must keep its connections to a bound well below that."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.hardening.web_fd_tree"], cwd=ROOT,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout is not None and proc.stdin is not None
        port = int(_line(proc.stdout, "port="))
        held: list[asyncio.StreamWriter] = []

        async def flood() -> list[str]:
            try:
                return await asyncio.gather(*(_hold(port, held) for _ in range(FLOOD)))
            finally:
                proc.stdin.write("go\n")  # (the tree tries while they are held)
                proc.stdin.flush()
                result.append(await asyncio.to_thread(_line, proc.stdout, "result="))
                for writer in held:
                    writer.close()
                for writer in held:
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()

        result: list[str] = []
        outcomes = asyncio.run(asyncio.wait_for(flood(), 120))
        assert result == ["ok"], (result, {o: outcomes.count(o) for o in set(outcomes)})
        assert outcomes.count("served") >= 1  # (the observer still serves some)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(30)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize("start", [
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n",  # headers, a line now and then
    b"POST /api/action HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 1000\r\n\r\n{",          # a body, a byte now and then
], ids=["headers", "body"])
def test_a_slow_request_is_cut_off(monkeypatch: pytest.MonkeyPatch, start: bytes) -> None:
    """Attack (slowloris): send a request a byte at a time. The connection was kept
    for an hour (aiohttp's default), so a few dozen such clients locked the page's
    user out of the capped observer; it is closed after the request time."""
    monkeypatch.setattr(web_server, "REQUEST_TIME", 1.0, raising=False)
    spec = otp.SupervisorSpec(id="root", children=[otp.ChildSpec.asyncio("idle", trees.idle)])

    async def test() -> None:
        recorder = Recorder()
        async with otp.supervise(spec, on_report=recorder) as sup:
            observer = WebObserver(sup, spec, recorder=recorder)
            try:
                _, port = await observer.start("127.0.0.1", 0)
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                try:
                    writer.write(start)

                    async def trickle() -> None:
                        while True:
                            await asyncio.sleep(0.2)
                            writer.write(b"X-Slow: 1\r\n" if start.startswith(b"GET")
                                         else b" ")

                    dripping = asyncio.create_task(trickle())
                    try:
                        async with asyncio.timeout(15):
                            # (until the server closes it; a reset if it does so while
                            # our bytes still come)
                            with contextlib.suppress(ConnectionResetError):
                                await reader.read()
                    finally:
                        dripping.cancel()
                        with contextlib.suppress(asyncio.CancelledError, OSError):
                            await dripping
                finally:
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
            finally:
                await observer.close()

    asyncio.run(asyncio.wait_for(test(), 60))
