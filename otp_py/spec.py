"""Child and supervisor specs: *what runs* and *how to recover*, declared in code.

Specs are frozen attrs classes, validated where they are written: a bad value raises
:class:`~otp_py.SpecError` (a ``ValueError``; :class:`~otp_py.SpecTypeError` is also
a ``TypeError``) at construction, naming the child id and the field and saying what
was expected and what was given. Nothing invalid reaches a running tree.

Converters accept the obvious spellings (``restart="transient"``, a list for
``args``, ``strategy="one_for_all"``); validators then check every field. The rules
are OTP's (``supervisor:check_childspec/2``) plus what Python needs: ``start`` must
be callable, or an argv for command children, and options must suit the backend.

A :class:`SupervisorSpec` is itself a valid child, so trees nest.
"""

from __future__ import annotations

import enum
import functools
import inspect
import math
import os
import pickle
import re
import signal
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.process import BaseProcess
from typing import Any, ClassVar, Final, Literal, TypeVar

import attrs

from otp_py._core.decider import Decider
from otp_py._core.intensity import IntensityPolicy, SlidingWindow
from otp_py._core.names import MAX_NAME_LENGTH, name_problem
from otp_py._core.notify import NOTIFY_ACCESS
from otp_py._core.probes import Probe, check_probe, to_argv
from otp_py._core.strategies import (
    OneForAll,
    OneForOne,
    RestartStrategy,
    RestForOne,
    SimpleOneForOne,
)
from otp_py._core.types import BRUTAL_KILL, INFINITY, AutoShutdown, BrutalKill, Restart
from otp_py._errors import SpecError, SpecTypeError, show_value

__all__ = [
    "BACKENDS",
    "START_METHODS",
    "Backend",
    "ChildSpec",
    "Heartbeat",
    "LoopWatchdog",
    "OutputCapture",
    "RayActorTarget",
    "StartMethod",
    "SupervisorSpec",
]

Backend = Literal["process", "command", "thread", "asyncio", "ray"]
BACKENDS: Final[tuple[str, ...]] = ("process", "command", "thread", "asyncio", "ray")
"""The names of what can run a worker child."""

StartMethod = Literal["forkserver", "fork", "spawn"]
START_METHODS: Final[tuple[str, ...]] = ("forkserver", "fork", "spawn")

SUPERVISOR_BACKENDS: Final[tuple[str, ...]] = ("inline", "process", "ray")
"""A nested supervisor runs ``inline`` (same process and event loop as its parent),
in a ``process`` of its own, or in a Ray actor (``ray``, with the ``otp_py[ray]``
extra)."""

_STRATEGIES: Final[Mapping[str, RestartStrategy]] = {
    s.name: s for s in (OneForOne(), OneForAll(), RestForOne(), SimpleOneForOne())
}

DEFAULT_WORKER_SHUTDOWN: Final = 5.0
"""OTP's default ``shutdown`` for workers: 5 s (``5000`` ms)."""

DEFAULT_INTENSITY: Final = SlidingWindow(max_restarts=1, period=5.0)
"""OTP's default restart intensity: 1 restart in 5 s."""

_E = TypeVar("_E", bound=enum.Enum)

_NOTIFIED: Final[tuple[str, ...]] = ("command", "process")
"""The backends whose children get a notify socket with ready=True."""


# -- lenient converters: turn obvious spellings into values, leave the rest for the
#    validators, which know the child id and can say what is wrong.


def _to_enum(kind: type[_E], value: Any) -> Any:
    if isinstance(value, str):
        try:
            return kind(value.lower())
        except ValueError:
            return value
    return value


def _to_restart(value: Any) -> Any:
    return _to_enum(Restart, value)


def _to_auto_shutdown(value: Any) -> Any:
    return _to_enum(AutoShutdown, value)


def _to_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _to_dict(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) and not isinstance(value, dict) else value


def _to_strategy(value: Any) -> Any:
    if isinstance(value, str):
        return _STRATEGIES.get(value.lower(), value)
    if isinstance(value, type) and issubclass(value, RestartStrategy):
        return value()
    return value


def _to_shutdown(value: Any) -> Any:
    if isinstance(value, str):
        lowered = value.lower()
        if lowered == "brutal_kill":
            return BRUTAL_KILL
        if lowered == "infinity":
            return INFINITY
    return value


def _to_infinity(value: Any) -> Any:
    if isinstance(value, str) and value.lower() == "infinity":
        return INFINITY
    return value


# -- validation helpers, each naming the child and the field.


def _fail(child_id: Any, field: str, expected: str, got: Any, *, type_error: bool = False,
          kind: str | None = None) -> None:
    cls = SpecTypeError if type_error else SpecError
    raise cls(child_id, field, f"expected {expected}; got {show_value(got)}", kind=kind,
              value=got)


def _combination(child_id: str, field: str, message: str, **values: Any) -> SpecError:
    """OTP's ``bad_combination``: each value is fine alone, not together."""
    return SpecError(child_id, field, message, kind="bad_combination",
                     value=tuple(sorted(values.items())))


def _check_id(value: Any, owner: str) -> None:
    if not isinstance(value, str):
        _fail(None, "id", f"a non-empty string naming the {owner}", value, type_error=True)
    problem = name_problem(value)
    if problem is not None:
        # The error names the id as given: its repr escapes what would forge a line.
        raise SpecError(value, "id", f"an id is printable text of 1 to {MAX_NAME_LENGTH} "
                        f"characters, without '/' or surrounding spaces; this one holds "
                        f"{problem}", value=value)


def _check_name(child_id: str, value: Any) -> None:
    """A child's tree-wide name (``whereis``): None or a non-empty string; no '/',
    so that a string with one is always a path."""
    if value is None:
        return
    if not isinstance(value, str):
        _fail(child_id, "name", "a string naming the child tree-wide, or None", value,
              type_error=True)
    problem = name_problem(value)
    if problem is not None:
        raise SpecError(child_id, "name", f"a name is printable text of 1 to "
                        f"{MAX_NAME_LENGTH} characters, without '/' or surrounding spaces; "
                        f"{show_value(value)} holds {problem}", value=value)


