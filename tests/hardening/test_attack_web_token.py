"""Attacks on the token of an observer served off loopback."""

from __future__ import annotations

import asyncio

import pytest

import otp_py as otp
from tests.web import trees

pytest.importorskip("aiohttp", reason="the web extra (aiohttp) is not installed")

from otp_py.web import Recorder, WebObserver


@pytest.mark.parametrize("header", [b"Authorization: Bearer \xff\xfe", b"Cookie: {cookie}=\xff"],
                         ids=["bearer", "cookie"])
def test_a_token_that_is_not_utf8_is_refused_not_a_server_error(header: bytes) -> None:
    """Attack: send a token of bytes that are not UTF-8, with no token known. The check
    raised UnicodeEncodeError: a 500 and a traceback in the tree's log for every such
    request of an unauthenticated client. It is a wrong token: 401."""
    spec = otp.SupervisorSpec(id="root", children=[otp.ChildSpec.asyncio("idle", trees.idle)])

    async def test() -> None:
        recorder = Recorder()
        async with otp.supervise(spec, on_report=recorder) as sup:
            observer = WebObserver(sup, spec, recorder=recorder)
            try:
                _, port = await observer.start("0.0.0.0", 0, allow_remote=True)
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                try:
                    line = header.replace(b"{cookie}", f"otp_py_web_{port}".encode())
                    writer.write(b"GET /api/tree HTTP/1.1\r\nHost: example\r\n" + line +
                                 b"\r\nConnection: close\r\n\r\n")
                    async with asyncio.timeout(30):
                        status = await reader.readline()
                    assert status.startswith(b"HTTP/1.1 401"), status
                finally:
                    writer.close()
                    await writer.wait_closed()
            finally:
                await observer.close()

    asyncio.run(asyncio.wait_for(test(), 60))
