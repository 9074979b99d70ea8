"""The control socket: ``otp-py status`` and ``otp-py ctl`` talk to a running tree.

Where it lives
--------------
``otp-py run`` (and ``demo``) listens on a Unix stream socket: ``--socket PATH``,
else ``$OTP_PY_SOCKET``, else ``<dir>/<root id>.sock`` where ``<dir>`` is
``$XDG_RUNTIME_DIR/otp-py`` or, without one, ``/tmp/otp-py-<uid>``. The directory is
created with mode 0700 and must belong to the user; the socket itself is created
with mode 0600, and every connection's peer must be the same user (or root),
checked with ``SO_PEERCRED``.

Protocol
--------
One request per connection: the client sends one JSON object and a newline; the
tree answers one JSON object and a newline, then closes. Requests::

    {"op": "ping"}
    {"op": "status", "events": 20}         # which_children of every supervisor
    {"op": "restart", "path": "demo/pool/conn"}
    {"op": "terminate", "path": "pool/conn"}   # the root's id may be left out
    {"op": "stop"}                          # stop the whole tree in order

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
import socket
import stat
import struct
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import otp_py as otp
from otp_py.cli.errors import EXIT_FAILED, EXIT_USAGE, CliError
from otp_py.cli.render import json_ready
from otp_py.cli.snapshot import Node, Recorder, snapshot

__all__ = [
    "ENV_SOCKET",
    "ControlError",
    "ControlServer",
    "default_socket",
    "find_socket",
    "request",
    "socket_dir",
]

ENV_SOCKET: Final = "OTP_PY_SOCKET"
"""An environment variable naming the control socket, for ``run`` and the clients."""

REQUEST_LIMIT: Final = 64 * 1024
READ_TIMEOUT: Final = 5.0


class ControlError(Exception):
    """A request the tree refuses; its message is the reply's ``error``."""


def socket_dir() -> Path:
    """``$XDG_RUNTIME_DIR/otp-py``, or ``/tmp/otp-py-<uid>``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "otp-py"
    return Path("/tmp") / f"otp-py-{os.getuid()}"


def default_socket(tree_id: str) -> Path:
    """Where a tree with root ``tree_id`` listens when no ``--socket`` is given."""
    explicit = os.environ.get(ENV_SOCKET)
    if explicit:
        return Path(explicit)
    return socket_dir() / f"{tree_id}.sock"


def _private_dir(path: Path) -> None:
    """Create ``path`` (mode 0700) or check that it is a directory of ours that no one
    else can enter."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(path)
    except OSError as exc:
        raise CliError(f"cannot create the control socket's directory {path}: "
                       f"{exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise CliError(f"{path} is not a directory owned by you; refusing to put the "
                       "control socket there (pass --socket PATH)")
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)


def _peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


class ControlServer:
    """Serves control requests for one running tree.

    :meth:`bind` before the tree starts (so a second ``otp-py run`` on the same socket
    fails before starting anything), :meth:`serve` once it is up, :meth:`close` at the
    end (the socket file is removed)."""

    def __init__(self, path: Path, *, private_dir: bool) -> None:
        self.path = path
        self._private_dir = private_dir
        self._sock: socket.socket | None = None
        self._server: asyncio.Server | None = None
        self._inode: int | None = None
        self._sup: otp.AsyncSupervisor | None = None
        self._spec: otp.SupervisorSpec | None = None
        self._recorder: Recorder | None = None
        self._request_stop: Callable[[], None] = lambda: None
        self._started = time.time()

    def bind(self) -> None:
        """Create and listen on the socket (0600). Raises :class:`CliError` if another
        tree listens there, or the path is something else."""
        path = self.path
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
        sock.listen(16)
        sock.setblocking(False)
        self._sock = sock
        self._inode = os.stat(path).st_ino

    def _clear_stale(self) -> None:
        path = self.path
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(info.st_mode):
            raise CliError(f"{path} exists and is not a socket; refusing to replace it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(os.fspath(path))
        except (ConnectionRefusedError, FileNotFoundError):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # left behind by a tree that died
            return
        except OSError:
            pass
        finally:
            probe.close()
        raise CliError(f"a tree is already listening on {path}; stop it, or give this one "
                       "another socket with --socket PATH")

    async def serve(
        self,
        sup: otp.AsyncSupervisor,
        spec: otp.SupervisorSpec,
        recorder: Recorder,
        request_stop: Callable[[], None],
    ) -> None:
        """Start answering requests about the tree ``sup`` (declared as ``spec``)."""
        assert self._sock is not None, "bind() first"
        self._sup, self._spec, self._recorder = sup, spec, recorder
        self._request_stop = request_stop
        self._started = time.time()
        self._server = await asyncio.start_unix_server(
            self._handle, sock=self._sock, limit=REQUEST_LIMIT)

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
            if self._inode is not None and os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)
        except OSError:
            pass

    # -- one connection, one request

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            reply = await self._answer(reader, writer)
        except Exception as exc:  # never let a request reach the tree as an exception
            reply = {"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}"}
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
        if sock is not None and _peer_uid(sock) not in (os.getuid(), 0):
            return {"ok": False, "error": "permission denied: not the tree's user"}
        try:
            line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
        except TimeoutError:
            return {"ok": False, "error": f"no request within {READ_TIMEOUT:g} s"}
        except (ValueError, asyncio.LimitOverrunError):
            return {"ok": False, "error": f"request longer than {REQUEST_LIMIT} bytes"}
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
            "stop": self._stop,
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
        return {"id": spec.id, "pid": os.getpid(), "socket": os.fspath(self.path),
                "started_at": started, "running": sup.running}

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


# ------------------------------------------------------------------ the client


def request(path: Path, payload: dict[str, Any], *, timeout: float = 30.0) -> dict[str, Any]:
    """Send one request to the tree listening on ``path``; return its reply.

    Raises :class:`CliError` when no tree answers, and with the tree's own message
    when it refuses the request."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    chunks: list[bytes] = []
    with sock:
        try:
            sock.connect(os.fspath(path))
        except FileNotFoundError:
            raise CliError(f"no tree is listening on {path} (no such socket)") from None
        except ConnectionRefusedError:
            raise CliError(f"no tree is listening on {path} (a stale socket; the tree "
                           "that made it has ended)") from None
        except PermissionError:
            raise CliError(f"permission denied: {path}") from None
        except OSError as exc:
            raise CliError(f"cannot connect to {path}: {exc.strerror or exc}") from None
        try:
            sock.sendall(json.dumps(payload).encode() + b"\n")
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            raise CliError(f"no reply from {path} within {timeout:g} s (a request already "
                           "sent may still complete)") from None
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
    if tree:
        return directory / f"{tree}.sock"
    found = sorted(p for p in directory.glob("*.sock") if p.is_socket()) \
        if directory.is_dir() else []
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


def status_nodes(reply: dict[str, Any]) -> Node:
    """The root node of a ``status`` reply."""
    root = reply.get("root")
    if not isinstance(root, dict):
        raise CliError("the tree's status reply has no tree in it")
    return root
