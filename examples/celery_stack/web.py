"""The stack's web app: a minimal ASGI application, run by uvicorn.

``uvicorn examples.celery_stack.web:app --port PORT``. No framework: three routes.

``GET /healthz``
    200 ``ok`` once the app has started: the readiness the supervisor waits for. It
    does not ask the broker, so the app stays ready (and answers 503 on enqueue)
    while Redis is away, instead of being restarted for something it cannot fix.
``POST /tasks?n=N[&work=SECONDS]``
    enqueue task number N (``stack.record``); 202 when the broker took it, 503 with the
    error when it did not (the caller tries again: the task is idempotent).
``GET /results``
    what ``results.log`` says: tasks done, executions, duplicates, as JSON.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from examples.celery_stack import app as stack

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _enqueue(n: int, work: float) -> None:
    # One quick attempt: while the broker is away the caller hears 503 at once and
    # retries, rather than a request hanging in kombu's reconnect loop.
    stack.record.apply_async(
        (n, work),
        retry=True,
        retry_policy={"max_retries": 1, "interval_start": 0.1, "interval_step": 0.1},
    )


def summary() -> dict[str, int]:
    """Count the tasks in results.log: distinct numbers done, runs, numbers run twice."""
    done: Counter[int] = Counter()
    try:
        with open(stack.RESULTS) as file:
            for line in file:
                fields = line.split()
                if len(fields) >= 2 and fields[0] == "D":
                    done[int(fields[1])] += 1
    except FileNotFoundError:
        pass
    return {
        "done": len(done),
        "executions": sum(done.values()),
        "duplicated": sum(1 for count in done.values() if count > 1),
    }


async def _answer(send: Send, status: int, body: str, kind: str = "text/plain") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", kind.encode())]})
    await send({"type": "http.response.body", "body": body.encode()})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI entry point."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path, method = scope["path"], scope["method"]
    query = parse_qs(scope.get("query_string", b"").decode())
    if path == "/healthz":
        await _answer(send, 200, "ok\n")
    elif path == "/tasks" and method == "POST":
        try:
            n = int(query["n"][0])
            work = float(query.get("work", ["0.2"])[0])
        except (KeyError, ValueError):
            await _answer(send, 400, "expected ?n=INTEGER[&work=SECONDS]\n")
            return
        try:
            await asyncio.to_thread(_enqueue, n, work)
        except Exception as exc:  # the broker is away: say so, the caller retries
            await _answer(send, 503, f"broker unavailable: {type(exc).__name__}: {exc}\n")
            return
        await _answer(send, 202, json.dumps({"n": n}) + "\n", "application/json")
    elif path == "/results":
        await _answer(send, 200, json.dumps(summary()) + "\n", "application/json")
    else:
        await _answer(send, 404, "not found\n")
