"""The control socket: ``otp-py status`` and ``otp-py ctl`` talk to a running tree.

Where it lives
--------------
``otp-py run`` (and ``demo``) listens on a Unix stream socket: ``--socket PATH``,
else ``$OTP_PY_SOCKET``, else ``<dir>/<root id>.sock`` where ``<dir>`` is
``$XDG_RUNTIME_DIR/otp-py`` or, without one, ``otp-py-<uid>`` in ``$TMPDIR`` (else
``/tmp``).

Whom it trusts
--------------
A shared directory such as ``/tmp`` lets any local user create ``/tmp/otp-py-<uid>``
before we do, and then serve forged answers on the sockets in it. So both sides
check, and refuse with one line that says why:

* the directory must be a real directory (not a symlink) owned by the user, with no
  permission for group or others: the server creates it with mode 0700 and refuses
  one it finds otherwise; a client refuses to look into it;
* the socket is created with mode 0600; a client refuses a socket owned by another
  user than itself or root, or open to group or others;
* each side reads the other's uid with ``SO_PEERCRED``: the server answers a peer of
  another user with "permission denied" (after reading its request, so that the
  refusal arrives instead of a connection reset), and the client sends nothing to a
  server run by another user.

Root is trusted by both sides, as everywhere on a Unix system.

Bursts
------
The backlog is :data:`BACKLOG` and a client's connect blocks (bounded by its
timeout) rather than failing with ``EAGAIN`` when the backlog is full, so a burst of
clients waits its turn. At most :data:`MAX_CONNECTIONS` connections are served at
once; one more gets a "busy" reply at once, so a flood of idle connections cannot
take every file descriptor of the tree.

Protocol
--------
One request per connection: the client sends one JSON object and a newline; the
tree answers one JSON object and a newline, then closes. Requests::

    {"op": "ping"}
    {"op": "status", "events": 20}         # which_children of every supervisor
    {"op": "restart", "path": "demo/pool/conn"}
    {"op": "terminate", "path": "pool/conn"}   # the root's id may be left out
    {"op": "start", "path": "pool/conn"}       # restart_child of a stopped child
    {"op": "signal", "path": "web", "signal": "HUP", "group": false}
    {"op": "child", "path": "pool/conn", "history": 10}  # one child in full
    {"op": "stop"}                          # stop the whole tree in order
    {"op": "reload", "dry_run": false}      # read the tree file again and apply it
    {"op": "log", "path": "pool/conn", "stream": "stdout"}  # the file of a child's output
    {"op": "log"}                           # the file of the tree's event log

Replies are ``{"ok": true, ...}`` or ``{"ok": false, "error": "one line"}``. The
server runs on the tree's event loop and uses only the public
:class:`~otp_py.AsyncSupervisor` API; a malformed or refused request gets an error
reply and never touches the tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import stat
import struct
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import otp_py as otp
from otp_py.cli.errors import EXIT_FAILED, EXIT_USAGE, CliError
from otp_py.cli.reloading import ReloadRefusedError
from otp_py.cli.render import json_ready
from otp_py.cli.snapshot import Node, Recorder, child_fields, exit_record, snapshot

__all__ = [
    "BACKLOG",
    "ENV_SOCKET",
    "MAX_CONNECTIONS",
    "ControlError",
    "ControlServer",
    "check_private_dir",
    "default_socket",
    "find_socket",
    "request",
    "socket_dir",
]

ENV_SOCKET: Final = "OTP_PY_SOCKET"
"""An environment variable naming the control socket, for ``run`` and the clients."""

REQUEST_LIMIT: Final = 64 * 1024
READ_TIMEOUT: Final = 5.0

BACKLOG: Final = 512
"""Connections the kernel queues before the tree accepts them (more than a burst of a
few hundred clients; the kernel caps it at ``net.core.somaxconn``)."""

MAX_CONNECTIONS: Final = 256
"""Connections served at once; one more is refused with a "busy" reply. Each costs
the tree a file descriptor for up to :data:`READ_TIMEOUT` seconds when idle."""


class ControlError(Exception):
    """A request the tree refuses; its message is the reply's ``error``."""