def _check_max_children(sup_id: str, value: Any, strategy: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(sup_id, "max_children", "an int >= 0, or None for no limit", value,
              type_error=True)
    if value < 0:
        _fail(sup_id, "max_children", "an int >= 0, or None for no limit", value)
    if not getattr(strategy, "dynamic", False):
        raise SpecError(sup_id, "max_children", "max_children limits the dynamic children "
                        "of a simple_one_for_one supervisor; this one is "
                        f"{getattr(strategy, 'name', strategy)!r}")


def _is_nan(value: int | float) -> bool:
    # (math.isnan would overflow on an int too large for a float: a SpecError's job)
    return isinstance(value, float) and math.isnan(value)


def _check_shutdown(child_id: str, value: Any) -> None:
    if value is BRUTAL_KILL:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(child_id, "shutdown", "seconds (a number), INFINITY or BRUTAL_KILL", value,
              type_error=True)
    if _is_nan(value) or value < 0:
        _fail(child_id, "shutdown", "a non-negative number of seconds, INFINITY or BRUTAL_KILL",
              value)
    _check_not_absurd(child_id, "shutdown", value)


def _check_decider(child_id: str, value: Any) -> None:
    if value is not None and not isinstance(value, Decider):
        _fail(child_id, "decider", "a Decider or None", value, type_error=True)


def _check_timeout(child_id: str, field: str, value: Any, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(child_id, field, "a number of seconds", value, type_error=True)
    if _is_nan(value) or value < 0 or (value == 0 and not allow_zero):
        bound = "non-negative" if allow_zero else "positive"
        _fail(child_id, field, f"a {bound} number of seconds", value)
    _check_not_absurd(child_id, field, value)


MAX_TIMEOUT: Final = 365 * 24 * 3600.0
"""The longest finite timeout accepted (a year); anything longer is a mistake for
INFINITY, or for milliseconds given as seconds."""


def _check_not_absurd(child_id: str | None, field: str, value: float) -> None:
    if MAX_TIMEOUT < value < math.inf:
        _fail(child_id, field, f"at most {MAX_TIMEOUT:.0f} seconds (a year), or INFINITY "
              "(seconds, not milliseconds)", value)


def _check_restart(child_id: str, value: Any) -> None:
    if not isinstance(value, Restart):
        _fail(child_id, "restart", "Restart.PERMANENT, TRANSIENT or TEMPORARY "
              "(or 'permanent', 'transient', 'temporary')", value,
              type_error=not isinstance(value, str))


def _check_significant(child_id: str, significant: Any, restart: Restart) -> None:
    if not isinstance(significant, bool):
        _fail(child_id, "significant", "True or False", significant, type_error=True)
    if significant and restart is Restart.PERMANENT:
        raise _combination(
            child_id,
            "significant",
            "a permanent child cannot be significant (OTP refuses "
            "{bad_combination, [{restart, permanent}, {significant, true}]}); "
            "make it transient or temporary",
            restart=restart, significant=significant,
        )


@attrs.frozen
class Heartbeat:
    """Liveness pings for process and thread children.

    The supervisor pings the child every ``interval`` seconds (a process child
    answers from a small thread; a thread child must call :func:`otp_py.heartbeat`);
    a child that has not answered a ping within ``timeout`` seconds of it (checked at
    the next ping) is *hung*: it is stopped (killed if it does not
    stop within its shutdown timeout), reported with a :class:`~otp_py.reasons.Hung`
    reason, and restarted per its restart type.

    ``interval`` is at least 1 ms, and ``timeout`` at least ``interval``: a silence
    is only noticed at a ping, so a shorter timeout could not be kept.
    """

    interval: float = attrs.field(default=2.0)
    timeout: float = attrs.field(default=30.0)

    MIN_INTERVAL: ClassVar[float] = 0.001
    """The shortest ``interval`` accepted: 1 ms (a ping per loop turn is a busy loop)."""

    def __attrs_post_init__(self) -> None:
        for field in ("interval", "timeout"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | float):
                _fail(None, field, "a number of seconds", value, type_error=True)
            if not -math.inf < value < math.inf or value <= 0:
                _fail(None, field, "a positive, finite number of seconds", value)
            _check_not_absurd(None, field, value)
        if self.interval < self.MIN_INTERVAL:
            _fail(None, "interval", "at least 0.001 seconds (1 ms) between pings; a "
                  "shorter interval only keeps the loop and the child busy answering",
                  self.interval)
        if self.timeout < self.interval:
            raise SpecError(None, "timeout", f"Heartbeat.timeout ({self.timeout!r} s) must "
                            f"be at least its interval ({self.interval!r} s): a missed ping "
                            "is noticed at the next ping, so a shorter timeout cannot be "
                            "honoured", value=self.timeout)



STREAMS: Final[tuple[str, ...]] = ("stdout", "stderr")
"""The standard streams of a process or command child that can be captured."""

_SIZE_UNITS: Final[Mapping[str, int]] = {
    "": 1, "b": 1, "kb": 1 << 10, "kib": 1 << 10, "mb": 1 << 20, "mib": 1 << 20,
    "gb": 1 << 30, "gib": 1 << 30,
}
_SIZE = re.compile(r"^\s*(\d+)\s*([a-zA-Z]*)\s*$")


def _to_size(value: Any) -> Any:
    """``"10MB"`` (supervisord's spelling: 1 MB is 1024 KB) or ``"512 KiB"`` as bytes."""
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match and match.group(2).lower() in _SIZE_UNITS:
            return int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    return value


def _to_path(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _file_part(name: str) -> str:
    """A child id as one file-name component: percent-encoded, so that no id (``..``,
    one with a NUL or a space) can leave the log directory or collide with another."""
    part = urllib.parse.quote(name, safe="-_.+=,@~")
    return "%2E" + part[1:] if part.startswith(".") else part


_LOG_NAME = re.compile(r"\.(log(?:\.[0-9]+)?)$")


def _directory_part(name: str) -> str:
    """A supervisor's id as a directory of the log directory: :func:`_file_part`, and
    a name that ends as a log file's (``tree.log``, ``a.stdout.log``, ``a.stdout.log.1``)
    gets that dot encoded, so that no directory takes the place of a log file or of
    one of its rotated backups (a directory is then never a file another child needs)."""
    return _LOG_NAME.sub(r"%2E\1", _file_part(name))


@attrs.frozen
class OutputCapture:
    """Where the standard output and error of process and command children go.

    Set on a :class:`SupervisorSpec` (``output=``), it holds for every process and
    command child below it; a nested supervisor's or a child's own ``output`` then
    overrides it field by field (a field left ``None`` is inherited). Without any,
    nothing is captured: a child writes to the supervisor's own stdout, and its stderr
    is copied to the supervisor's (the library default: no files appear).

    Captured, each stream of each child goes to a file of its own in ``dir``:
    ``<dir>/<path below the root>.stdout.log`` and ``.stderr.log`` (``pool/w`` of tree
    ``root`` writes ``<dir>/pool/w.stdout.log``), and each start of the child writes a
    marker line (``--- otp-py: started pid 1234 (restart 2) at ...``) first. Each id
    is percent-encoded as one file-name component (a supervisor's whose id ends like a
    log file's, ``tree.log``, has that dot encoded too, ``tree%2Elog``). The
    tree's own reports go to ``<dir>/tree.log`` when the root captures.

    Fields (``None``: inherited, else the default named):

    * ``dir``: the log directory; default ``$XDG_STATE_HOME/otp-py/<root id>``, else
      ``~/.local/state/otp-py/<root id>``. A relative one is taken from the current
      directory when the tree starts.
    * ``max_bytes``: a log file is rotated before it would grow past this size
      (supervisord's ``stdout_logfile_maxbytes``; ``"10MB"`` is accepted); 0: never.
      Default :data:`DEFAULT_MAX_BYTES`.
    * ``backups``: rotated files kept, ``.1`` the newest (``stdout_logfile_backups``);
      0: the file is truncated instead. Default :data:`DEFAULT_BACKUPS`.
    * ``passthrough``: also copy each line to the supervisor's own stdout or stderr,
      prefixed with the child's path and ``" | "``. Default False.
    * ``enabled``: False turns capture off here (and below, unless turned on again).

    Thread and asyncio children share the supervisor's process and its streams: what
    they print is not captured.

    Writing never blocks the tree's event loop: the files are opened, written and
    rotated by a writer thread, through a bounded buffer (see
    :mod:`otp_py.backends.output`)."""

    dir: str | None = attrs.field(default=None, converter=_to_path)
    max_bytes: int | None = attrs.field(default=None, converter=_to_size)
    backups: int | None = attrs.field(default=None)
    passthrough: bool | None = attrs.field(default=None)
    enabled: bool = attrs.field(default=True)

    def __attrs_post_init__(self) -> None:
        if self.dir is not None and (not isinstance(self.dir, str) or not self.dir
                                     or "\0" in self.dir):
            _fail(None, "dir", "a directory path (str), or None to inherit", self.dir,
                  type_error=not isinstance(self.dir, str))
        for field in ("max_bytes", "backups"):
            value = getattr(self, field)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                _fail(None, field, "a whole number >= 0" + (
                    " of bytes (or a size such as '10MB')" if field == "max_bytes" else ""),
                    value, type_error=not isinstance(value, str))
            if value < 0:
                _fail(None, field, "a whole number >= 0", value)
        if self.passthrough is not None and not isinstance(self.passthrough, bool):
            _fail(None, "passthrough", "True, False or None", self.passthrough,
                  type_error=True)
        if not isinstance(self.enabled, bool):
            _fail(None, "enabled", "True or False", self.enabled, type_error=True)

    def merged(self, over: OutputCapture | None) -> OutputCapture:
        """This capture overridden by ``over`` (a child's or a nested supervisor's):
        each field ``over`` sets wins; ``enabled`` is always ``over``'s."""
        if over is None:
            return self
        return OutputCapture(
            dir=over.dir if over.dir is not None else self.dir,
            max_bytes=over.max_bytes if over.max_bytes is not None else self.max_bytes,
            backups=over.backups if over.backups is not None else self.backups,
            passthrough=over.passthrough if over.passthrough is not None
            else self.passthrough,
            enabled=over.enabled,
        )

    def completed(self, tree_id: str) -> OutputCapture:
        """Every field set: the defaults for what is still ``None``, ``dir`` made
        absolute (:meth:`default_dir` of ``tree_id`` when unset)."""
        return OutputCapture(
            dir=os.path.abspath(self.dir if self.dir is not None
                                else OutputCapture.default_dir(tree_id)),
            max_bytes=self.max_bytes if self.max_bytes is not None else DEFAULT_MAX_BYTES,
            backups=self.backups if self.backups is not None else DEFAULT_BACKUPS,
            passthrough=bool(self.passthrough),
            enabled=self.enabled,
        )

    @staticmethod
    def default_dir(tree_id: str) -> str:
        """``$XDG_STATE_HOME/otp-py/<tree_id>``, else ``~/.local/state/otp-py/<tree_id>``
        (the XDG base directory rule: a relative ``$XDG_STATE_HOME`` is ignored)."""
        base = os.environ.get("XDG_STATE_HOME", "")
        if not os.path.isabs(base):
            base = os.path.join(os.path.expanduser("~"), ".local", "state")
        return os.path.join(base, "otp-py", _file_part(tree_id))

    def log_file(self, path: Sequence[str], stream: str) -> str:
        """The file that stream ``stream`` (``"stdout"``, ``"stderr"``) of the child at
        ``path`` (its ids below the root: ``("pool", "w")``) is written to."""
        if stream not in STREAMS:
            raise ValueError(f"stream must be 'stdout' or 'stderr'; got {stream!r}")
        if not path:
            raise ValueError("a child's path below the root has at least its own id")
        if self.dir is None:
            raise ValueError("this OutputCapture has no dir yet (see completed())")
        *parents, child = path
        return os.path.join(self.dir, *(_directory_part(part) for part in parents),
                            f"{_file_part(child)}.{stream}.log")

    @property
    def tree_log(self) -> str:
        """The tree's own event log in :attr:`dir` (``tree.log``)."""
        if self.dir is None:
            raise ValueError("this OutputCapture has no dir yet (see completed())")
        return os.path.join(self.dir, "tree.log")


DEFAULT_MAX_BYTES: Final = 10 << 20
"""A captured log file is rotated at 10 MiB unless told otherwise."""

DEFAULT_BACKUPS: Final = 5
"""Rotated log files kept unless told otherwise."""


def _check_output(child_id: str, value: Any, backend: str | None) -> None:
    if value is None:
        return
    if not isinstance(value, OutputCapture):
        _fail(child_id, "output", "an OutputCapture(dir=..., max_bytes=..., backups=..., "
              "passthrough=...) or None", value, type_error=True)
    if backend == "ray" and value.enabled:
        raise SpecError(child_id, "output", "a ray child's output is Ray's (its worker's "
                        "log files, shown by the driver when log_to_driver is on): it "
                        "cannot be captured here; leave output unset")
    if backend in ("thread", "asyncio") and value.enabled:
        raise SpecError(child_id, "output", f"a {backend} child runs in the supervisor's "
                        "own process and shares its stdout and stderr: its output cannot "
                        "be captured (only process and command children's can)")


@attrs.frozen
class LoopWatchdog:
    """Watch the tree's event loop for asyncio children that block it.

    A helper thread checks every ``interval`` seconds that the loop still turns. When
    a check has gone unanswered for ``timeout`` seconds, the loop is blocked: the
    watchdog looks at the loop's stack for the task child running there, and once the
    loop turns again that child is reported hung (with the lag measured), stopped and
    restarted per its policy. If no task child is on the stack (the tree's own code or
    a callback blocked), every asyncio child on the loop is reported hung. Lags above
    ``threshold`` but under ``timeout`` are only logged.

    Set it on a tree's root :class:`SupervisorSpec` (``watchdog=``). It costs a wakeup
    per interval, so it is off by default.
    """

    interval: float = attrs.field(default=0.5)
    timeout: float = attrs.field(default=2.0)
    threshold: float = attrs.field(default=0.1)

    def __attrs_post_init__(self) -> None:
        for field in ("interval", "timeout", "threshold"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | float):
                _fail(None, field, "a number of seconds", value, type_error=True)
            if not -math.inf < value < math.inf or value <= 0:
                _fail(None, field, "a positive, finite number of seconds", value)
            _check_not_absurd(None, field, value)

_RAY_RESTART_OPTIONS: Final[tuple[str, ...]] = ("max_restarts", "max_task_retries")


def _check_ray_options(owner: str, options: Any) -> dict[str, Any]:
    """The ``ray.remote`` options of a ray child or subtree, checked for what would
    take a decision away from otp_py (Ray's own restarts) or outlive the tree (a
    detached actor). Ray checks the rest when the actor is created."""
    if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
        _fail(owner, "options", "a mapping of ray.remote option names to values "
              "(num_cpus=..., resources=..., scheduling_strategy=..., runtime_env=...)",
              options, type_error=True)
    made: dict[str, Any] = dict(options)
    for name in _RAY_RESTART_OPTIONS:
        if made.get(name, 0) != 0:
            raise SpecError(owner, "options", f"{name}={made[name]!r}: Ray's own restarts "
                            f"stay off (otp_py sets {name}=0) so that the supervisor's "
                            "restart type, intensity and backoff decide; leave it out",
                            value=made[name])
    if made.get("lifetime") == "detached":
        raise SpecError(owner, "options", "lifetime='detached' would let the actor outlive "
                        "its tree (a supervised actor shares its supervisor's fate); leave "
                        "it out", value=made["lifetime"])
    return made


@attrs.frozen(repr=False)
class RayActorTarget:
    """What a ray child runs (see :meth:`ChildSpec.ray_actor`): the actor class, the
    name of the method that is its life, its ``ray.remote`` options, and whether it
    is ready when its ``__init__`` returns (``ready_on="init"``) or when it calls
    :func:`otp_py.notify_ready` (``"notify"``; only waited for with ``ready=True``).

    Plain data: nothing here imports Ray (the ray backend does, when a tree starts
    the child). The child's ``args`` and ``kwargs`` are the class's: a target's
    signature is its class's, so they are checked where the spec is written."""

    cls: type = attrs.field()
    run: str = attrs.field(default="run")
    options: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    ready_on: Literal["init", "notify"] = attrs.field(default="init")

    @property
    def __signature__(self) -> inspect.Signature:  # (read by inspect.signature)
        return inspect.signature(self.cls)

    def __repr__(self) -> str:
        # (what status and the live view show as the child's target)
        return f"ray actor {self.cls.__module__}:{self.cls.__qualname__}.{self.run}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{self.cls.__qualname__} runs as a Ray actor, started by a tree "
                        "(ChildSpec.ray_actor); it is not called directly")


@attrs.frozen(kw_only=True)
class ChildSpec:
    """A worker: what to run, with which backend, and how to treat its end.

    Fields:

    * ``id``: unique among its siblings; 1 to 255 printable characters, without
      ``/`` (paths use it), control or format characters, line separators or
      surrounding spaces (it becomes rows of ``otp-py status`` and log lines).
    * ``start``: the callable to run (``"process"``, ``"thread"``), a coroutine
      function (``"asyncio"``), or an argv (``"command"``: a list of strings, or one
      string split like a shell would).
    * ``args``, ``kwargs``: arguments for ``start`` (callables only), which every
      backend calls as ``start(*args, **kwargs)``: a ``start`` whose signature
      cannot take them is refused (a simple_one_for_one template may lack the
      arguments each ``start_child`` appends; those are checked there).
    * ``restart``: :class:`Restart`, default permanent.
    * ``shutdown``: seconds to wait after a graceful stop before killing,
      :data:`INFINITY` or :data:`BRUTAL_KILL`; default 5 s, as OTP.
    * ``significant``: ends the supervisor under ``auto_shutdown`` (never permanent).
    * ``backend``: ``"process"``, ``"command"``, ``"thread"`` or ``"asyncio"``;
      inferred when omitted (coroutine function: asyncio; argv: command;
      other callables: process).
    * ``start_method`` (process): ``"forkserver"`` (default), ``"fork"`` or ``"spawn"``.
    * ``process_class`` (process): a :class:`multiprocessing.Process` subclass to
      instantiate instead (it brings its own start method).
    * ``stop_signal`` (command): the signal that asks it to stop; default SIGTERM.
      Not SIGKILL or SIGSTOP, which cannot ask: ``shutdown=BRUTAL_KILL`` kills.
    * ``cwd``, ``env`` (command): working directory and extra environment.
    * ``ready``: the child signals when it is up; the supervisor waits for it (at
      most ``start_timeout`` seconds) before starting the next sibling. A process
      child calls :func:`otp_py.notify_ready`; a command or process child may also
      speak systemd's notify protocol (``READY=1`` to ``$NOTIFY_SOCKET``, see
      :doc:`/production`), which its ``STATUS=`` and ``WATCHDOG=1`` go through too.
    * ``start_timeout``: seconds to wait for readiness; default 30; :data:`INFINITY`
      (or ``"infinity"``) waits forever. A float infinity not written INFINITY is
      refused, as the mark of an overflow or a unit mistake.
    * ``heartbeat`` (process, thread, command with ``ready``): a :class:`Heartbeat`.
      A command child's (and, once it sends one, a process child's) heartbeat is
      its ``WATCHDOG=1`` pings, due within ``timeout`` (its ``WATCHDOG_USEC``).
    * ``notify_access`` (command, process, with ``ready``): who may write to its
      notify socket: ``"main"`` (default; its own process) or ``"all"`` (also its
      descendants, process group and cgroup), as systemd's ``NotifyAccess``.
    * ``decider``: a :class:`~otp_py.Decider` mapping what happened (exception types,
      exit codes, signals) to what to do; default: the supervisor's, else OTP's table.
    * ``capture_stderr`` (process, command): keep the tail of its standard error for
      its crash history (it is still copied to the supervisor's standard error).
    * ``name``: a name unique across the whole tree, for ``whereis(name)`` (see
      :doc:`/howto/dynamic`); it stays with the child across restarts.
    * ``output`` (process, command): an :class:`OutputCapture` overriding, field by
      field, the one its supervisors give (see :doc:`/howto/logs`).
    * ``readiness``, ``liveness`` (any backend): a probe from :mod:`otp_py.probes`
      (``Exec``, ``Tcp``, ``Http``, ``Call``). A readiness probe gates the start like
      ``ready``: the child is reported started once it passes (within
      ``start_timeout``); a liveness probe failing ``failure_threshold`` times in a
      row makes the child hung: stopped and restarted per its restart type.
    """

    is_supervisor: ClassVar[bool] = False

    id: str = attrs.field()
    start: Any = attrs.field()
    args: tuple[Any, ...] = attrs.field(default=(), converter=_to_tuple)
    kwargs: Mapping[str, Any] = attrs.field(factory=dict, converter=_to_dict, hash=False)
    restart: Restart = attrs.field(default=Restart.PERMANENT, converter=_to_restart)
    shutdown: float | BrutalKill = attrs.field(
        default=DEFAULT_WORKER_SHUTDOWN, converter=_to_shutdown
    )
    significant: bool = attrs.field(default=False)
    backend: Backend = attrs.field(default=None)
    start_method: StartMethod | None = attrs.field(default=None)
    process_class: type | None = attrs.field(default=None)
    stop_signal: int | None = attrs.field(default=None)
    cwd: str | None = attrs.field(default=None)
    env: Mapping[str, str] | None = attrs.field(default=None, converter=_to_dict, hash=False)
    ready: bool = attrs.field(default=False)
    start_timeout: float = attrs.field(default=30.0, converter=_to_infinity)
    heartbeat: Heartbeat | None = attrs.field(default=None)
    notify_access: str = attrs.field(default="main")
    decider: Decider | None = attrs.field(default=None)
    capture_stderr: bool = attrs.field(default=True)
    name: str | None = attrs.field(default=None)
    output: OutputCapture | None = attrs.field(default=None)
    readiness: Probe | None = attrs.field(default=None)
    liveness: Probe | None = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        _check_id(self.id, "child")
        cid = self.id
        _check_name(cid, self.name)
        backend = self.backend
        if backend is None:
            backend = _infer_backend(self.start)
            object.__setattr__(self, "backend", backend)
        if backend not in BACKENDS:
            _fail(cid, "backend", "one of " + ", ".join(map(repr, BACKENDS)), backend,
                  type_error=not isinstance(backend, str))
        self._check_start(backend)
        if not isinstance(self.args, tuple):
            _fail(cid, "args", "a tuple or list of positional arguments", self.args,
                  type_error=True)
        if not isinstance(self.kwargs, dict) or not all(isinstance(k, str) for k in self.kwargs):
            _fail(cid, "kwargs", "a mapping of keyword-argument names to values", self.kwargs,
                  type_error=True)
        if backend == "command" and (self.args or self.kwargs):
            field = "args" if self.args else "kwargs"
            raise _combination(cid, field, "a command child takes its arguments in its argv "
                               "('start'), not in args/kwargs",
                               backend=backend, **{field: getattr(self, field)})
        if backend != "command":
            check_binds(self, partial=True)
        # (in OTP's order: restart type, significant, shutdown)
        _check_restart(cid, self.restart)
        _check_significant(cid, self.significant, self.restart)
        _check_shutdown(cid, self.shutdown)
        _check_decider(cid, self.decider)
        _check_output(cid, self.output, backend)
        if not isinstance(self.capture_stderr, bool):
            _fail(cid, "capture_stderr", "True or False", self.capture_stderr, type_error=True)
        self._check_backend_options(backend)
        check_probe(cid, "readiness", self.readiness)
        check_probe(cid, "liveness", self.liveness)

    def _check_start(self, backend: str) -> None:
        cid, start = self.id, self.start
        if backend == "command":
            argv = to_argv(start)
            if (
                not isinstance(argv, tuple)
                or not argv
                or not all(isinstance(a, str) for a in argv)
            ):
                _fail(cid, "start", "an argv for a command child: a non-empty list of strings "
                      "or a command line", start, type_error=not isinstance(start, str))
            if any("\0" in a for a in argv):
                _fail(cid, "start", "an argv without NUL characters", argv)
            object.__setattr__(self, "start", argv)
            return
        if (backend == "ray") != isinstance(start, RayActorTarget):
            if backend == "ray":
                _fail(cid, "start", "a RayActorTarget: build a ray child with "
                      "ChildSpec.ray_actor(id, cls, ...)", start, type_error=True)
            raise _combination(cid, "backend", f"a RayActorTarget runs only as a ray child "
                               f"(ChildSpec.ray_actor); got backend={backend!r}",
                               backend=backend, start=start)
        if not callable(start):
            _fail(cid, "start", f"a callable to run in the {backend} backend", start,
                  type_error=True)
        is_coroutine = _is_async_callable(start)
        if backend == "asyncio" and not is_coroutine:
            _fail(cid, "start", "a coroutine function (async def) for an asyncio child", start,
                  type_error=True)
        if backend != "asyncio" and is_coroutine:
            raise _combination(cid, "start", f"{start!r} is a coroutine function, which only "
                               f"the asyncio backend can run; got backend={backend!r}",
                               backend=backend, start=start)
        if _is_generator_function(start):  # calling it runs nothing: the child would
            raise SpecError(cid, "start", f"{start!r} is a generator function: calling it "
                            "only makes a generator, so the child would end at once; give "
                            "a function that does the work", value=start)

    def _check_backend_options(self, backend: str) -> None:
        cid = self.id
        if self.start_method is not None:
            if backend != "process":
                raise _combination(cid, "start_method", f"only process children have a start "
                                   f"method; this child's backend is {backend!r}",
                                   backend=backend, start_method=self.start_method)
            if self.start_method not in START_METHODS:
                _fail(cid, "start_method", "one of " + ", ".join(map(repr, START_METHODS)),
                      self.start_method, type_error=not isinstance(self.start_method, str))
        if self.stop_signal is not None:
            if backend != "command":
                raise _combination(cid, "stop_signal", f"only command children take a stop "
                                   f"signal; this child's backend is {backend!r}",
                                   backend=backend, stop_signal=self.stop_signal)
            self._check_stop_signal()
        if self.process_class is not None:
            if backend != "process":
                raise _combination(cid, "process_class", f"only process children take a "
                                   f"process class; this child's backend is {backend!r}",
                                   backend=backend, process_class=self.process_class)
            if not (isinstance(self.process_class, type)
                    and issubclass(self.process_class, BaseProcess)):
                _fail(cid, "process_class", "a multiprocessing.Process subclass",
                      self.process_class, type_error=True)
            if self.start_method is not None:
                raise _combination(cid, "start_method", "a process_class brings its own start "
                                   "method; give one or the other",
                                   process_class=self.process_class,
                                   start_method=self.start_method)
        if backend == "process" and self.start_method != "fork" and self.process_class is None:
            self._check_picklable()
        for field in ("cwd", "env"):
            if getattr(self, field) is not None and backend != "command":
                raise _combination(cid, field, f"only command children take {field!r}; this "
                                   f"child's backend is {backend!r}",
                                   backend=backend, **{field: getattr(self, field)})
        if self.cwd is not None and not isinstance(self.cwd, str):
            _fail(cid, "cwd", "a directory path (str)", self.cwd, type_error=True)
        if self.env is not None and not (
            isinstance(self.env, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in self.env.items())
        ):
            _fail(cid, "env", "a mapping of str to str", self.env, type_error=True)
        for name, value in (self.env or {}).items():
            if not name or "=" in name or "\0" in name or "\0" in value:
                _fail(cid, "env", "variable names without '=' or NUL, and values without "
                      "NUL", f"{name}={value}")
        if not isinstance(self.ready, bool):
            _fail(cid, "ready", "True or False", self.ready, type_error=True)
        if self.notify_access not in NOTIFY_ACCESS:
            _fail(cid, "notify_access", "one of " + ", ".join(map(repr, NOTIFY_ACCESS)),
                  self.notify_access, type_error=not isinstance(self.notify_access, str))
        if self.notify_access != "main" and not (self.ready and backend in _NOTIFIED):
            raise _combination(cid, "notify_access", "only a command or process child with "
                               "ready=True has a notify socket to open to its descendants "
                               f"(this one: backend {backend!r}, ready={self.ready})",
                               backend=backend, ready=self.ready,
                               notify_access=self.notify_access)
        _check_timeout(cid, "start_timeout", self.start_timeout)
        if self.start_timeout == math.inf and self.start_timeout is not INFINITY:
            raise SpecError(cid, "start_timeout", "an infinite start_timeout (waiting for "
                            "readiness forever) is written INFINITY, the library's constant "
                            "(or 'infinity'); a float infinity here is taken for a mistake "
                            "(an overflow, a unit error)", value=self.start_timeout)
        if self.heartbeat is not None:
            if not isinstance(self.heartbeat, Heartbeat):
                _fail(cid, "heartbeat", "a Heartbeat(interval, timeout) or None",
                      self.heartbeat, type_error=True)
            if backend == "command" and not self.ready:
                raise _combination(cid, "heartbeat", "a command child's heartbeat is the "
                                   "WATCHDOG=1 pings of systemd's notify protocol, which "
                                   "need its notify socket: give ready=True too",
                                   backend=backend, heartbeat=self.heartbeat)
            if backend not in ("process", "thread", "command", "ray"):
                raise _combination(cid, "heartbeat", f"only process, thread, command and "
                                   f"ray children answer heartbeats; this child's backend is "
                                   f"{backend!r}", backend=backend, heartbeat=self.heartbeat)

    def _check_stop_signal(self) -> None:
        cid, value = self.id, self.stop_signal
        assert value is not None
        is_int = isinstance(value, int) and not isinstance(value, bool)
        try:
            signum = signal.Signals(value)
        except (ValueError, TypeError):
            _fail(cid, "stop_signal", "a signal number such as signal.SIGTERM", value,
                  type_error=not is_int)
            return
        if signum in (signal.SIGKILL, signal.SIGSTOP):
            what = ("cannot be caught, so it kills without the cleanup a stop signal allows"
                    if signum == signal.SIGKILL else
                    "pauses the program instead of asking it to stop, so every stop would "
                    "wait out the shutdown timeout")
            raise SpecError(cid, "stop_signal", f"{signum.name} {what}; to kill at once, "
                            "give shutdown=BRUTAL_KILL ('brutal_kill' in a tree file) and "
                            "leave stop_signal a signal the program can handle, such as "
                            "SIGTERM", value=value)

    def _check_picklable(self) -> None:
        method = self.start_method or "forkserver"
        for field, value in (("start", self.start), ("args", self.args),
                             ("kwargs", self.kwargs)):
            try:
                pickle.dumps(value)
            except Exception as exc:
                raise SpecError(
                    self.id, field, f"must be picklable to reach a {method!r} child process "
                    f"(define functions at module level, or use start_method='fork'); "
                    f"pickling {value!r} failed: {exc}", value=value) from None

    # -- named constructors for the common shapes

    @classmethod
    def process(cls, id: str, start: Callable[..., Any], **fields: Any) -> ChildSpec:
        """A callable run in a new OS process."""
        return cls(id=id, start=start, backend="process", **fields)

    @classmethod
    def thread(cls, id: str, start: Callable[..., Any], **fields: Any) -> ChildSpec:
        """A callable run in a thread of its own."""
        return cls(id=id, start=start, backend="thread", **fields)

    @classmethod
    def asyncio(cls, id: str, start: Callable[..., Any], **fields: Any) -> ChildSpec:
        """An *asyncio child*: a coroutine function run as a task on the tree's event
        loop (``backend="asyncio"``, the word the TOML files and ``otp-py`` use too)."""
        return cls(id=id, start=start, backend="asyncio", **fields)

    @classmethod
    def task(cls, id: str, start: Callable[..., Any], **fields: Any) -> ChildSpec:
        """The older name of :meth:`asyncio`."""
        return cls(id=id, start=start, backend="asyncio", **fields)

    @classmethod
    def command(cls, id: str, argv: str | Sequence[str], **fields: Any) -> ChildSpec:
        """An external program (argv list, or a command line split like a shell)."""
        return cls(id=id, start=argv, backend="command", **fields)

    @classmethod
    def ray_actor(cls, id: str, actor: type, args: Sequence[Any] = (),
                  kwargs: Mapping[str, Any] | None = None, *, run: str = "run",
                  options: Mapping[str, Any] | None = None,
                  ready_on: Literal["init", "notify"] = "init",
                  **fields: Any) -> ChildSpec:
        """A Ray actor (``pip install 'otp_py[ray]'``; the tree uses the Ray
        connection the application made with ``ray.init``): ``actor(*args, **kwargs)``
        is created with the ``ray.remote`` ``options`` (``num_cpus``, ``resources``,
        ``scheduling_strategy``, ``runtime_env``...) and Ray's own restarts off, then
        its ``run`` method is called: that call is the child's life. Returning is a
        normal exit, raising a crash, the actor dying (its worker killed, its node
        lost) an :class:`~otp_py.backends.ray_actor.ActorDied` exit naming the node
        and the pid. A graceful stop sets the child's stop token
        (:func:`otp_py.wait_for_stop`, :func:`otp_py.stop_requested`) and
        ``ray.kill`` follows after ``shutdown`` seconds.

        With ``ready=True``, the child is up when ``__init__`` has returned, or, with
        ``ready_on="notify"``, when the actor calls :func:`otp_py.notify_ready`. A
        :class:`Heartbeat` is a method call the actor must answer within the timeout.
        See :doc:`/howto/ray`."""
        if not isinstance(actor, type):
            _fail(id, "start", "a class, to run as a Ray actor", actor, type_error=True)
        if hasattr(actor, "__ray_actor_class__") or hasattr(actor, "__ray_metadata__"):
            raise SpecError(id, "start", f"{actor!r} is already a ray.remote class: give "
                            "the plain class and its ray.remote options as options=...; "
                            "otp_py makes the actor itself, with Ray's restarts off",
                            value=actor)
        if not isinstance(run, str) or not callable(getattr(actor, run, None)):
            _fail(id, "run", f"the name of a method of {actor.__qualname__}, the one whose "
                  "call is the actor's life", run, type_error=not isinstance(run, str))
        if ready_on not in ("init", "notify"):
            _fail(id, "ready_on", "'init' (ready when __init__ returns) or 'notify' (when "
                  "the actor calls otp_py.notify_ready)", ready_on)
        target = RayActorTarget(actor, run, _check_ray_options(id, options or {}), ready_on)
        return cls(id=id, start=target, args=tuple(args), kwargs=dict(kwargs or {}),
                   backend="ray", **fields)

    def with_extra_args(self, extra: Sequence[Any]) -> ChildSpec:
        """This spec with ``extra`` appended to ``args`` (simple_one_for_one).

        Raises :class:`~otp_py.SpecError` if ``start`` cannot be called with the
        arguments it now has."""
        spec = attrs.evolve(self, args=(*self.args, *extra))
        if spec.backend != "command":
            check_binds(spec, partial=False)
        return spec


def _is_async_callable(obj: Any) -> bool:
    """A coroutine function, a partial of one, or an object with ``async def __call__``."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    if inspect.iscoroutinefunction(obj):
        return True
    if inspect.isfunction(obj) or inspect.ismethod(obj) or not callable(obj):
        return False
    return inspect.iscoroutinefunction(type(obj).__call__)


def _is_generator_function(obj: Any) -> bool:
    while isinstance(obj, functools.partial):
        obj = obj.func
    return inspect.isgeneratorfunction(obj) or inspect.isasyncgenfunction(obj)


@functools.lru_cache(maxsize=512)
def _signature(start: Any) -> inspect.Signature | None:
    """``start``'s signature, None if it has none; cached, as a simple_one_for_one
    template is checked at every start_child and computing one is the slow part."""
    try:
        return inspect.signature(start)
    except (TypeError, ValueError):
        return None


def check_binds(spec: ChildSpec, *, partial: bool) -> None:
    """Refuse a ``spec`` whose ``start`` cannot be called with its ``args`` and
    ``kwargs``, as every backend calls it: ``start(*args, **kwargs)`` (a thread child
    reads its stop token, and any child its context, through :mod:`otp_py`, not
    through arguments). Without this, the mistake surfaces as a ``TypeError`` at each
    start, and the supervisor restarts the child until it gives up.

    ``partial`` allows missing arguments: a simple_one_for_one template gets the rest
    from each ``start_child``, where the full check is made. A callable without a
    signature (some builtins) cannot be checked, and is accepted."""
    start, args, kwargs = spec.start, spec.args, spec.kwargs
    try:
        signature = _signature(start)
    except TypeError:  # unhashable: not worth a cache
        signature = _signature.__wrapped__(start)
    if signature is None:
        return
    bind = signature.bind_partial if partial else signature.bind
    try:
        bind(*args, **kwargs)
    except TypeError as exc:
        value: Any
        try:
            signature.bind_partial(*args)
        except TypeError:
            field, value = "args", args
        else:
            field, value = ("kwargs", kwargs) if kwargs else ("args", args)
        name = getattr(start, "__qualname__", None) or repr(start)
        raise SpecError(spec.id, field, f"{name}{signature} cannot be called with "
                        f"args={show_value(args)} and kwargs={show_value(kwargs)}: {exc}",
                        kind="invalid_start", value=value) from None


def _infer_backend(start: Any) -> str:
    if isinstance(start, RayActorTarget):
        return "ray"
    if _is_async_callable(start):
        return "asyncio"
    if isinstance(start, str | list | tuple):
        return "command"
    return "process"


@attrs.frozen(kw_only=True)
class SupervisorSpec:
    """A supervisor: its children, its strategy, and how much failure is too much.

    Fields:

    * ``id``: the supervisor's id (``"root"`` for a tree's root, by convention).
    * ``strategy``: a :class:`RestartStrategy` (or its OTP name), default one_for_one.
    * ``intensity``: an :class:`IntensityPolicy`; default OTP's, 1 restart in 5 s.
    * ``children``: :class:`ChildSpec` and :class:`SupervisorSpec` values, started
      in this order and stopped in reverse. A simple_one_for_one supervisor has
      exactly one: the template of its dynamic children.
    * ``auto_shutdown``: :class:`AutoShutdown`, default never.
    * ``restart``, ``shutdown`` (default :data:`INFINITY`, as OTP), ``significant``:
      how its parent treats it, as for any child.
    * ``backend``: ``"inline"`` (default: on its parent's event loop),
      ``"process"`` (a subtree in its own OS process) or ``"ray"`` (a subtree in a
      Ray actor, wherever the cluster places it; the ``otp_py[ray]`` extra). A
      tree's root runs in the process that runs the tree: ``run``, ``start``, ``supervise`` and
      ``simulate`` refuse a root with ``backend="process"``.
    * ``decider``: the default :class:`~otp_py.Decider` of its children.
    * ``watchdog``: a :class:`LoopWatchdog` for the event loop of the tree this spec
      is the root of (refused on a nested inline supervisor, which shares its
      parent's loop; a ``"process"`` subtree is the root of its own loop).
    * ``max_children`` (simple_one_for_one only): how many dynamic children it may
      have at once, as Elixir's ``DynamicSupervisor``; ``start_child`` beyond it
      raises :class:`~otp_py.MaxChildrenError`. Default ``None``: no limit.
    * ``name``: a name unique across the whole tree, as for a :class:`ChildSpec`.
    * ``output``: an :class:`OutputCapture` for the process and command children
      below it (inherited, field by field, by nested supervisors and children).
    * ``options`` (``backend="ray"``): the ``ray.remote`` options of the actor that
      hosts the subtree (``num_cpus``, ``resources``, ``scheduling_strategy``...):
      the whole subtree runs in that actor, its children local to its node (see
      :doc:`/howto/ray`).
    """

    is_supervisor: ClassVar[bool] = True

    id: str = attrs.field()
    strategy: RestartStrategy = attrs.field(factory=OneForOne, converter=_to_strategy)
    intensity: IntensityPolicy = attrs.field(default=DEFAULT_INTENSITY)
    children: tuple[ChildSpec | SupervisorSpec, ...] = attrs.field(
        default=(), converter=_to_tuple
    )
    auto_shutdown: AutoShutdown = attrs.field(
        default=AutoShutdown.NEVER, converter=_to_auto_shutdown
    )
    restart: Restart = attrs.field(default=Restart.PERMANENT, converter=_to_restart)
    shutdown: float | BrutalKill = attrs.field(default=INFINITY, converter=_to_shutdown)
    significant: bool = attrs.field(default=False)
    backend: str = attrs.field(default="inline")
    decider: Decider | None = attrs.field(default=None)
    watchdog: LoopWatchdog | None = attrs.field(default=None)
    max_children: int | None = attrs.field(default=None)
    name: str | None = attrs.field(default=None)
    output: OutputCapture | None = attrs.field(default=None)
    options: Mapping[str, Any] | None = attrs.field(default=None, converter=_to_dict,
                                                    hash=False)

    def __attrs_post_init__(self) -> None:
        _check_id(self.id, "supervisor")
        sid = self.id
        _check_output(sid, self.output, None)
        _check_name(sid, self.name)
        _check_max_children(sid, self.max_children, self.strategy)
        if not isinstance(self.strategy, RestartStrategy):
            _fail(sid, "strategy", "a RestartStrategy (or 'one_for_one', 'one_for_all', "
                  "'rest_for_one', 'simple_one_for_one')", self.strategy,
                  type_error=not isinstance(self.strategy, str))
        if not isinstance(self.intensity, IntensityPolicy):
            _fail(sid, "intensity", "an IntensityPolicy such as SlidingWindow(1, 5)",
                  self.intensity, type_error=True)
        if not isinstance(self.auto_shutdown, AutoShutdown):
            _fail(sid, "auto_shutdown", "AutoShutdown.NEVER, ANY_SIGNIFICANT or "
                  "ALL_SIGNIFICANT (or their lower-case names)", self.auto_shutdown,
                  type_error=not isinstance(self.auto_shutdown, str))
        _check_restart(sid, self.restart)
        _check_shutdown(sid, self.shutdown)
        _check_significant(sid, self.significant, self.restart)
        if self.backend not in SUPERVISOR_BACKENDS:
            _fail(sid, "backend", "'inline', 'process' or 'ray'", self.backend,
                  type_error=not isinstance(self.backend, str))
        if self.options is not None:
            if self.backend != "ray":
                raise _combination(sid, "options", "options are the ray.remote options of "
                                   "a subtree hosted in a Ray actor (backend='ray'); this "
                                   f"supervisor's backend is {self.backend!r}",
                                   backend=self.backend, options=self.options)
            object.__setattr__(self, "options", _check_ray_options(sid, self.options))
        if self.backend == "process":
            try:  # it travels to its process whole
                pickle.dumps(self)
            except Exception as exc:
                raise SpecError(sid, "backend", f"a subtree in a process of its own must be "
                                f"picklable, every child and policy in it (define functions "
                                f"at module level); pickling it failed: {exc}") from None
        _check_decider(sid, self.decider)
        if self.watchdog is not None and not isinstance(self.watchdog, LoopWatchdog):
            _fail(sid, "watchdog", "a LoopWatchdog or None", self.watchdog, type_error=True)
        self._check_children()

    def _check_children(self) -> None:
        sid = self.id
        if not isinstance(self.children, tuple):
            _fail(sid, "children", "a list of ChildSpec and SupervisorSpec values",
                  self.children, type_error=True, kind="bad_start_spec")
        seen: set[str] = set()
        for child in self.children:
            if not isinstance(child, ChildSpec | SupervisorSpec):
                _fail(sid, "children", "ChildSpec or SupervisorSpec values", child,
                      type_error=True, kind="invalid_child_spec")
            if child.id in seen:
                raise SpecError(child.id, "id", f"duplicate id among the children of "
                                f"supervisor {sid!r}; sibling ids must be unique",
                                kind="duplicate_child_name", value=child.id)
            seen.add(child.id)
            check_nested(child, template=self.strategy.dynamic)
            if child.significant and self.auto_shutdown is AutoShutdown.NEVER:
                raise _combination(child.id, "significant", f"significant=True needs "
                                   f"auto_shutdown other than 'never' on supervisor {sid!r} "
                                   "(OTP refuses {bad_combination, [{auto_shutdown, never}, "
                                   "{significant, true}]})",
                                   auto_shutdown=self.auto_shutdown,
                                   significant=child.significant)
        if self.strategy.dynamic and len(self.children) != 1:
            raise SpecError(sid, "children", f"a simple_one_for_one supervisor needs exactly "
                            f"one child template; got {len(self.children)} children",
                            kind="bad_start_spec", value=self.children)

    @property
    def template(self) -> ChildSpec | SupervisorSpec:
        """The child template of a simple_one_for_one supervisor."""
        if not self.strategy.dynamic:
            raise SpecError(self.id, "strategy", "only simple_one_for_one supervisors have a "
                            "child template")
        return self.children[0]

    def with_extra_args(self, extra: Sequence[Any]) -> SupervisorSpec:
        """Supervisors take no arguments; a dynamic supervisor child is started as is."""
        if extra:
            raise SpecError(self.id, "args", "a supervisor template takes no extra arguments")
        return self


AnySpec = ChildSpec | SupervisorSpec


def check_nested(spec: AnySpec, *, template: bool = False) -> None:
    """Refuse what a spec cannot be as a nested child (in ``children`` or given to
    ``start_child``): a supervisor on its parent's loop with a watchdog of its own, or
    a worker whose ``start`` cannot be called with its arguments (a
    simple_one_for_one ``template`` may still lack the ones ``start_child`` gives)."""
    if isinstance(spec, SupervisorSpec) and spec.watchdog is not None \
            and spec.backend == "inline":
        raise _combination(spec.id, "watchdog", "a nested supervisor runs on its parent's "
                           "event loop, which only the tree's root can watch: set watchdog= "
                           "on the root (or give this supervisor backend='process', a loop "
                           "of its own)", backend=spec.backend, watchdog=spec.watchdog)
    if isinstance(spec, ChildSpec) and spec.backend != "command" and not template:
        check_binds(spec, partial=False)
