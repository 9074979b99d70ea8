"""A nested supervisor in an OS process of its own (``SupervisorSpec(backend="process")``).

The parent runs it as a process child whose target is :func:`subtree_main`: the
subtree gets its own event loop and runtime in the new process, signals readiness
once its root has started every child, stops in order on SIGTERM, and ends with its
root's exit reason, which the parent sees as the child's.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import attrs

from otp_py._core.reasons import ExitReason, Normal
from otp_py.backends.context import notify_ready
from otp_py.backends.reasons import ExitWith
from otp_py.runtime.guardian import Guardian
from otp_py.runtime.tree import Tree
from otp_py.spec import ChildSpec

__all__ = ["as_process_child", "subtree_main"]


def subtree_main(spec: Any) -> None:
    """The target of a subtree process: run ``spec`` until it ends."""

    async def main() -> ExitReason:
        loop = asyncio.get_running_loop()
        tree = Tree(spec, loop, guardian=Guardian.shared())
        loop.add_signal_handler(signal.SIGTERM, tree.request_stop)
        tree.start()
        await asyncio.shield(tree.initialized)
        if tree.root.initialized:
            notify_ready()
        return await asyncio.shield(tree.done)

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    reason = asyncio.run(main())
    if not isinstance(reason, Normal):
        raise ExitWith(reason)


def as_process_child(spec: Any) -> ChildSpec:
    """The process child that runs the supervisor ``spec`` (backend "process")."""
    inline = attrs.evolve(spec, backend="inline")
    return ChildSpec(
        id=spec.id,
        start=subtree_main,
        args=(inline,),
        restart=spec.restart,
        shutdown=spec.shutdown,
        significant=spec.significant,
        backend="process",
        ready=True,
        start_timeout=float("inf"),
    )
