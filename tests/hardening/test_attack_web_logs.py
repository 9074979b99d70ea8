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
