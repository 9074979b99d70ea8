"""Attacks on the loopback web observer from another site's page, in the browser."""

from __future__ import annotations

import asyncio

import pytest

import otp_py as otp
from tests.web import trees

aiohttp = pytest.importorskip("aiohttp", reason="the web extra (aiohttp) is not installed")

from otp_py.web import Recorder, WebObserver  # noqa: E402


def test_another_sites_page_cannot_use_the_api_but_may_link_to_the_page() -> None:
    """Attack: a page on another site points EventSource, fetch(no-cors) or <img> at
    http://127.0.0.1:PORT/api/... in a loop. The Host names loopback, so each was
    served: it could not read the answers, but every one made the tree's loop draw a
    snapshot, and held one of the observer's connections. What a browser marks as
    another site's (Sec-Fetch-Site) is refused first; a link to the page still works."""
    spec = otp.SupervisorSpec(id="root", children=[otp.ChildSpec.asyncio("idle", trees.idle)])

    async def test() -> None:
        recorder = Recorder()
        async with otp.supervise(spec, on_report=recorder) as sup:
            observer = WebObserver(sup, spec, recorder=recorder)
            try:
                _, port = await observer.start("127.0.0.1", 0)
                base = f"http://127.0.0.1:{port}"
                async with aiohttp.ClientSession() as session:
                    for site in ("cross-site", "same-site"):
                        for path, mode in (("/api/tree", "no-cors"), ("/api/stream", "cors"),
                                           ("/api/child?path=idle", "no-cors")):
                            async with session.get(base + path, headers={
                                    "Sec-Fetch-Site": site, "Sec-Fetch-Mode": mode}) as r:
                                assert r.status == 403, (site, path, r.status)
                    assert not observer._clients
                    async with session.get(base + "/", headers={
                            "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}) as r:
                        assert r.status == 200
                    async with session.get(base + "/api/tree", headers={
                            "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}) as r:
                        assert r.status == 200
            finally:
                await observer.close()

    asyncio.run(asyncio.wait_for(test(), 60))
