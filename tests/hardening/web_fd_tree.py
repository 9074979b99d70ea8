"""A tree with its web observer, run with few file descriptors (RLIMIT_NOFILE 256),
for the connection-flood attack of test_attack_web_connections: it prints ``port=N``,
waits for a line on stdin (the flood is done), then tries what a tree must still be
able to do (open a pipe, start a process child) and prints ``result=ok`` or what failed."""

from __future__ import annotations

import asyncio
import resource
import sys

import otp_py as otp
from otp_py.web import Recorder, WebObserver
from tests.web import trees

LIMIT = 256


def spec() -> otp.SupervisorSpec:
    return otp.SupervisorSpec(id="root", children=[
        otp.ChildSpec.process("proc", trees.serve_forever, args=("proc",))])


async def main() -> None:
    recorder = Recorder()
    async with otp.supervise(spec(), on_report=recorder) as sup:
        observer = WebObserver(sup, spec(), recorder=recorder)
        try:
            _, port = await observer.start("127.0.0.1", 0)
            print(f"port={port}", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
            try:
                import os
                read, write = os.pipe()
                os.close(read)
                os.close(write)
                await sup.start_child(otp.ChildSpec.process(
                    "extra", trees.serve_forever, args=("extra",)))
                info = {c.id: c for c in await sup.which_children()}["extra"]
                assert info.state == "running" and info.pid is not None, info
            except Exception as exc:
                print(f"result=failed: {exc!r}", flush=True)
            else:
                print("result=ok", flush=True)
        finally:
            await observer.close()


if __name__ == "__main__":
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, hard))
    asyncio.run(main())
