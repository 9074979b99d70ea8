"""The timers of one supervisor, carried by a single loop timer.

The core asks for a timer with every stop (the child's shutdown timeout) and every
start that waits for readiness, and cancels nearly all of them a moment later,
when the child is down or up. As loop timers, each would cost a ``TimerHandle``,
a push on the loop's heap and a cancellation left for the loop to sweep: stopping
10,000 children one by one made 10,000 of them. Here a supervisor keeps its
deadlines in a dict and a heap of its own, and arms one loop timer, for the
earliest deadline only: a timer set later than the armed one costs a dict entry
and a heap push; a cancelled one, a dict removal.

A cancellation leaves the loop timer armed (re-arming it would cost what this
saves): when it fires with nothing due it does nothing but re-arm for the next
live deadline, if any. So a burst of timers all cancelled costs at most one
wakeup, at the first deadline; an idle supervisor with no timer has no loop timer.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Callable

__all__ = ["NodeTimers"]


class NodeTimers:
    """Deadlines by token; ``fire(token)`` is called, on the loop, for each one that
    comes due and was not cancelled, in deadline order (ties: the order set)."""

    __slots__ = ("_armed_at", "_due", "_fire", "_handle", "_heap", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, fire: Callable[[int], None]) -> None:
        self._loop = loop
        self._fire = fire
        self._due: dict[int, float] = {}  # token -> deadline (loop time)
        self._heap: list[tuple[float, int]] = []  # (deadline, token); stale ones too
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at = math.inf

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, token: object) -> bool:
        return token in self._due

    def set(self, token: int, delay: float) -> None:
        when = self._loop.time() + delay
        self._due[token] = when
        heap = self._heap
        heapq.heappush(heap, (when, token))
        if len(heap) > 64 and len(heap) > 2 * len(self._due):
            self._compact()
        if when < self._armed_at:
            self._arm(when)

    def cancel(self, token: int) -> bool:
        """Cancel ``token``; whether it was pending."""
        return self._due.pop(token, None) is not None

    def clear(self) -> None:
        """Cancel them all, and the loop timer."""
        self._due.clear()
        self._heap.clear()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._armed_at = math.inf

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._armed_at = when
        self._handle = self._loop.call_at(when, self._run)

    def _compact(self) -> None:
        # (deadline, token) pairs are unique per token: a token is set once.
        self._heap = [(when, token) for token, when in self._due.items()]
        heapq.heapify(self._heap)

    def _run(self) -> None:
        self._handle = None
        limit = max(self._armed_at, self._loop.time())
        self._armed_at = math.inf
        heap, due = self._heap, self._due
        fired: list[int] = []
        while heap and heap[0][0] <= limit:
            when, token = heapq.heappop(heap)
            if due.get(token) == when:
                fired.append(token)
        while heap and due.get(heap[0][1]) != heap[0][0]:  # stale: cancelled
            heapq.heappop(heap)
        if heap:
            self._arm(heap[0][0])
        for token in fired:
            # Each is still pending unless what an earlier one set off cancelled it.
            if due.pop(token, None) is not None:
                self._fire(token)
