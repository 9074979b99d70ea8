"""The web observer over HTTP (aiohttp's client against a tree run in the test): the
page and its files, the tree, the pushed events, a child's details, the actions, and
who may ask."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

import otp_py as otp
from tests.web import trees

aiohttp = pytest.importorskip("aiohttp", reason="the web extra (aiohttp) is not installed")

from otp_py.web import Recorder, WebAddressError, WebObserver, is_loopback  # noqa: E402

TIMEOUT = 30.0
STATIC = Path(otp.__file__).parent / "web" / "static"


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 120))


def tree(crash: asyncio.Event, flag: str | None = None, log_dir: str | None = None
         ) -> otp.SupervisorSpec:
    proc = (otp.ChildSpec.process("proc", trees.crash_once, args=(flag,)) if flag else
            otp.ChildSpec.process("proc", trees.serve_forever, args=("proc",)))
    return otp.SupervisorSpec(
        id="root",
        intensity=otp.SlidingWindow(max_restarts=10, period=30),
        output=otp.OutputCapture(dir=log_dir) if log_dir else None,
        children=[
            proc,
            otp.ChildSpec.asyncio("task", trees.crash_when, args=(crash,)),
            otp.SupervisorSpec(id="pool", strategy="one_for_all", children=[
                otp.ChildSpec.asyncio("conn", trees.idle),
                otp.ChildSpec.thread("reader", trees.wait_in_thread),
            ]),
        ],
    )


@contextlib.asynccontextmanager
async def observed(spec: otp.SupervisorSpec, host: str = "127.0.0.1", **start: Any
                   ) -> AsyncIterator[tuple[otp.AsyncSupervisor, WebObserver, Any]]:
    """The tree ``spec`` running, its observer serving, and a client session on it."""
    recorder = Recorder()
    async with otp.supervise(spec, on_report=recorder) as sup:
        observer = WebObserver(sup, spec, recorder=recorder)
        try:
            _, port = await observer.start(host, 0, **start)
            base = f"http://127.0.0.1:{port}"
            jar = aiohttp.CookieJar(unsafe=True)  # (it keeps no cookie of an IP otherwise)
            async with aiohttp.ClientSession(base_url=base, cookie_jar=jar) as session:
                yield sup, observer, session
        finally:
            await observer.close()


async def get_json(session: Any, url: str, status: int = 200, **kw: Any) -> Any:
    async with session.get(url, **kw) as response:
        assert response.status == status, await response.text()
        return await response.json()


async def post(session: Any, body: Any, **kw: Any) -> tuple[int, Any]:
    async with session.post("/api/action", json=body, **kw) as response:
        return response.status, await response.json()


async def until(predicate: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait (asking again every 20 ms) until ``predicate()`` holds."""
    async with asyncio.timeout(TIMEOUT):
        while not await predicate():
            await asyncio.sleep(0.02)


