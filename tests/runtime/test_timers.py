"""A supervisor's timers ride on one loop timer (otp_py/runtime/timers.py): they fire
in deadline order, never once cancelled, and a burst of them arms the loop once."""

from __future__ import annotations

import asyncio

from otp_py.runtime.timers import NodeTimers


def _run(body):  # type: ignore[no-untyped-def]
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(body(loop))
    finally:
        loop.close()


def test_timers_fire_in_deadline_order_and_cancelled_ones_never() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> list[int]:
        fired: list[int] = []
        done = loop.create_future()

        def fire(token: int) -> None:
            fired.append(token)
            if token == 4:
                done.set_result(None)

        timers = NodeTimers(loop, fire)
        timers.set(1, 0.03)
        timers.set(2, 0.01)
        timers.set(3, 0.02)
        timers.set(4, 0.04)
        assert timers.cancel(3)
        assert not timers.cancel(3)
        await asyncio.wait_for(done, 10)
        assert len(timers) == 0
        return fired

    assert _run(body) == [2, 1, 4]


def test_a_burst_of_timers_arms_one_loop_timer() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> int:
        timers = NodeTimers(loop, lambda token: None)
        before = len(loop._scheduled)  # type: ignore[attr-defined]
        for token in range(1, 1001):
            timers.set(token, 5.0)
            timers.cancel(token)
        armed = len(loop._scheduled) - before  # type: ignore[attr-defined]
        timers.clear()
        return armed

    assert _run(body) == 1


def test_a_timer_set_earlier_than_the_armed_one_fires_first() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> list[int]:
        fired: list[int] = []
        done = loop.create_future()

        def fire(token: int) -> None:
            fired.append(token)
            if len(fired) == 2:
                done.set_result(None)

        timers = NodeTimers(loop, fire)
        timers.set(1, 0.05)
        timers.set(2, 0.005)
        await asyncio.wait_for(done, 10)
        return fired

    assert _run(body) == [2, 1]


def test_a_timer_cancelled_by_one_firing_with_it_does_not_fire() -> None:
    async def body(loop: asyncio.AbstractEventLoop) -> list[int]:
        fired: list[int] = []
        timers: NodeTimers

        def fire(token: int) -> None:
            fired.append(token)
            timers.cancel(2)

        timers = NodeTimers(loop, fire)
        timers.set(1, 0.01)
        timers.set(2, 0.01)
        await asyncio.sleep(0.2)
        timers.clear()
        return fired

    assert _run(body) == [1]
