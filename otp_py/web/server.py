"""The web observer's server: an aiohttp application on the tree's own event loop.

What it serves
--------------
``/``                  the page (``static/index.html``); ``/static/...`` its script and style
``/api/tree``          the running tree as :func:`~otp_py.cli.snapshot.snapshot` draws it,
                       each supervisor with ``budget`` (the share of its restart budget
                       used, 0..1, or None) and lists cut at ``max_children``
``/api/events``        the last events (``?subtree=root/pool&limit=50``)
``/api/child``         one child in full (``?path=pool/conn``): its crash history with
                       tracebacks, and the tail of its captured stdout and stderr
``/api/stream``        server-sent events: ``hello`` (tree and events), then one
                       ``report`` per report of the tree and a ``tree`` soon after
``/api/action``        POST ``{"op": "restart" | "terminate" | "start" | "signal",
                       "path": ..., "signal": "HUP", "group": false}``

The actions and the child's details are answered by a
:class:`~otp_py.cli.control.ControlServer` attached to the tree: the page's buttons
make the very calls ``otp-py restart``/``stop``/``start``/``signal`` make, with the
same refusals.

Push, not poll
--------------
Reports arrive on the loop as the tree decides; each is pushed at once to every open
stream, and a snapshot follows :data:`SETTLE` seconds later (one for a burst of
reports). An idle tree does not wake the server, with one exception that ends by
itself: while some supervisor's restart budget is in use, a snapshot is pushed every
:data:`BUDGET_REFRESH` seconds so the gauge is seen to fall back as its window passes.

Who may ask
-----------
Bound to a loopback address the page is the local user's: requests must name that
address (or ``localhost``) in their ``Host`` header, so that a web page elsewhere
cannot reach it through a rebound DNS name, and an action must be a same-origin JSON
POST. Any other address needs ``allow_remote=True`` and a token, since the page can
stop children: every request (the page, its files, the stream, the API) must carry it,
as ``?token=`` (which sets a cookie for the rest of the visit), an
``Authorization: Bearer`` header, or that cookie; one without it gets 401.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any, Final, cast

import otp_py as otp
from otp_py.cli.control import ControlError, ControlServer, parse_signal
from otp_py.cli.logs import last_lines
from otp_py.cli.render import json_ready, probe_state
from otp_py.cli.snapshot import Node, Recorder, snapshot

try:
    from aiohttp import web
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise ImportError("the web observer needs aiohttp: pip install 'otp_py[web]'") from exc

__all__ = [
    "BUDGET_REFRESH",
    "SETTLE",
    "Recorder",
    "WebAddressError",
    "WebObserver",
    "is_loopback",
    "serve_web",
]

SETTLE: Final = 0.05
"""Seconds between a report and the snapshot pushed after it (a burst shares one)."""

BUDGET_REFRESH: Final = 1.0
"""Seconds between two snapshots while some restart budget is in use."""

EVENTS: Final = 500
"""Events the observer keeps for the timeline."""

LOG_LINES: Final = 60
"""Lines of each captured stream shown for a child."""

HISTORY: Final = 20
"""Exits of a child's crash history shown."""

MAX_CHILDREN: Final = 200
"""Children listed per supervisor; the rest are counted (a pool of 10,000)."""

QUEUE: Final = 2000
"""Messages a stream may fall behind by before it is closed (the page reconnects and
starts again from a fresh picture)."""

ACTIONS: Final = frozenset({"restart", "terminate", "start", "signal"})
"""The control requests the page may make: a child's, never the tree's stop or reload."""

_STATIC: Final = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "style.css": "text/css",
}
_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
_LOCAL_NAMES: Final = frozenset({"localhost", "localhost.", "ip6-localhost"})


class WebAddressError(ValueError):
    """An address the observer refuses to bind: not loopback, and not allowed."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``127.0.0.0/8``, ``::1``) or
    ``localhost``. Any other name counts as not loopback: it may resolve anywhere."""
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _static(name: str) -> bytes:
    return resources.files("otp_py.web").joinpath("static", name).read_bytes()