def nodes(node: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {node["path"]: node}
    for child in node.get("children") or ():
        found |= nodes(child)
    return found


async def child(session: Any, path: str) -> dict[str, Any]:
    return nodes((await get_json(session, "/api/tree"))["root"])[path]


class Stream:
    """A reader of ``/api/stream``: ``(event, data)`` pairs."""

    def __init__(self, response: Any) -> None:
        self.response = response

    async def next(self) -> tuple[str, Any]:
        kind, data = "", ""
        async with asyncio.timeout(TIMEOUT):
            while True:
                line = (await self.response.content.readline()).decode()
                assert line, "the stream ended"
                if line.startswith("event: "):
                    kind = line[7:].strip()
                elif line.startswith("data: "):
                    data += line[6:].strip()
                elif line == "\n" and kind:
                    return kind, json.loads(data)

    async def until(self, predicate: Callable[[str, Any], bool]) -> tuple[str, Any]:
        while True:
            kind, data = await self.next()
            if predicate(kind, data):
                return kind, data


# ---------------------------------------------------------------- the page


def test_the_page_and_its_files_are_served_with_no_outside_resource() -> None:
    async def test() -> None:
        async with observed(tree(asyncio.Event())) as (_, _, session):
            async with session.get("/") as response:
                assert response.status == 200
                assert response.content_type == "text/html"
                page = await response.text()
                assert "default-src 'self'" in response.headers["Content-Security-Policy"]
            for src in re.findall(r'(?:src|href)="([^"#]+)"', page):
                async with session.get("/" + src) as response:
                    assert response.status == 200, src
            async with session.get("/static/app.js") as response:
                assert response.content_type == "text/javascript"
            async with session.get("/static/nothing.js") as response:
                assert response.status == 404

    run(test)
    for file in STATIC.iterdir():  # offline: nothing fetched from elsewhere
        text = file.read_text()
        assert not re.search(r"https?://|//cdn|@import|url\(", text), file.name


def test_every_button_and_control_of_the_page_has_a_label() -> None:
    page = (STATIC / "index.html").read_text()
    for button in re.findall(r"<button[^>]*>.*?</button>", page, re.S):
        text = re.sub(r"<span aria-hidden=\"true\">.*?</span>|<[^>]+>|&#x\w+;", "", button)
        assert "aria-label=" in button or text.strip(), button
    for select in re.findall(r'<select id="([\w-]+)"', page):
        assert f'for="{select}"' in page, select


# ---------------------------------------------------------------- the tree


def test_the_tree_shows_every_child_with_its_facts_and_each_supervisors_budget() -> None:
    async def test() -> None:
        async with observed(tree(asyncio.Event())) as (_, _, session):
            reply = await get_json(session, "/api/tree")
            found = nodes(reply["root"])
            assert set(found) == {"root", "root/proc", "root/task", "root/pool",
                                  "root/pool/conn", "root/pool/reader"}
            assert reply["tree"]["id"] == "root" and reply["tree"]["pid"] == os.getpid()
            proc = found["root/proc"]
            assert proc["state"] == "running" and proc["backend"] == "process"
            assert psutil.Process(proc["pid"]).ppid() in (os.getpid(), *(
                p.pid for p in psutil.Process().children(recursive=True)))
            pool = found["root/pool"]
            assert pool["strategy"] == "one_for_all" and pool["kind"] == "supervisor"
            assert found["root"]["intensity"] == "at most 10 restarts in 30 s"
            assert found["root"]["budget"] == 0.0

    run(test)


def test_a_crash_is_pushed_at_once_then_the_tree_with_its_restart() -> None:
    async def test() -> None:
        crash = asyncio.Event()
        async with observed(tree(crash)) as (_, _, session), \
                session.get("/api/stream") as response:
                assert response.content_type == "text/event-stream"
                stream = Stream(response)
                kind, hello = await stream.next()
                assert kind == "hello"
                assert "root/task" in nodes(hello["root"])
                crash.set()
                _, exited = await stream.until(
                    lambda k, d: k == "report" and d["type"] == "ChildExited")
                assert exited["path"] == "root/task" and exited["abnormal"]
                assert exited["outcome"] == "restart"
                assert "ConnectionResetError" in exited["text"]
                _, started = await stream.until(
                    lambda k, d: k == "report" and d["type"] == "ChildStarted")
                assert started["path"] == "root/task" and started["restarts"] == 1
                _, picture = await stream.until(
                    lambda k, d: k == "tree" and nodes(d["root"])["root/task"]["restarts"])
                task = nodes(picture["root"])["root/task"]
                assert task["state"] == "running"
                assert task["last_exit"]["abnormal"]
                assert 0 < picture["root"]["budget"] <= 0.1

    run(test)


def test_the_timeline_keeps_the_last_events_filtered_by_subtree() -> None:
    async def test() -> None:
        async with observed(tree(asyncio.Event())) as (_, _, session):
            assert (await post(session, {"op": "restart", "path": "pool"}))[0] == 200
            await until(lambda: _has_events(session, "root/pool", 4), "the pool's events")
            events = (await get_json(session, "/api/events?subtree=root/pool"))["events"]
            assert events and all(e["path"].startswith("root/pool") for e in events)
            everything = (await get_json(session, "/api/events"))["events"]
            assert any(e["path"] == "root/proc" for e in everything)
            last = (await get_json(session, "/api/events?limit=2"))["events"]
            assert last == everything[-2:]
            async with session.get("/api/events?limit=x") as response:
                assert response.status == 400 and "'limit'" in await response.text()

    run(test)


async def _has_events(session: Any, subtree: str, count: int) -> bool:
    reply = await get_json(session, f"/api/events?subtree={subtree}")
    return len(reply["events"]) >= count


def test_a_childs_details_have_its_crash_history_traceback_and_log_tail(tmp_path: Path) -> None:
    async def test() -> None:
        spec = tree(asyncio.Event(), flag=str(tmp_path / "flag"), log_dir=str(tmp_path / "log"))
        async with observed(spec) as (_, _, session):
            async def crashed_once() -> bool:
                return (await child(session, "root/proc"))["restarts"] >= 1
            await until(crashed_once, "proc's restart")

            async def logged_twice() -> bool:
                reply = await get_json(session, "/api/child?path=root/proc")
                return sum("hello from the worker" in line for line in
                           reply["child"]["logs"]["stdout"]["lines"]) >= 2
            await until(logged_twice, "proc's second start in its log")
            reply = await get_json(session, "/api/child?path=proc")  # (root id optional)
            details = reply["child"]
            assert details["path"] == "root/proc" and details["state"] == "running"
            [crash] = details["history"]
            assert crash["abnormal"] and "first run fails on purpose" in crash["reason"]
            assert "Traceback" in crash["traceback"] and "crash_once" in crash["traceback"]
            assert details["logs"]["stderr"]["file"].endswith("proc.stderr.log")
            task = (await get_json(session, "/api/child?path=root/task"))["child"]
            assert "only process and command children" in task["logs"]["stdout"]["note"]
            missing = await get_json(session, "/api/child?path=root/nobody", status=404)
            assert "no child 'nobody'" in missing["error"]

    run(test)


# ---------------------------------------------------------------- the actions


def test_the_buttons_make_the_control_sockets_calls() -> None:
    async def test() -> None:
        async with observed(tree(asyncio.Event())) as (sup, _, session):
            before = (await child(session, "root/proc"))["pid"]
            status, reply = await post(session, {"op": "restart", "path": "root/proc"})
            assert (status, reply["message"]) == (200, "restarted root/proc")
            after = await child(session, "root/proc")
            assert after["pid"] != before and after["state"] == "running"
            assert not psutil.pid_exists(before) or psutil.Process(before).status() == "zombie"

            status, reply = await post(session, {"op": "terminate", "path": "pool/conn"})
            assert (status, reply["message"]) == (200, "terminated root/pool/conn")
            assert (await child(session, "root/pool/conn"))["state"] == "stopped"
            status, reply = await post(session, {"op": "start", "path": "pool/conn"})
            assert (status, reply["message"]) == (200, "started root/pool/conn")
            assert (await child(session, "root/pool/conn"))["state"] == "running"

            pid = after["pid"]
            status, reply = await post(session, {"op": "signal", "path": "root/proc",
                                                 "signal": "TERM"})
            assert status == 200 and reply["message"] == f"sent SIGTERM to root/proc (pid {pid})"

            async def restarted() -> bool:
                now = await child(session, "root/proc")
                return now["pid"] not in (None, pid) and now["state"] == "running"
            await until(restarted, "proc's restart after SIGTERM")

            # The control socket's own refusals, word for word.
            status, reply = await post(session, {"op": "signal", "path": "task",
                                                 "signal": "HUP"})
            assert status == 409 and "only process and command children can be signalled" \
                in reply["error"]
            status, reply = await post(session, {"op": "signal", "path": "proc",
                                                 "signal": "NOPE"})
            assert status == 409 and "unknown signal 'NOPE'" in reply["error"]
            status, reply = await post(session, {"op": "restart", "path": "root/ghost"})
            assert status == 409 and "no child 'ghost'" in reply["error"]
            for op in ("stop", "reload", "status"):  # never the tree's own stop or reload
                status, reply = await post(session, {"op": op})
                assert status == 409 and "unknown action" in reply["error"]
            assert sup.running

    run(test)


def test_an_action_must_be_a_same_origin_json_post() -> None:
    async def test() -> None:
        async with observed(tree(asyncio.Event())) as (_, _, session):
            pid = (await child(session, "root/proc"))["pid"]
            body = json.dumps({"op": "restart", "path": "proc"})
            # What a form on another site can send without asking: refused.
            for content_type in ("text/plain", "application/x-www-form-urlencoded"):
                async with session.post("/api/action", data=body,
                                        headers={"Content-Type": content_type}) as response:
                    assert response.status == 415
            status, _ = await post(session, {"op": "restart", "path": "proc"},
                                   headers={"Origin": "http://evil.example"})
            assert status == 403
            async with session.get("/api/action") as response:
                assert response.status == 405
            assert (await child(session, "root/proc"))["pid"] == pid

    run(test)


# ---------------------------------------------------------------- who may ask


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
    ("localhost", True), ("0.0.0.0", False), ("::", False), ("192.168.1.5", False),
    ("example.com", False), ("", False),
])
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_on_loopback_a_request_naming_another_host_is_refused() -> None:
    async def test() -> None:
        async with observed(tree(asyncio.Event())) as (_, observer, session):
            assert observer.token is None
            async with session.get("/api/tree", headers={"Host": "evil.example:80"}) as response:
                assert response.status == 403  # (a DNS name rebound to 127.0.0.1)
            for host in ("localhost", "127.0.0.1:1234"):
                async with session.get("/api/tree", headers={"Host": host}) as response:
                    assert response.status == 200, host

    run(test)