def socket_dir() -> Path:
    """``$XDG_RUNTIME_DIR/otp-py``, or ``otp-py-<uid>`` in ``$TMPDIR`` or ``/tmp``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        return Path(runtime) / "otp-py"
    base = os.environ.get("TMPDIR")
    if not (base and os.path.isabs(base) and os.path.isdir(base)):
        base = "/tmp"
    return Path(base) / f"otp-py-{os.getuid()}"


def default_socket(tree_id: str) -> Path:
    """Where a tree with root ``tree_id`` listens when no ``--socket`` is given."""
    explicit = os.environ.get(ENV_SOCKET)
    if explicit:
        return Path(explicit)
    return socket_dir() / f"{tree_id}.sock"


def _trusted(uid: int) -> bool:
    """Whether a file or a peer of ``uid`` may be trusted: ours, or root's."""
    return uid in (os.getuid(), 0)


def _mode(info: os.stat_result) -> str:
    return f"{stat.S_IMODE(info.st_mode):04o}"


def check_private_dir(path: Path) -> None:
    """Raise :class:`CliError` unless ``path`` is a directory (not a symlink) owned by
    the user that group and others cannot use.

    A directory in a shared place that someone else made, or that someone else could
    write to, may hold sockets that answer for a tree that is not ours."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise CliError(f"cannot use the control socket's directory {path}: "
                       f"{exc.strerror}") from None
    hint = "remove it, set XDG_RUNTIME_DIR, or pass --socket PATH"
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise CliError(f"refusing {path}: it is not a directory (a symlink or a file that "
                       f"someone may have put there); {hint}")
    if info.st_uid != os.getuid():
        raise CliError(f"refusing {path}: it belongs to uid {info.st_uid}, not to you (uid "
                       f"{os.getuid()}); another user may have made it to intercept the "
                       f"control socket; {hint}")
    if info.st_mode & 0o077:
        raise CliError(f"refusing {path}: its mode is {_mode(info)}, open to group or "
                       f"others; a control socket's directory must be 0700 "
                       f"(chmod 700 {path})")


def _private_dir(path: Path) -> None:
    """Create ``path`` (mode 0700) or check that it is a directory of ours that no one
    else can enter."""
    try:
        path.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create the control socket's directory {path}: "
                       f"{exc.strerror}") from None
    check_private_dir(path)


def _check_socket_file(path: Path) -> None:
    """Raise :class:`CliError` unless the socket at ``path`` belongs to the user (or
    root) and is closed to group and others, as a tree creates it."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise CliError(f"cannot check the control socket {path}: {exc.strerror}") from None
    if not _trusted(info.st_uid):
        raise CliError(f"refusing {path}: the socket belongs to uid {info.st_uid}, not to "
                       f"you (uid {os.getuid()}); another user may be answering for a tree")
    if info.st_mode & 0o077:
        raise CliError(f"refusing {path}: the socket's mode is {_mode(info)}, open to "
                       "group or others (a tree creates it 0600)")


def _peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


