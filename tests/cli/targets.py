"""Children for the command-line tests, importable by path (``tests.cli.targets:...``)
from the repository's root, where the tests run ``otp-py``."""

from __future__ import annotations

import asyncio
import time

import otp_py as otp


def forever() -> None:
    """A process child that runs until it is stopped."""
    while True:
        time.sleep(1)


def crash_after(seconds: float) -> None:
    """A child (process or thread) that crashes ``seconds`` after it starts."""
    time.sleep(seconds)
    raise RuntimeError(f"crashed after {seconds:g} s")


def always_crash() -> None:
    """A child that crashes at once, every time: its supervisor gives up."""
    raise RuntimeError("crashes every time")


def thread_until_stopped() -> None:
    """A thread child that ends when its supervisor asks it to."""
    otp.wait_for_stop()


async def task_forever() -> None:
    """An asyncio child that runs until it is cancelled."""
    await asyncio.Event().wait()


TREE = otp.SupervisorSpec(
    id="pytree",
    intensity=otp.SlidingWindow(10, 5),
    children=[
        otp.ChildSpec.task("task", task_forever),
        otp.ChildSpec.thread("thread", thread_until_stopped),
    ],
)
"""A tree declared in Python, for ``otp-py run tests.cli.targets:TREE``."""


def make_tree() -> otp.SupervisorSpec:
    """A factory, for ``otp-py run tests.cli.targets:make_tree``."""
    return TREE


NOT_A_TREE = 42

DECIDER = otp.Decider({ValueError: otp.Decision.STOP})
"""A decider named by import path in a tree file."""


def crash_once(marker: str) -> None:
    """A child that crashes the first time it starts (it creates ``marker``) and runs
    until stopped after that: one entry in its crash history, no crash loop."""
    import pathlib

    path = pathlib.Path(marker)
    if not path.exists():
        path.write_text("crashed")
        raise ValueError("first start fails on purpose")
    while True:
        time.sleep(1)