def test_a_non_loopback_address_needs_the_explicit_flag() -> None:
    async def test() -> None:
        async with otp.supervise(tree(asyncio.Event())) as sup:
            observer = WebObserver(sup, tree(asyncio.Event()))
            with pytest.raises(WebAddressError, match="not a loopback address"):
                await observer.start("0.0.0.0", 0)
            await observer.close()

    run(test)


def test_off_loopback_every_request_needs_the_token() -> None:
    async def test() -> None:
        async with observed(tree(asyncio.Event()), "0.0.0.0", allow_remote=True) as (
                sup, observer, session):
            token = observer.token
            assert token is not None and len(token) >= 24
            for method, url in (("GET", "/"), ("GET", "/static/app.js"),
                                ("GET", "/api/tree"), ("GET", "/api/stream"),
                                ("GET", "/api/events"), ("GET", "/api/child?path=proc"),
                                ("POST", "/api/action")):
                for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}):
                    async with session.request(method, url, headers=headers, json={
                            "op": "restart", "path": "proc"}) as response:
                        assert response.status == 401, (method, url, headers)
                async with session.request(method, url + ("&" if "?" in url else "?")
                                           + "token=nope") as response:
                    assert response.status == 401
            bearer = {"Authorization": f"Bearer {token}"}
            reply = await get_json(session, "/api/tree", headers=bearer)
            assert "root/proc" in nodes(reply["root"])
            # The printed address: its token becomes a cookie, and is dropped from the URL.
            async with session.get(f"/?token={token}", allow_redirects=False) as response:
                assert response.status == 303 and response.headers["Location"] == "./"
                assert "HttpOnly" in response.headers["Set-Cookie"]
                assert "SameSite=Strict" in response.headers["Set-Cookie"]
            async with session.get("/static/style.css") as response:
                assert response.status == 200  # (with the cookie)
            session.cookie_jar.clear()
            async with session.get("/static/style.css") as response:
                assert response.status == 401
            assert sup.running

    run(test)