class WebObserver:
    """The web observer of one running tree.

    Make it on the tree's loop with the root's handle; :meth:`start` serves it, or
    mount :meth:`app` in an aiohttp application of your own. ``recorder`` is a
    :class:`Recorder` registered as the tree's ``on_report`` (``otp-py run`` has one):
    through it the observer knows what happened before it was made (when each child
    started, the first events). Without one the observer listens to the tree from now
    on: the uptimes of the children started before are unknown until they restart.
    ``control``, likewise, is the tree's control server if it has one. ``token`` is
    required on every request when set (:meth:`start` sets one for a non-loopback
    address)."""

    def __init__(
        self,
        sup: otp.AsyncSupervisor,
        spec: otp.SupervisorSpec,
        *,
        recorder: Recorder | None = None,
        control: ControlServer | None = None,
        token: str | None = None,
        events: int = EVENTS,
        max_children: int = MAX_CHILDREN,
    ) -> None:
        if not isinstance(sup, otp.AsyncSupervisor):
            raise TypeError(f"WebObserver() takes the AsyncSupervisor of the tree's root; "
                            f"got {sup!r}")
        if not isinstance(spec, otp.SupervisorSpec):
            raise TypeError(f"WebObserver() takes the tree's SupervisorSpec; got {spec!r}")
        if token is not None and (not isinstance(token, str) or len(token) < 16):
            raise ValueError("WebObserver(): a token must be a string of 16 characters "
                             "or more")
        self._sup = sup
        self._spec = spec
        self.token = token
        self._max_children = max_children
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError("make a WebObserver on the tree's event loop (in the "
                               "coroutine that runs otp.supervise)") from None
        self._remove_listener: Callable[[], None] | None = None
        if recorder is None:
            recorder = Recorder()
            self._remove_listener = sup.add_listener(recorder)
        self._recorder = recorder
        recorder.subscribe(self._on_report)
        if control is None:
            control = ControlServer(None)
            control.attach(sup, spec, recorder, lambda: None)
        self._control = control
        self._events: deque[Node] = deque(maxlen=events)
        self._seq = 0
        for at, report in recorder.events:  # what it saw before we came
            self._events.append(self._event(at, report))
        self._clients: set[asyncio.Queue[tuple[str, Any] | None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._snapshotting: asyncio.Task[None] | None = None
        self._dirty = False
        self._closed = False
        self._runner: web.AppRunner | None = None
        self._check_host = False
        self._port = 0
        self._files = {name: _static(name) for name in _STATIC}

    # ------------------------------------------------------------ the tree's side

    def replace_spec(self, spec: otp.SupervisorSpec) -> None:
        """The tree now runs ``spec`` (after a reload)."""
        self._spec = spec
        self._control.replace_spec(spec)
        self._soon()

    def _on_report(self, at: float, report: otp.reports.Report) -> None:
        """A report of the tree (on its loop): push it, and a snapshot soon after."""
        if self._closed:
            return
        event = self._event(at, report)
        self._events.append(event)
        self._broadcast("report", event)
        self._soon()

    def _event(self, at: float, report: otp.reports.Report) -> Node:
        self._seq += 1
        rp = otp.reports
        child = getattr(report, "child_id", "") or ""
        reason = getattr(report, "reason", None)
        event: Node = {
            "seq": self._seq,
            "at": at,
            "type": type(report).__name__,
            "text": report.describe(),
            "supervisor": report.where,
            "path": f"{report.where}/{child}" if child else report.where,
            "abnormal": bool(reason is not None and getattr(reason, "is_abnormal", False)),
        }
        if isinstance(report, rp.ChildExited):
            event["outcome"] = report.outcome
        elif isinstance(report, rp.ChildStarted):
            event["restarts"] = report.restarts
        return event

    def _broadcast(self, kind: str, data: Any) -> None:
        for queue in list(self._clients):
            try:
                queue.put_nowait((kind, data))
            except asyncio.QueueFull:
                # Too far behind: close its stream; the page reconnects and starts
                # from a fresh picture instead of a stale backlog.
                self._clients.discard(queue)
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait(None)

    def _soon(self, delay: float = SETTLE) -> None:
        """Push a snapshot ``delay`` seconds from now (one for many calls)."""
        if self._closed or not self._clients:
            return
        if self._snapshotting is not None:
            self._dirty = True  # one more once this one is done
            return
        if self._timer is not None:
            if self._timer.when() <= self._loop.time() + delay:
                return
            self._timer.cancel()
        self._timer = self._loop.call_later(delay, self._push_snapshot)

    def _push_snapshot(self) -> None:
        self._timer = None
        self._snapshotting = self._loop.create_task(self._snapshot_and_push())

    async def _snapshot_and_push(self) -> None:
        try:
            tree = await self.tree()
        except Exception:  # a tree that ended meanwhile: nothing to draw
            tree = None
        finally:
            self._snapshotting = None
        if tree is not None and not self._closed:
            self._broadcast("tree", tree)
        if self._dirty:
            self._dirty = False
            self._soon()
        elif tree is not None and _budget_in_use(tree.get("root")):
            self._soon(BUDGET_REFRESH)

    async def tree(self) -> Node:
        """The running tree now, as the page draws it (plain data, ready for JSON)."""
        root = await snapshot(self._sup, self._spec, self._recorder)
        budgets: dict[str, float | None] = {}
        if self._sup.running:
            with contextlib.suppress(Exception):
                budgets = self._sup.restart_budgets()
        _decorate(root, budgets, self._max_children)
        tree_info: Node = {"id": self._spec.id, "running": False}
        if self._sup.running:
            with contextlib.suppress(ControlError):
                tree_info = (await self._control.dispatch({"op": "ping"}))["tree"]
        return cast(Node, json_ready({"now": time.time(), "tree": tree_info, "root": root}))

    def events(self, subtree: str | None = None, limit: int = 100) -> list[Node]:
        """The last ``limit`` events (oldest first) about ``subtree`` (a supervisor's
        or a child's path, root id first) and what is under it; all without one."""
        chosen = [e for e in self._events if subtree is None or _under(e["path"], subtree)]
        return chosen[-limit:] if limit > 0 else []

    async def child(self, path: str, *, history: int = HISTORY,
                    lines: int = LOG_LINES) -> Node:
        """One child in full (``otp-py status PATH``'s answer) with the tail of its
        captured output. Raises :class:`~otp_py.cli.control.ControlError`."""
        reply = await self._control.dispatch({"op": "child", "path": path,
                                              "history": history})
        child: Node = reply["child"]
        for probe in (child.get("probes") or {}).values():
            probe["summary"] = probe_state(probe)  # (worded as ``otp-py status`` does)
        logs: Node = {}
        for stream in ("stdout", "stderr"):
            try:
                found = await self._control.dispatch({"op": "log", "path": path,
                                                      "stream": stream})
            except ControlError as exc:
                logs[stream] = {"note": str(exc), "lines": []}
                continue
            file = str(found["file"])
            tail = await asyncio.to_thread(last_lines, file, lines)  # (file I/O)
            logs[stream] = {"file": file, "lines": [
                raw.decode("utf-8", "replace").rstrip("\r\n") for raw in tail]}
        child["logs"] = logs
        return cast(Node, json_ready(child))

    async def act(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run one of :data:`ACTIONS` through the control server; its reply. Raises
        :class:`~otp_py.cli.control.ControlError` for a refused request."""
        op = request.get("op")
        if op not in ACTIONS:
            raise ControlError(f"unknown action {op!r}; expected one of "
                               f"{', '.join(sorted(ACTIONS))}")
        if op == "signal":
            parse_signal(request.get("signal"))  # refused before anything is looked up
        payload: dict[str, Any] = {k: request[k] for k in ("op", "path", "signal", "group")
                                   if k in request}
        try:
            return await self._control.dispatch(payload)
        except otp.OtpError as exc:  # the supervisor refused: not found, running...
            raise ControlError(str(exc).splitlines()[0]) from None

    # ------------------------------------------------------------ the HTTP side

    def app(self) -> web.Application:
        """The aiohttp application serving the page and its API (mount it with
        ``add_subapp`` under a prefix of your own if you like). The checks of
        :attr:`token` and of the ``Host`` header (for a loopback observer) are
        middlewares of this application."""
        app = web.Application(middlewares=[self._guard], client_max_size=64 * 1024)
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._file)
        app.router.add_get("/api/tree", self._api_tree)
        app.router.add_get("/api/events", self._api_events)
        app.router.add_get("/api/child", self._api_child)
        app.router.add_get("/api/stream", self._api_stream)
        app.router.add_post("/api/action", self._api_action)
        app.on_shutdown.append(self._end_streams)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0, *,
                    allow_remote: bool = False) -> tuple[str, int]:
        """Serve on ``host:port`` (port 0: any free one); return the address bound.

        A non-loopback ``host`` is refused with :class:`WebAddressError` unless
        ``allow_remote``; then a token is made if none was given (read it from
        :attr:`token`, and give it to whoever may use the page)."""
        if self._runner is not None:
            raise RuntimeError("this WebObserver is serving already")
        self._check_host = is_loopback(host)
        if not is_loopback(host):
            if not allow_remote:
                raise WebAddressError(
                    f"refusing to serve the web observer on {host!r}, which is not a "
                    "loopback address: anyone who reaches it could stop the tree's "
                    "children. Allow it explicitly (--web-allow-remote, or "
                    "allow_remote=True); a token will then be required")
            if self.token is None:
                self.token = secrets.token_urlsafe(24)
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False,
                               shutdown_timeout=1.0, handler_cancellation=True)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        address = runner.addresses[0]
        bound = (str(address[0]), int(address[1]))
        self._port = bound[1]
        return bound

    def url(self, host: str, port: int) -> str:
        """The page's address, with the token if one is needed."""
        shown = f"[{host}]" if ":" in host else host
        query = f"?token={self.token}" if self.token else ""
        return f"http://{shown}:{port}/{query}"

    async def close(self) -> None:
        """Stop serving, end the open streams, and stop listening to the tree."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None
        await self._end_streams(None)
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
        if self._snapshotting is not None:
            self._snapshotting.cancel()

    async def __aenter__(self) -> WebObserver:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _end_streams(self, _app: Any) -> None:
        for queue in list(self._clients):
            self._clients.discard(queue)
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

    # -- checks of every request

    @web.middleware
    async def _guard(self, request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
        refusal = self._refusal(request)
        if refusal is not None:
            status, text = refusal
            if "/api/" in request.path:  # (what the page shows to its user)
                return web.json_response({"ok": False, "error": text}, status=status,
                                         headers=_HEADERS)
            return web.Response(status=status, text=text + "\n", headers=_HEADERS)
        response = await handler(request)
        if not response.prepared:
            response.headers.update(_HEADERS)
        token = request.query.get("token")
        if token and self.token and not response.prepared:
            response.set_cookie(self._cookie, token, httponly=True, samesite="Strict",
                                path="/")
        return response

    @property
    def _cookie(self) -> str:
        return f"otp_py_web_{self._port}"

    def _refusal(self, request: web.Request) -> tuple[int, str] | None:
        """Why ``request`` is refused (status, text), or None."""
        if self.token is not None and not self._has_token(request):
            return 401, ("401: this observer needs its token: open the address it printed "
                         "at start (…/?token=...)")
        if self._check_host and self.token is None and \
                not is_loopback(_host_name(request.host or "")):
            return 403, (f"403: this observer serves loopback only; Host {request.host!r} "
                         "is not a loopback address")
        if request.method == "POST":
            if request.content_type != "application/json":
                return 415, "415: an action is a JSON POST (Content-Type: application/json)"
            origin = request.headers.get("Origin")
            if origin is not None and origin != f"{request.scheme}://{request.host}":
                return 403, f"403: an action from another origin ({origin}) is refused"
        return None

    def _has_token(self, request: web.Request) -> bool:
        assert self.token is not None
        given: list[str] = []
        if "token" in request.query:
            given.append(request.query["token"])
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            given.append(auth[len("Bearer "):].strip())
        cookie = request.cookies.get(self._cookie)
        if cookie:
            given.append(cookie)
        expected = self.token.encode()
        return any(hmac.compare_digest(g.encode(), expected) for g in given)

    # -- the routes

    async def _index(self, request: web.Request) -> web.StreamResponse:
        if "token" in request.query:
            # The guard sets the cookie; drop the token from the address bar and the
            # browser's history.
            return web.Response(status=303, headers={"Location": "./"})
        return web.Response(body=self._files["index.html"], content_type="text/html",
                            charset="utf-8")

    async def _file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in _STATIC or name == "index.html":
            raise web.HTTPNotFound(headers=_HEADERS)
        return web.Response(body=self._files[name], content_type=_STATIC[name],
                            charset="utf-8")

    async def _api_tree(self, request: web.Request) -> web.StreamResponse:
        return _json(await self.tree())

    async def _api_events(self, request: web.Request) -> web.StreamResponse:
        subtree = request.query.get("subtree") or None
        limit = _int_query(request, "limit", 100, 0, EVENTS)
        return _json({"events": self.events(subtree, limit)})

    async def _api_child(self, request: web.Request) -> web.StreamResponse:
        path = request.query.get("path", "")
        history = _int_query(request, "history", HISTORY, 0, 200)
        lines = _int_query(request, "lines", LOG_LINES, 0, 1000)
        try:
            return _json({"ok": True, "child": await self.child(
                path, history=history, lines=lines)})
        except ControlError as exc:
            return _json({"ok": False, "error": str(exc)}, status=404)

    async def _api_action(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return _json({"ok": False, "error": "the body is not JSON"}, status=400)
        if not isinstance(body, dict):
            return _json({"ok": False, "error": "the body is one JSON object"}, status=400)
        try:
            reply = await self.act(body)
        except ControlError as exc:
            return _json({"ok": False, "error": str(exc)}, status=409)
        self._soon()
        return _json(reply)

    async def _api_stream(self, request: web.Request) -> web.StreamResponse:
        queue: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue(maxsize=QUEUE)
        self._clients.add(queue)  # (first: no report may fall between hello and it)
        try:
            hello = {**await self.tree(), "events": self.events(None, EVENTS)}
            response = web.StreamResponse(headers={
                **_HEADERS, "Content-Type": "text/event-stream", "X-Accel-Buffering": "no"})
            await response.prepare(request)
            await response.write(_sse("hello", hello))
            async for kind, data in _drain(queue):
                await response.write(_sse(kind, data))
            return response
        except (ConnectionError, asyncio.CancelledError):
            raise
        finally:
            self._clients.discard(queue)


async def _drain(queue: asyncio.Queue[tuple[str, Any] | None]
                 ) -> AsyncIterator[tuple[str, Any]]:
    while (item := await queue.get()) is not None:
        yield item


def _sse(kind: str, data: Any) -> bytes:
    text = json.dumps(json_ready(data), separators=(",", ":"))
    return f"event: {kind}\ndata: {text}\n\n".encode()


def _json(data: Any, *, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(json_ready(data)), status=status,
                        content_type="application/json")


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name!r} must be a whole number; got {text!r}\n",
                                 headers=_HEADERS) from None
    return max(low, min(high, value))


def _host_name(host: str) -> str:
    """The name in a ``Host`` header, without its port (``[::1]:80`` -> ``::1``)."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _under(path: str, subtree: str) -> bool:
    return path == subtree or path.startswith(subtree.rstrip("/") + "/")


def _decorate(node: Node, budgets: dict[str, float | None], max_children: int) -> None:
    """Add each supervisor's ``budget`` and cut long lists of children (counting the
    states of those left out), in place."""
    if node.get("kind") == "supervisor":
        node["budget"] = budgets.get(str(node.get("path")))
    children = node.get("children")
    if not children:
        return
    if len(children) > max_children:
        hidden = children[max_children:]
        node["children"] = children[:max_children]
        states: dict[str, int] = {}
        for child in hidden:
            states[child.get("state", "?")] = states.get(child.get("state", "?"), 0) + 1
        node["more"] = {"count": len(hidden), "states": states}
    for child in node["children"]:
        _decorate(child, budgets, max_children)


def _budget_in_use(node: Any) -> bool:
    if not isinstance(node, dict):
        return False
    budget = node.get("budget")
    if isinstance(budget, int | float) and budget > 0:
        return True
    return any(_budget_in_use(c) for c in node.get("children") or ())


async def serve_web(
    sup: otp.AsyncSupervisor,
    spec: otp.SupervisorSpec,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    allow_remote: bool = False,
    token: str | None = None,
    recorder: Recorder | None = None,
    control: ControlServer | None = None,
) -> tuple[WebObserver, str]:
    """Serve the web observer of the tree ``sup`` (declared as ``spec``) on its loop;
    return the observer (close it with ``await observer.close()``, or use it as an
    ``async with``) and the page's address (with its token, if one is needed).

    Raises :class:`WebAddressError` for a non-loopback ``host`` without
    ``allow_remote``, and :class:`OSError` when the address cannot be bound."""
    observer = WebObserver(sup, spec, recorder=recorder, control=control, token=token)
    try:
        bound = await observer.start(host, port, allow_remote=allow_remote)
    except BaseException:
        await observer.close()
        raise
    return observer, observer.url(*bound)
