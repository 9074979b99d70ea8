"""Celery 0.4's ``celery.supervisor``, as a thin shim over the public API.

:class:`OFASupervisor` supervises one process (typically one that runs a
:class:`multiprocessing.pool.Pool`) with the one_for_all strategy. It takes no
decision of its own: it translates its parameters into a
:class:`~otp_py.SupervisorSpec` (see :meth:`OFASupervisor.to_spec`) and runs that
with :func:`otp_py.run`. The translation, Celery's name on the left:

* ``target``, ``args``, ``kwargs``: the child's ``start``, ``args`` and ``kwargs``;
* ``Process`` (a class attribute): the child's ``process_class``;
* ``check_interval``, ``ping_timeout``: its ``heartbeat``,
  ``Heartbeat(interval=check_interval, timeout=ping_timeout)``;
* ``join_timeout``: its ``shutdown`` (the grace a stopped process gets);
* ``max_restart_freq``, ``max_restart_freq_time``: the supervisor's ``intensity``,
  ``SlidingWindow(max_restarts=max_restart_freq, period=max_restart_freq_time)``.

The child is permanent, so it is restarted however it ends; a hung child (no answer
to pings) is stopped, killed after ``join_timeout`` and restarted, and the restart
counts like any other. The one thing translated on the way out is the exception:
the :class:`~otp_py.IntensityExceededError` that :func:`otp_py.run` raises when the
restart budget is exhausted becomes :class:`MaxRestartsExceededError`, its subclass,
carrying the same facts.

This module imports only the public API (``import otp_py``); an import-linter
contract checks it. ``otp_py/__init__.py`` imports it last, once every name it
uses is defined.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.process import BaseProcess
from typing import Any, ClassVar, NoReturn

import otp_py as otp

__all__ = ["MaxRestartsExceededError", "OFASupervisor", "raise_ping_timeout"]

PING_TIMEOUT = 30
JOIN_TIMEOUT = 2
MAX_RESTART_FREQ = 3
MAX_RESTART_FREQ_TIME = 10
CHECK_INTERVAL = 2

SUPERVISOR_ID = "OFASupervisor"
"""The id of the supervisor in reports and log lines."""
CHILD_ID = "process"
"""The id of the supervised process in reports and log lines."""


class MaxRestartsExceededError(otp.IntensityExceededError):
    """Restarts exceeded the maximum restart frequency.

    Raised by :meth:`OFASupervisor.start` when the process had to be restarted more
    than ``max_restart_freq`` times within ``max_restart_freq_time`` seconds; the
    process has been terminated by then. A subclass of
    :class:`~otp_py.IntensityExceededError` (and so of ``RuntimeError``), so one
    ``except`` catches it and the general error alike; ``path``, ``reason`` and
    ``history`` (the exits that used up the budget) are the general error's.
    """


def raise_ping_timeout(msg: str) -> NoReturn:
    """Raise :exc:`multiprocessing.TimeoutError` with ``msg``, for use in
    :class:`threading.Timer` callbacks."""
    raise multiprocessing.TimeoutError(msg)


class OFASupervisor:
    """Process supervisor using the one_for_all strategy.

    However, instead of registering a list of processes, you have one process which
    runs a pool. Makes for an easy implementation.

    Args:
        target: see :attr:`target`.
        args: see :attr:`args`.
        kwargs: see :attr:`kwargs`.
        ping_timeout: see :attr:`ping_timeout`.
        join_timeout: see :attr:`join_timeout`.
        max_restart_freq: see :attr:`max_restart_freq`.
        max_restart_freq_time: see :attr:`max_restart_freq_time`.
        check_interval: see :attr:`check_interval`.

    The class attribute :attr:`Process` is the process class instantiated for every
    start and restart (:class:`multiprocessing.Process` unless a subclass sets its
    own). Every parameter stays readable (and writable, as in Celery) as the
    attribute of the same name; :meth:`start` reads them when it is called.
    Invalid values (a target that is not callable, a negative timeout...) raise
    :class:`~otp_py.SpecError` here, where they are written.
    """

    #: The process class instantiated for every start and restart of the target.
    #: A subclass may set its own :class:`multiprocessing.Process` subclass (which
    #: brings its start method with it). The default, ``multiprocessing.Process``,
    #: uses the default start method (fork on Linux), as Celery did.
    Process: ClassVar[type[BaseProcess]] = multiprocessing.Process

    def __init__(
        self,
        target: Callable[..., Any],
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        ping_timeout: float = PING_TIMEOUT,
        join_timeout: float = JOIN_TIMEOUT,
        max_restart_freq: int = MAX_RESTART_FREQ,
        max_restart_freq_time: float = MAX_RESTART_FREQ_TIME,
        check_interval: float = CHECK_INTERVAL,
    ) -> None:
        #: The target callable to be launched in a new process.
        self.target = target
        #: The positional arguments to apply to :attr:`target` (``[]`` if not given).
        self.args: Sequence[Any] = [] if args is None else args
        #: The keyword arguments to apply to :attr:`target` (``{}`` if not given).
        self.kwargs: Mapping[str, Any] = {} if kwargs is None else kwargs
        #: Seconds the process may leave pings unanswered before it is treated as
        #: hung: stopped, killed if it has not joined within :attr:`join_timeout`
        #: seconds, and restarted.
        self.ping_timeout = ping_timeout
        #: Seconds a process that is asked to stop (because it is hung, or the
        #: supervisor is stopping) gets to join before it is killed.
        self.join_timeout = join_timeout
        #: Limit the number of restarts which can occur in a given time interval:
        #: when restarts exceed ``max_restart_freq`` within
        #: :attr:`max_restart_freq_time` seconds, the process is terminated and
        #: :meth:`start` raises :class:`MaxRestartsExceededError`. This stops a
        #: process that repeatedly dies for the same reason.
        self.max_restart_freq = max_restart_freq
        #: The interval, in seconds, of :attr:`max_restart_freq`.
        self.max_restart_freq_time = max_restart_freq_time
        #: The time in seconds between process pings.
        self.check_interval = check_interval
        self.to_spec()  # refuse invalid parameters now, not at start()

    def to_spec(self) -> otp.SupervisorSpec:
        """The general :class:`~otp_py.SupervisorSpec` that :meth:`start` runs."""
        return otp.SupervisorSpec(
            id=SUPERVISOR_ID,
            strategy=otp.OneForAll(),
            intensity=otp.SlidingWindow(
                max_restarts=self.max_restart_freq, period=self.max_restart_freq_time
            ),
            children=[
                otp.ChildSpec(
                    id=CHILD_ID,
                    start=self.target,
                    backend="process",
                    args=tuple(self.args),
                    kwargs=dict(self.kwargs),
                    process_class=self.Process,
                    heartbeat=otp.Heartbeat(
                        interval=self.check_interval, timeout=self._heartbeat_timeout()
                    ),
                    shutdown=self.join_timeout,
                )
            ],
        )

    def _heartbeat_timeout(self) -> Any:
        """``ping_timeout``, or ``check_interval`` when that is longer: Celery takes a
        ping_timeout under check_interval, and it means what the interval means (a
        silence is noticed at the next ping), which is how Heartbeat says it."""
        timeout, interval = self.ping_timeout, self.check_interval
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool)
                      for v in (timeout, interval))
        if numbers and 0 < timeout < interval:
            return interval
        return timeout

    def start(self) -> None:
        """Launches the target in a separate process and starts supervising it.

        Blocks the calling thread. The process is restarted whenever it ends, and
        when it has left pings unanswered for :attr:`ping_timeout` seconds.

        Returns (``None``) after a KeyboardInterrupt (SIGINT) or SIGTERM, once the
        process has been terminated (with :attr:`join_timeout` seconds of grace);
        the signals are handled only when called from the main thread.

        Raises:
            MaxRestartsExceededError: restarts exceeded :attr:`max_restart_freq`
                within :attr:`max_restart_freq_time` seconds. The process has been
                terminated.
            otp_py.SupervisorExitError: the process could not be started.
        """
        try:
            otp.run(self.to_spec())
        except otp.IntensityExceededError as exc:
            raise MaxRestartsExceededError(exc.path, exc.reason, exc.history, str(exc)) from None