def test_a_long_list_of_children_is_cut_and_counted() -> None:
    async def test() -> None:
        spec = otp.SupervisorSpec(id="many", children=[
            otp.ChildSpec.asyncio(f"c{i}", trees.idle) for i in range(5)])
        recorder = Recorder()
        async with otp.supervise(spec, on_report=recorder) as sup:
            observer = WebObserver(sup, spec, recorder=recorder, max_children=3)
            try:
                root = (await observer.tree())["root"]
            finally:
                await observer.close()
        assert [c["id"] for c in root["children"]] == ["c0", "c1", "c2"]
        assert root["more"] == {"count": 2, "states": {"running": 2}}

    run(test)


def test_an_observer_is_made_on_the_trees_loop() -> None:
    async def test() -> otp.AsyncSupervisor:
        spec = otp.SupervisorSpec(id="lone", children=[otp.ChildSpec.asyncio("a", trees.idle)])
        async with otp.supervise(spec) as sup:
            return sup

    sup = asyncio.run(test())
    with pytest.raises(RuntimeError, match="on the tree's event loop"):
        WebObserver(sup, otp.SupervisorSpec(id="lone", children=[]))
    with pytest.raises(TypeError, match="AsyncSupervisor of the tree's root"):
        WebObserver("root", otp.SupervisorSpec(id="lone", children=[]))  # type: ignore[arg-type]


def _always_ready() -> bool:
    return True


def test_a_childs_details_word_its_probes_as_status_does() -> None:
    async def test() -> None:
        spec = otp.SupervisorSpec(id="probed", children=[otp.ChildSpec.asyncio(
            "db", trees.idle, readiness=otp.probes.Call(_always_ready, interval=0.05))])
        async with observed(spec) as (_, _, session):
            db = (await get_json(session, "/api/child?path=db"))["child"]
            readiness = db["probes"]["readiness"]
            assert readiness["summary"].startswith("ready after 1 attempt")

    run(test)
