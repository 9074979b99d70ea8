"""Attacks on the web observer by a hostile child: its captured output."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

import otp_py as otp

aiohttp = pytest.importorskip("aiohttp", reason="the web extra (aiohttp) is not installed")

from otp_py.web import Recorder, WebObserver  # noqa: E402

SIZE = 8 << 20


def write_no_newline() -> None:
    """A child that writes 8 MiB without a newline, then waits."""
    for _ in range(SIZE >> 16):
        sys.stdout.buffer.write(b"x" * 65536)
    sys.stdout.flush()
    time.sleep(3600)


def test_a_log_with_no_newline_is_not_sent_whole(tmp_path: Path) -> None:
    """Attack: a child writes megabytes with no newline; its captured log is one line.
    The page's details of the child read that whole line from the file (copying it
    again for every block read backwards) and sent it all in the reply. The tail the
    observer reads and sends is bounded."""
    spec = otp.SupervisorSpec(id="root", output=otp.OutputCapture(dir=str(tmp_path)),
                              children=[otp.ChildSpec.process("noisy", write_no_newline)])

    async def test() -> None:
        recorder = Recorder()
        async with otp.supervise(spec, on_report=recorder) as sup:
            observer = WebObserver(sup, spec, recorder=recorder)
            try:
                _, port = await observer.start("127.0.0.1", 0)
                async with asyncio.timeout(60):
                    while not any(p.is_file() and p.stat().st_size >= SIZE
                                  for p in tmp_path.rglob("*")):
                        await asyncio.sleep(0.05)
                async with aiohttp.ClientSession() as session, session.get(
                        f"http://127.0.0.1:{port}/api/child?path=noisy") as response:
                    assert response.status == 200
                    body = await response.read()
                assert b'"stdout"' in body and b"xxxx" in body
                assert len(body) < 1 << 20, len(body)
            finally:
                await observer.close()

    asyncio.run(asyncio.wait_for(test(), 120))


async def raise_a_megabyte() -> None:
    await asyncio.sleep(0.01)
    raise RuntimeError("<b>" + "x" * 1_000_000)


def test_a_megabyte_exit_reason_is_clipped_everywhere_the_page_sees_it() -> None:
    """Attack: a child in a crash loop raises an exception whose message is a
    megabyte. Each event kept that text whole (500 events: half a gigabyte), each
    snapshot and stream message carried it, and a child's details, with its crash
    history, were 11 MB. Every text the observer keeps or sends is clipped."""
    spec = otp.SupervisorSpec(id="root", intensity=otp.SlidingWindow(max_restarts=1000,
                                                                       period=1),
                              children=[otp.ChildSpec.asyncio("boom", raise_a_megabyte)])

    async def test() -> None:
        recorder = Recorder()
        async with otp.supervise(spec, on_report=recorder) as sup:
            observer = WebObserver(sup, spec, recorder=recorder)
            try:
                _, port = await observer.start("127.0.0.1", 0)
                async with asyncio.timeout(60):
                    while sum(e["type"] == "ChildExited" for e in observer.events()) < 5:
                        await asyncio.sleep(0.02)
                assert max(len(e["text"]) for e in observer.events()) < 10_000
                async with aiohttp.ClientSession() as session:
                    for url in ("/api/tree", "/api/events", "/api/child?path=boom"):
                        async with session.get(f"http://127.0.0.1:{port}{url}") as response:
                            assert response.status == 200, url
                            body = await response.read()
                        assert b"characters cut" in body, url
                        assert len(body) < 500_000, (url, len(body))
            finally:
                await observer.close()

    asyncio.run(asyncio.wait_for(test(), 120))
