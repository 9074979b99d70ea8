"""Run a tree in the foreground with a live view and a control socket.

One asyncio loop runs everything: the tree (``otp.supervise``), the view's refresh,
and the control server. The command ends when

* SIGINT (Ctrl-C), SIGTERM or SIGHUP arrives, ``--duration`` runs out, or ``otp-py
  ctl stop`` asks: the tree is stopped in order (children right to left) and the exit
  status is 0; a second Ctrl-C while it stops ends the command at once (process
  children die with it: they have a parent-death signal, commands are killed by the
  guardian). SIGHUP will mean "reload the tree file" once reload exists (see
  ``on_hangup``); until then it stops in order rather than kill the command with its
  default action, which would skip the stop and leave the socket behind;
* the tree ends by itself: exit status 0 if it shut down normally (``auto_shutdown``),
  1 with one line on stderr if it gave up (``IntensityExceededError``) or failed.

SIGQUIT does not end it: it prints the state of the tree and the stacks of the
process to stderr (:mod:`otp_py.cli.dump`), as a JVM does, and the tree runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from typing import Any, Final

import attrs

import otp_py as otp
from otp_py.cli.control import ControlServer
from otp_py.cli.dump import state_dump, write_detached
from otp_py.cli.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError
from otp_py.cli.render import duration
from otp_py.cli.snapshot import Recorder, count_specs, snapshot
from otp_py.cli.view import View

__all__ = ["RunOptions", "run_tree"]

MIN_REFRESH: Final = 0.1
"""Seconds between two snapshots at the least, however many events arrive."""

STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)
HANDLED_SIGNALS: Final = (*STOP_SIGNALS, signal.SIGHUP, signal.SIGQUIT)


@attrs.frozen
class RunOptions:
    """How ``run`` and ``demo`` run a tree."""

    duration: float | None = None
    """Stop the tree after this many seconds (None: until asked)."""
    interval: float = 2.0
    """Seconds between two refreshes of the tree table."""
    control: ControlServer | None = None
    """The control server, bound but not yet serving (None: no control socket)."""
    metrics: tuple[str, int] | None = None
    """Where to serve Prometheus metrics (None: nowhere)."""


def run_tree(spec: otp.SupervisorSpec, view: View, options: RunOptions) -> int:
    """Run ``spec`` until it is asked to stop or ends; return the exit status.

    Raises :class:`CliError` when the tree gave up or failed to start."""
    try:
        return asyncio.run(_run(spec, view, options))
    finally:
        view.close()


async def _run(spec: otp.SupervisorSpec, view: View, options: RunOptions) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    wake = asyncio.Event()
    recorder = Recorder()
    recorder.subscribe(view.event)
    if view.wants_events_refresh:
        recorder.subscribe(lambda _at, _report: wake.set())

    def request_stop(why: str) -> None:
        if not stop.is_set():
            stop.set()  # first: a note that cannot be written must not cancel the stop
            view.note(f"{why}: stopping tree {spec.id!r} in order "
                      "(Ctrl-C again to kill it at once)")

    control = options.control

    def on_signal(signum: signal.Signals) -> None:
        if stop.is_set():
            if signum == signal.SIGINT:
                view.note("second Ctrl-C: killing the tree now")
                view.close()
                if control is not None:
                    control.close_now()
                # A handle has no public "kill what is left now" (run() keeps its own);
                # ending the process is that: children do not outlive it (their
                # parent-death signal and the guardian see to it).
                os._exit(130)
            return
        request_stop(signum.name)

    def on_hangup() -> None:
        # ---- reload hooks in here ----------------------------------------------
        # SIGHUP asks a daemon to read its configuration again (sshd, nginx,
        # supervisord). Once a reload of the tree exists (the core's reload plan,
        # and `otp-py ctl reload`), this is where SIGHUP calls it: re-read the tree
        # file, apply the plan, and keep running. Until then a running tree cannot
        # take a new declaration, so SIGHUP stops it in order, as SIGTERM does.
        request_stop("SIGHUP (reload is not available yet)")

    dumps: set[asyncio.Task[None]] = set()
    running: list[otp.AsyncSupervisor] = []

    def on_quit() -> None:
        task = loop.create_task(_dump(running[0] if running else None, spec, recorder))
        dumps.add(task)  # (a task nobody references may be collected mid-way)
        task.add_done_callback(dumps.discard)

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    loop.add_signal_handler(signal.SIGQUIT, on_quit)
    supervisors, workers = count_specs(spec)
    view.note(f"starting tree {spec.id!r} ({supervisors} supervisor"
              f"{'s' if supervisors != 1 else ''}, {workers} worker{'s' if workers != 1 else ''})")
    started = time.monotonic()
    server = None
    try:
        metrics, listener = _metrics(options, recorder)
        async with otp.supervise(spec, on_report=listener, subreaper=True) as sup:
            running.append(sup)
            if metrics is not None and options.metrics is not None:
                server = _serve_metrics(metrics, sup, options.metrics)
                host, port = server.address
                view.note(f"metrics at http://{host}:{port}/metrics")
            if control is not None:
                await control.serve(sup, spec, recorder, lambda: request_stop("ctl stop"))
                view.note(f"control socket {control.path} (otp-py status, otp-py ctl)")
            watcher = asyncio.create_task(_watch(sup, spec, recorder, view, wake, options))
            try:
                reason = await _until_done(sup, spec.id, stop, options, view)
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
    except otp.SupervisorExitError as exc:  # gave up, or failed to start
        raise CliError(str(exc).splitlines()[0], code=EXIT_FAILED) from None
    finally:
        if server is not None:
            server.close()
        if control is not None:
            await control.close()
        for signum in HANDLED_SIGNALS:
            loop.remove_signal_handler(signum)
        for task in list(dumps):
            task.cancel()
    view.note(f"tree {spec.id!r} ended: {reason} (after {duration(time.monotonic() - started)})")
    return EXIT_OK


def _metrics(options: RunOptions, recorder: Recorder
             ) -> tuple[Any, Callable[[otp.reports.Report], None]]:
    """The metrics collector (when asked for) and the listener that feeds it and the
    recorder alike."""
    if options.metrics is None:
        return None, recorder
    from otp_py.observe import TreeMetrics

    try:
        metrics = TreeMetrics()
    except ImportError as exc:
        raise CliError(str(exc), code=EXIT_USAGE) from None

    def both(report: otp.reports.Report) -> None:
        recorder(report)
        metrics(report)

    return metrics, both


def _serve_metrics(metrics: Any, sup: otp.AsyncSupervisor, where: tuple[str, int]) -> Any:
    from otp_py.observe import serve_metrics

    metrics.watch(sup)
    try:
        return serve_metrics(metrics, *where)
    except OSError as exc:
        raise CliError(f"cannot serve metrics on {where[0]}:{where[1]}: {exc.strerror or exc}",
                       code=EXIT_USAGE) from None


async def _until_done(sup: otp.AsyncSupervisor, tree_id: str, stop: asyncio.Event,
                      options: RunOptions, view: View) -> otp.reasons.ExitReason:
    ended = asyncio.ensure_future(sup.wait())
    asked = asyncio.ensure_future(stop.wait())
    waits: set[asyncio.Future[Any]] = {ended, asked}
    timer = None
    if options.duration is not None:
        timer = asyncio.ensure_future(asyncio.sleep(options.duration))
        waits.add(timer)
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for future in (asked, timer):
            if future is not None:
                future.cancel()
    if ended in done:
        return ended.result()  # raises IntensityExceededError if the root gave up
    ended.cancel()
    if timer is not None and timer in done:
        view.note(f"--duration {options.duration:g} s is over: stopping tree {tree_id!r} "
                  "in order")
    return await sup.stop()


async def _watch(sup: otp.AsyncSupervisor, spec: otp.SupervisorSpec, recorder: Recorder,
                 view: View, wake: asyncio.Event, options: RunOptions) -> None:
    """Refresh the view's snapshot every ``interval`` seconds, and soon after an event
    when the view wants that."""
    while sup.running:
        root = await snapshot(sup, spec, recorder)
        if not sup.running or root["note"] is not None:
            return  # the tree ended meanwhile: its last picture is of no use
        try:
            view.show(root, time.time())
        except Exception as exc:  # a view that cannot draw must not stop the tree
            view.note(f"the view failed ({type(exc).__name__}: {exc}); events only from now")
            return
        wake.clear()
        await asyncio.sleep(MIN_REFRESH)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), max(options.interval - MIN_REFRESH, 0.0))


async def _dump(sup: otp.AsyncSupervisor | None, spec: otp.SupervisorSpec,
                recorder: Recorder) -> None:
    """Print the SIGQUIT dump to stderr without blocking the loop on it."""
    try:
        text = await state_dump(sup if sup is not None and sup.running else None,
                                spec, recorder)
    except Exception as exc:  # a dump that fails must not touch the tree
        text = f"otp-py: SIGQUIT: the dump failed: {type(exc).__name__}: {exc}\n"
    write_detached(text)