class ControlServer:
    """Serves control requests for one running tree.

    :meth:`bind` before the tree starts (so a second ``otp-py run`` on the same socket
    fails before starting anything), :meth:`serve` once it is up, :meth:`close` at the
    end (the socket file is removed).

    With ``path`` None there is no socket: :meth:`attach` it to a tree and only
    :meth:`dispatch` answers (the web observer asks it, so that its buttons make
    exactly the calls ``otp-py ctl`` makes)."""

    def __init__(self, path: Path | None, *, private_dir: bool = False) -> None:
        self.path = path
        self._private_dir = private_dir
        self._sock: socket.socket | None = None
        self._server: asyncio.Server | None = None
        self._inode: int | None = None
        self._sup: otp.AsyncSupervisor | None = None
        self._spec: otp.SupervisorSpec | None = None
        self._recorder: Recorder | None = None
        self._request_stop: Callable[[], None] = lambda: None
        self._reload: Callable[[bool], Awaitable[list[str]]] | None = None
        self._started = time.time()
        self._open = 0

    def bind(self) -> None:
        """Create and listen on the socket (0600). Raises :class:`CliError` if another
        tree listens there, or the path is something else."""
        path = self.path
        if path is None:
            raise ValueError("a ControlServer without a path has no socket to bind")
        if self._private_dir:
            _private_dir(path.parent)
        if len(os.fsencode(path)) >= 108:
            raise CliError(f"control socket path too long for a Unix socket: {path}",
                           code=EXIT_USAGE)
        self._clear_stale()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # never exists with wider permissions, even briefly
        try:
            sock.bind(os.fspath(path))
        except OSError as exc:
            sock.close()
            raise CliError(f"cannot create the control socket {path}: {exc.strerror}") from None
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        sock.listen(BACKLOG)
        sock.setblocking(False)
        self._sock = sock
        self._inode = os.stat(path).st_ino

    def _clear_stale(self) -> None:
        path = self.path
        assert path is not None
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(info.st_mode):
            raise CliError(f"{path} exists and is not a socket; refusing to replace it")
        if not _trusted(info.st_uid):
            raise CliError(f"{path} exists and belongs to uid {info.st_uid}, not to you "
                           f"(uid {os.getuid()}); refusing to replace it (pass --socket PATH)")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        peer: int | None = None
        try:
            probe.connect(os.fspath(path))
            peer = _peer_uid(probe)
        except (ConnectionRefusedError, FileNotFoundError):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # left behind by a tree that died
            return
        except OSError:
            pass
        finally:
            probe.close()
        if peer is not None and not _trusted(peer):
            raise CliError(f"a process of uid {peer}, not yours, is listening on {path}; "
                           "refusing to replace it (pass --socket PATH)")
        raise CliError(f"a tree is already listening on {path}; stop it, or give this one "
                       "another socket with --socket PATH")

    async def serve(
        self,
        sup: otp.AsyncSupervisor,
        spec: otp.SupervisorSpec,
        recorder: Recorder,
        request_stop: Callable[[], None],
        *,
        reload: Callable[[bool], Awaitable[list[str]]] | None = None,
    ) -> None:
        """Start answering requests about the tree ``sup`` (declared as ``spec``).

        ``reload(dry_run)`` reads the tree file again and applies it (or only plans
        it), returning the answer's lines, or raises with why nothing changed (an
        exception with ``lines``); None: the tree cannot be reloaded."""
        assert self._sock is not None, "bind() first"
        self.attach(sup, spec, recorder, request_stop, reload=reload)
        self._server = await asyncio.start_unix_server(
            self._handle, sock=self._sock, limit=REQUEST_LIMIT, backlog=BACKLOG)

    def attach(
        self,
        sup: otp.AsyncSupervisor,
        spec: otp.SupervisorSpec,
        recorder: Recorder,
        request_stop: Callable[[], None],
        *,
        reload: Callable[[bool], Awaitable[list[str]]] | None = None,
    ) -> None:
        """Answer :meth:`dispatch` about the tree ``sup`` from now on (as :meth:`serve`
        does, without listening on the socket)."""
        self._sup, self._spec, self._recorder = sup, spec, recorder
        self._request_stop = request_stop
        self._reload = reload
        self._started = time.time()

    def replace_spec(self, spec: otp.SupervisorSpec) -> None:
        """The tree now runs ``spec`` (after a reload): answer about it."""
        self._spec = spec

    async def close(self) -> None:
        """Stop listening and remove the socket file (if it is still ours)."""
        if self._server is not None:
            self._server.close()
            self._server = None
        self.close_now()

    def close_now(self) -> None:
        """:meth:`close` for a server that never served (no event loop needed)."""
        if self._server is None and self._sock is not None:
            self._sock.close()
        self._sock = None
        try:
            if self.path is not None and self._inode is not None and \
                    os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)
        except OSError:
            pass

    # -- one connection, one request

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open += 1
        try:
            if self._open > MAX_CONNECTIONS:
                # Answer at once, without waiting for the request: a refusal that
                # waited would hold the descriptor the limit is there to save.
                reply: dict[str, Any] = {
                    "ok": False, "error": f"busy: {MAX_CONNECTIONS} control connections "
                                          "are open already; try again later"}
            else:
                try:
                    reply = await self._answer(reader, writer)
                except Exception as exc:  # never let a request reach the tree as one
                    reply = {"ok": False,
                             "error": f"internal error: {type(exc).__name__}: {exc}"}
            await self._reply(writer, reply)
        finally:
            self._open -= 1

    async def _reply(self, writer: asyncio.StreamWriter, reply: dict[str, Any]) -> None:
        try:
            writer.write(json.dumps(json_ready(reply)).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> dict[str, Any]:
        sock = writer.get_extra_info("socket")
        peer = _peer_uid(sock) if sock is not None else os.getuid()
        line: bytes | None = None
        problem = ""
        try:
            # Read the request even from a peer we refuse: closing with unread data
            # makes the kernel reset the connection, and the peer would see
            # "connection reset" instead of the reason.
            line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
        except TimeoutError:
            problem = f"no request within {READ_TIMEOUT:g} s"
        except (ValueError, asyncio.LimitOverrunError):
            problem = f"request longer than {REQUEST_LIMIT} bytes"
        if not _trusted(peer):
            return {"ok": False, "error": f"permission denied: uid {peer} is not the tree's "
                                          f"user (uid {os.getuid()})"}
        if line is None:
            return {"ok": False, "error": problem}
        try:
            request = json.loads(line)
        except ValueError:
            return {"ok": False, "error": "a request is one JSON object on one line"}
        if not isinstance(request, dict):
            return {"ok": False, "error": "a request is one JSON object on one line"}
        try:
            return await self.dispatch(request)
        except ControlError as exc:
            return {"ok": False, "error": str(exc)}
        except otp.OtpError as exc:  # the supervisor refused: not found, running...
            return {"ok": False, "error": str(exc).splitlines()[0]}

    async def dispatch(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answer one decoded request (see the module docstring)."""
        op = request.get("op")
        handlers: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            "ping": self._ping,
            "status": self._status,
            "restart": self._restart,
            "terminate": self._terminate,
            "start": self._start,
            "signal": self._signal,
            "child": self._child,
            "stop": self._stop,
            "reload": self._reload_tree,
            "log": self._log,
        }
        handler = handlers.get(op) if isinstance(op, str) else None
        if handler is None:
            raise ControlError(f"unknown op {op!r}; expected one of {', '.join(handlers)}")
        return await handler(request)

    @property
    def _tree(self) -> tuple[otp.AsyncSupervisor, otp.SupervisorSpec, Recorder]:
        if self._sup is None or self._spec is None or self._recorder is None:
            raise ControlError("the tree is still starting")
        return self._sup, self._spec, self._recorder

    def _info(self) -> dict[str, Any]:
        sup, spec, recorder = self._tree
        started = recorder.started_at.get(spec.id, self._started)
        return {"id": spec.id, "pid": os.getpid(),
                "socket": os.fspath(self.path) if self.path is not None else None,
                "started_at": started, "running": sup.running,
                "log_dir": _log_dir(spec)}

    async def _ping(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "tree": self._info()}

    async def _status(self, request: dict[str, Any]) -> dict[str, Any]:
        sup, spec, recorder = self._tree
        count = request.get("events", 20)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ControlError(f"'events' must be a non-negative integer; got {count!r}")
        root = await snapshot(sup, spec, recorder)
        return {"ok": True, "tree": self._info(), "root": root,
                "events": recorder.recent(min(count, 200))}

    async def _stop(self, request: dict[str, Any]) -> dict[str, Any]:
        _, spec, _ = self._tree
        self._request_stop()
        return {"ok": True, "message": f"stopping tree {spec.id!r}"}

    async def _reload_tree(self, request: dict[str, Any]) -> dict[str, Any]:
        self._tree  # noqa: B018 - refuses while the tree is starting
        dry_run = request.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise ControlError(f"'dry_run' must be true or false; got {dry_run!r}")
        if self._reload is None:
            raise ControlError("this tree cannot be reloaded: it was not started from a "
                               "tree file (otp-py run FILE.toml)")
        try:
            lines = await self._reload(dry_run)
        except ReloadRefusedError as exc:
            raise ControlError("\n".join(["reload refused, nothing changed:",
                                           *(f"  {line}" for line in exc.lines)])) from None
        return {"ok": True, "dry_run": dry_run, "message": "\n".join(lines)}

    async def _locate(self, request: dict[str, Any]) -> tuple[str, str, otp.ChildInfo]:
        """The child ``request["path"]`` names: (its supervisor's path relative to the
        root, its id, its ChildInfo)."""
        sup, spec, _ = self._tree
        path = request.get("path")
        if not isinstance(path, str) or not path.strip("/") or len(path) > 4096:
            raise ControlError("'path' must name a child, such as 'pool/worker'")
        parts = [p for p in path.split("/") if p]
        if parts[0] == spec.id:
            parts = parts[1:]
        if not parts:
            raise ControlError(f"{spec.id!r} is the root supervisor, not a child; stop the "
                               "tree with 'otp-py ctl stop'")
        parent, child_id = "/".join(parts[:-1]), parts[-1]
        where = f"{spec.id}/{parent}" if parent else spec.id
        handle = sup.at(parent) if parent else sup
        try:
            children = await handle.which_children()
        except otp.SupervisorNotRunningError:
            raise ControlError(f"no running supervisor at {where!r}") from None
        for info in children:
            if info.id == child_id:
                return parent, child_id, info
        raise ControlError(f"no child {child_id!r} under {where!r}")

    async def _log(self, request: dict[str, Any]) -> dict[str, Any]:
        """The file a child's output (or, without a path, the tree's events) is
        written to: the capture its supervisors and its spec resolve to."""
        sup, spec, _ = self._tree
        stream = request.get("stream", "stdout")
        if stream not in ("stdout", "stderr"):
            raise ControlError(f"'stream' must be 'stdout' or 'stderr'; got {stream!r}")
        if request.get("path") is None:
            log_dir = _log_dir(spec)
            if log_dir is None:
                raise ControlError(f"tree {spec.id!r} keeps no log (it was started with "
                                   "--no-capture, or its root's output is not captured)")
            return {"ok": True, "file": os.path.join(log_dir, "tree.log"), "log_dir": log_dir}
        parent, child_id, info = await self._locate(request)
        parts = [p for p in (*parent.split("/"), child_id) if p]
        capture = spec.output
        for end in range(1, len(parts) + 1):  # each supervisor's, then the child's own
            below = await sup.get_childspec("/".join(parts[:end]))
            own = getattr(below, "output", None)
            capture = own if capture is None else capture.merged(own)
        full = "/".join((spec.id, *parts))
        backend = getattr(info.spec, "backend", None)
        if info.is_supervisor or backend not in ("process", "command"):
            kind = "a supervisor" if info.is_supervisor else f"a {backend} child"
            raise ControlError(f"{full} is {kind}: only process and command children's "
                               "output is captured (threads and tasks print to the tree's "
                               "own stdout)")
        if capture is None or not capture.enabled:
            raise ControlError(f"the output of {full} is not captured")
        file = capture.completed(spec.id).log_file(parts, stream)
        return {"ok": True, "file": file, "log_dir": _log_dir(spec)}

    async def _terminate(self, request: dict[str, Any]) -> dict[str, Any]:
        sup, spec, _ = self._tree
        parent, child_id, info = await self._locate(request)
        full = "/".join(p for p in (spec.id, parent, child_id) if p)
        if info.state in ("stopped", "ignored"):
            return {"ok": True, "message": f"{full} is already stopped"}
        await sup.terminate_child(f"{parent}/{child_id}" if parent else child_id)
        return {"ok": True, "message": f"terminated {full}"}

    async def _restart(self, request: dict[str, Any]) -> dict[str, Any]:
        sup, spec, _ = self._tree
        parent, child_id, info = await self._locate(request)
        full = "/".join(p for p in (spec.id, parent, child_id) if p)
        relative = f"{parent}/{child_id}" if parent else child_id
        if info.state == "running":
            parent_spec = spec if not parent else await sup.get_childspec(parent)
            # Refuse what OTP would forget on terminate, *before* stopping anything.
            if getattr(parent_spec, "strategy", None) is not None and \
                    parent_spec.strategy.dynamic:
                raise ControlError(f"{full} is a dynamic child of a simple_one_for_one "
                                   "supervisor: terminating it forgets it, so it cannot be "
                                   "restarted")
            if info.spec.restart is otp.Restart.TEMPORARY:
                raise ControlError(f"{full} is temporary: terminating it forgets it, so it "
                                   "cannot be restarted")
            await sup.terminate_child(relative)
        if await sup.restart_child(relative) is None:  # its start said otp.Ignore
            return {"ok": True, "message": f"{full} ignored its start; not running"}
        return {"ok": True, "message": f"restarted {full}"}

    async def _start(self, request: dict[str, Any]) -> dict[str, Any]:
        """supervisorctl's ``start``: :meth:`~otp_py.AsyncSupervisor.restart_child` of a
        stopped child; a running one is left alone."""
        sup, spec, _ = self._tree
        parent, child_id, info = await self._locate(request)
        full = "/".join(p for p in (spec.id, parent, child_id) if p)
        if info.state == "running":
            return {"ok": True, "message": f"{full} is already running"}
        await sup.restart_child(f"{parent}/{child_id}" if parent else child_id)
        return {"ok": True, "message": f"started {full}"}

    async def _signal(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send a signal to a process or command child (or to its process group)."""
        _, spec, _ = self._tree
        parent, child_id, info = await self._locate(request)
        full = "/".join(p for p in (spec.id, parent, child_id) if p)
        signum = parse_signal(request.get("signal"))
        if info.is_supervisor or info.spec.backend not in ("process", "command"):
            kind = "a supervisor" if info.is_supervisor else (
                f"{'an' if info.spec.backend[0] in 'aeiou' else 'a'} {info.spec.backend} child")
            raise ControlError(f"{full} is {kind}, which runs inside the tree's process: "
                               "only process and command children can be signalled")
        if info.pid is None:
            raise ControlError(f"{full} is {info.state}: it has no process to signal")
        group = bool(request.get("group"))
        try:
            if group:
                # The group the tree made it the leader of (its id is the child's pid),
                # never whatever group the child is in now: a child that joined the
                # tree's own group (or its shell's) would have them signalled too.
                if os.getpgid(info.pid) != info.pid:
                    raise ControlError(
                        f"{full} (pid {info.pid}) has left the process group it was "
                        f"started in (it is in group {os.getpgid(info.pid)} now): "
                        "signal it alone, without --group")
                os.killpg(info.pid, signum)
            else:
                os.kill(info.pid, signum)
        except ProcessLookupError:
            raise ControlError(f"{full} (pid {info.pid}) has just ended") from None
        target = f"process group of {full} (pid {info.pid})" if group else \
            f"{full} (pid {info.pid})"
        return {"ok": True, "message": f"sent {signal.Signals(signum).name} to {target}",
                "pid": info.pid}

    async def _child(self, request: dict[str, Any]) -> dict[str, Any]:
        """One child in full: its spec, state, pid, uptime, restarts and crash history
        (the last ``history`` exits, with traceback and stderr tail)."""
        sup, spec, recorder = self._tree
        count = request.get("history", 10)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ControlError(f"'history' must be a non-negative integer; got {count!r}")
        parent, child_id, info = await self._locate(request)
        relative = f"{parent}/{child_id}" if parent else child_id
        path = "/".join(p for p in (spec.id, parent, child_id) if p)
        node = child_fields(info, path, recorder)
        records: tuple[Any, ...] = ()
        with contextlib.suppress(otp.OtpError):
            records = await sup.child_history(relative)
        # Records carry the loop's clock (time.monotonic, system-wide on Linux, so a
        # subtree's process shares it); a reader wants wall-clock times.
        offset = time.time() - time.monotonic()
        node["history"] = [exit_record(r, offset) for r in records[-count:]] if count else []
        return {"ok": True, "tree": self._info(), "child": node}


def _log_dir(spec: otp.SupervisorSpec) -> str | None:
    """The log directory of the tree's root (None: the root captures nothing)."""
    if spec.output is None or not spec.output.enabled:
        return None
    return spec.output.completed(spec.id).dir


# ------------------------------------------------------------------ the client


def request(path: Path, payload: dict[str, Any], *, timeout: float = 30.0) -> dict[str, Any]:
    """Send one request to the tree listening on ``path``; return its reply.

    ``timeout`` bounds the whole exchange: the wait for the tree to accept the
    connection (its backlog may be full during a burst of clients) and for its reply.
    Nothing is sent before the socket and the process serving it are found to be the
    user's own (or root's).

    Raises :class:`CliError` when no tree answers, when the socket or its server
    belongs to someone else, and with the tree's own message when it refuses the
    request."""
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    with _connect(path, timeout) as sock:
        _check_socket_file(path)
        peer = _peer_uid(sock)
        if not _trusted(peer):
            raise CliError(f"permission denied: {path} is served by a process of uid "
                           f"{peer}, not by you (uid {os.getuid()}); refusing to talk to it")
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            # A tree that refuses at once (busy) may have answered and closed already.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(json.dumps(payload).encode() + b"\n")
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            raise CliError(f"no reply from {path} within {timeout:g} s (a request already "
                           "sent may still complete)") from None
        except ConnectionResetError:
            # A tree that refuses at once (busy) closes without reading what we sent;
            # the kernel then resets the connection after its reply.
            if not b"".join(chunks).endswith(b"\n"):
                raise CliError(f"lost the connection to {path}: the tree reset it "
                               "before replying") from None
        except OSError as exc:
            raise CliError(f"lost the connection to {path}: {exc.strerror or exc}") from None
    try:
        reply = json.loads(b"".join(chunks))
    except ValueError:
        raise CliError(f"not a control socket, or the tree ended: {path}") from None
    if not isinstance(reply, dict):
        raise CliError(f"unexpected reply from {path}")
    if not reply.get("ok"):
        raise CliError(str(reply.get("error", "the request was refused")), code=EXIT_FAILED)
    return reply


def _connect(path: Path, timeout: float) -> socket.socket:
    """A connection to ``path``, waiting at most ``timeout`` seconds for the tree to
    have room for it.

    The connect blocks: on a non-blocking Unix socket (as ``settimeout`` makes it) a
    full backlog fails at once with ``EAGAIN``, so a burst of clients would fail
    instead of waiting their turn. ``SO_SNDTIMEO`` bounds how long a blocking connect
    waits."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    seconds = max(timeout, 0.001)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                    struct.pack("@ll", int(seconds), int(seconds % 1 * 1_000_000)))
    try:
        sock.connect(os.fspath(path))
    except OSError as exc:
        sock.close()
        raise CliError(_connect_failure(path, exc, timeout)) from None
    except BaseException:
        sock.close()
        raise
    return sock


def _connect_failure(path: Path, exc: OSError, timeout: float) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"no tree is listening on {path} (no such socket)"
    if isinstance(exc, ConnectionRefusedError):
        return f"no tree is listening on {path} (a stale socket; the tree that made it has ended)"
    if isinstance(exc, PermissionError):
        return f"permission denied: {path}"
    if isinstance(exc, BlockingIOError | TimeoutError):
        return (f"the tree on {path} did not accept the connection within {timeout:g} s "
                "(too busy?)")
    return f"cannot connect to {path}: {exc.strerror or exc}"


def _answers(path: Path) -> bool:
    try:
        request(path, {"op": "ping"}, timeout=2.0)
    except CliError:
        return False
    return True


def find_socket(explicit: str | None = None, tree: str | None = None) -> Path:
    """The control socket a client should use: ``explicit``, ``$OTP_PY_SOCKET``, the
    one of tree ``tree``, or the only live one in :func:`socket_dir`."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(ENV_SOCKET)
    if env:
        return Path(env)
    directory = socket_dir()
    exists = os.path.lexists(directory)
    if exists:
        check_private_dir(directory)  # before trusting any name found in it
    if tree:
        return directory / f"{tree}.sock"
    found = sorted(p for p in directory.glob("*.sock") if p.is_socket()) if exists else []
    if len(found) > 1:
        found = [p for p in found if _answers(p)]
    if not found:
        raise CliError(f"no running tree found (no control socket in {directory}); start one "
                       "with 'otp-py run', or pass --socket PATH")
    if len(found) > 1:
        names = ", ".join(p.stem for p in found)
        raise CliError(f"several trees are running ({names}); choose one with --tree ID "
                       "or --socket PATH", code=EXIT_USAGE)
    return found[0]


def parse_signal(value: Any) -> int:
    """A signal given as ``HUP``, ``SIGHUP`` or ``1``; raises :class:`ControlError`."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return int(signal.Signals(value))
        except ValueError:
            pass
    elif isinstance(value, str):
        text = value.strip().upper()
        if text.isdigit():
            return parse_signal(int(text))
        name = text if text.startswith("SIG") else f"SIG{text}"
        member = getattr(signal.Signals, name, None)
        if member is not None:
            return int(member)
    raise ControlError(f"unknown signal {value!r}; expected a name such as HUP, TERM or USR1, "
                       "or a number")


def status_nodes(reply: dict[str, Any]) -> Node:
    """The root node of a ``status`` reply."""
    root = reply.get("root")
    if not isinstance(root, dict):
        raise CliError("the tree's status reply has no tree in it")
    return root
