"""Attacks on the loopback web observer by another local user."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess

import pytest

import otp_py as otp
from tests.web import trees

pytest.importorskip("aiohttp", reason="the web extra (aiohttp) is not installed")

from otp_py.web import Recorder, WebObserver

NOBODY = 65534
PYTHON = shutil.which("python3", path="/usr/bin:/bin")

# Run as another user: a stdlib-only Python (the test's own may sit in a private home).
CLIENT = r"""
import json, sys, urllib.error, urllib.request
port = sys.argv[1]
for method, path, body in (("GET", "/api/tree", None),
                           ("POST", "/api/action", b'{"op": "restart", "path": "idle"}')):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body,
                                     method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            print(method, response.status)
    except urllib.error.HTTPError as exc:
        print(method, exc.code)
"""


@pytest.mark.skipif(os.geteuid() != 0 or PYTHON is None,
                    reason="needs root (to run a client as another user) and /usr/bin/python3")
def test_another_local_user_is_refused_by_the_loopback_observer() -> None:
    """Attack: as another local account (nobody), read the tree and restart a child
    through the loopback observer of root's tree. Loopback is open to every local
    user and needs no token, so both were done; the control socket refuses such a
    peer. The observer now asks the kernel who owns the connection, and refuses."""
    spec = otp.SupervisorSpec(id="root", children=[otp.ChildSpec.asyncio("idle", trees.idle)])

    async def test() -> None:
        recorder = Recorder()
        async with otp.supervise(spec, on_report=recorder) as sup:
            observer = WebObserver(sup, spec, recorder=recorder)
            try:
                _, port = await observer.start("127.0.0.1", 0)
                assert PYTHON is not None
                proc = await asyncio.create_subprocess_exec(
                    PYTHON, "-I", "-c", CLIENT, str(port), user=NOBODY, cwd="/",
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                out, err = await asyncio.wait_for(proc.communicate(), 60)
                assert proc.returncode == 0, err.decode()
                assert out.decode().split() == ["GET", "403", "POST", "403"], out.decode()
                assert all(e["type"] != "ChildTerminated" for e in observer.events())
            finally:
                await observer.close()

    asyncio.run(asyncio.wait_for(test(), 120))
