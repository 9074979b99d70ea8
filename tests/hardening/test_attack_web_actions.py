"""Attacks on the web observer's actions: malformed bodies and loose fields."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import otp_py as otp
from tests.web import trees

aiohttp = pytest.importorskip("aiohttp", reason="the web extra (aiohttp) is not installed")

from otp_py.web import Recorder, WebObserver  # noqa: E402


def spec() -> otp.SupervisorSpec:
    return otp.SupervisorSpec(id="root", children=[
        otp.ChildSpec.process("proc", trees.serve_forever, args=("proc",))])


async def post_raw(port: int, body: bytes) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.post(
            f"http://127.0.0.1:{port}/api/action", data=body,
            headers={"Content-Type": "application/json"}) as response:
        return response.status, await response.text()


@pytest.mark.parametrize("body", [
    b'{"op": ["restart"], "path": "proc"}',   # an unhashable op
    b'{"op": {}, "path": "proc"}',
    b"[" * 20000 + b"]" * 20000,                # nested past the recursion limit
])
def test_a_malformed_action_is_refused_as_such_not_a_server_error(body: bytes) -> None:
    """Attack: POST JSON the handler did not expect; it answered 500 (with a traceback
    in the tree's log) instead of a clear refusal."""

    async def test() -> None:
        recorder = Recorder()
        async with otp.supervise(spec(), on_report=recorder) as sup:
            observer = WebObserver(sup, spec(), recorder=recorder)
            try:
                _, port = await observer.start("127.0.0.1", 0)
                status, text = await post_raw(port, body)
                assert status in (400, 409), text
                assert '"ok": false' in text
            finally:
                await observer.close()

    asyncio.run(asyncio.wait_for(test(), 60))


def test_a_signal_is_sent_to_the_group_only_when_group_is_true() -> None:
    """Attack: ``"group": "no"`` (a truthy string) widened a signal from the child to
    its whole process group; a group that is not a boolean is refused."""

    async def test() -> None:
        recorder = Recorder()
        async with otp.supervise(spec(), on_report=recorder) as sup:
            observer = WebObserver(sup, spec(), recorder=recorder)
            try:
                _, port = await observer.start("127.0.0.1", 0)
                status, text = await post_raw(
                    port, b'{"op": "signal", "path": "proc", "signal": "CONT", '
                          b'"group": "no"}')
                assert status == 409, text
                assert "'group' must be true or false" in text
                assert "process group" not in text
            finally:
                await observer.close()

    asyncio.run(asyncio.wait_for(test(), 60))
