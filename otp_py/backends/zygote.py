"""otp_py's fork server: a clean process that forks process children on request.

Forking the supervising process itself is fast but unsafe once it runs threads (and
it always runs an event loop, often in a thread); spawning a fresh interpreter per
child is safe but costs tens of milliseconds of imports. The fork server gets both:
it is started once, with ``exec``, as a single-threaded process that imports otp_py
and, on first use, the modules of the targets it is asked to run; each child is then
a plain ``fork()`` of it, with everything already imported.

Protocol (a Unix stream socket; the supervisor holds one end, the server the other):

* supervisor -> server: an 8-byte length and two to four file descriptors (the
  child's end of its pipe to the supervisor, the write end of a *status pipe*, and
  optionally the child's standard error and output) by ``SCM_RIGHTS``, then the
  pickle of ``(sys_path or None, request, streams)``, where ``request`` is itself the
  pickle of ``(target, args, kwargs, options)``, unpickled only once the path is in
  place, and ``streams`` names the optional descriptors in order (``("stderr",
  "stdout")``, ``("stdout",)``...);
* server -> supervisor: an 8-byte length, then the pickled reply ``("ok", pid)`` or
  ``("error", text)``.

The server reaps its children on SIGCHLD and writes each one's exit code (as
``multiprocessing`` reports it: negative for a signal) to its status pipe, which the
supervisor watches with its event loop. If the supervisor dies, the server reads
end-of-file, SIGKILLs its children and then whatever they leave, and exits.

The server is a child subreaper: the orphans of process children (a daemon, a
``setsid`` grandchild whose parent died) are reparented to it, not to init, and its
reaping loop reaps them like its own children. Every process it has is a process
child or descends from one, so this steals no one's exit status; and on the
supervisor's death it can end them, even where no cgroup holds them.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import traceback
from typing import Any, ClassVar

from otp_py.backends.containment import children_of_self, set_child_subreaper

__all__ = ["IMPORTING_MAIN", "ForkServer", "ForkServerError", "main", "main_guard_message"]

_LENGTH = struct.Struct("!Q")
_STATUS = struct.Struct("!i")


class ForkServerError(RuntimeError):
    """The fork server could not start a child (the text says why)."""


IMPORTING_MAIN = "OTP_PY_IMPORTING_MAIN"
"""Set (to the script's path) while the fork server imports the supervisor's main
script to find a target defined in it."""


def main_guard_message(script: str, exc: BaseException) -> str:
    """The error for a script whose import, to find a process child's target, failed
    (typically: it started its tree again because it has no ``__main__`` guard)."""
    # (no apostrophes: the text travels inside a repr, which would escape them)
    first = str(exc).splitlines()[0] if str(exc) else ""
    return (f"importing {script} to find the target of a process child failed "
            f"({type(exc).__name__}: {first}): a target defined in a script is found by "
            "importing the script again in a fresh process, which runs its top-level "
            'code; put the code that starts the tree under if __name__ == "__main__":, '
            "or define the target in a module of its own")


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            raise EOFError("fork server connection closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _send_message(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(_LENGTH.pack(len(payload)) + payload)


def _recv_message(sock: socket.socket) -> bytes:
    (size,) = _LENGTH.unpack(_recv_exactly(sock, _LENGTH.size))
    return _recv_exactly(sock, size)


# --------------------------------------------------------------------- the client


class ForkServer:
    """The supervisor's handle on its fork server (one per supervising process)."""

    _shared: ClassVar[ForkServer | None] = None
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid_owner = os.getpid()
        self._process: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._sent_path: tuple[str, ...] | None = None

    @classmethod
    def shared(cls) -> ForkServer:
        with cls._shared_lock:
            if cls._shared is None or cls._shared._pid_owner != os.getpid():
                cls._shared = cls()
            return cls._shared

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _launch(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "otp_py.backends.zygote", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
            )
        finally:
            theirs.close()
        self._sock = ours
        self._sent_path = None
        main = sys.modules.get("__main__")
        hello = {
            "cwd": os.getcwd(),
            "main_file": getattr(main, "__file__", None),
            "main_spec": getattr(getattr(main, "__spec__", None), "name", None),
        }
        _send_message(ours, pickle.dumps(hello))

    def spawn(
        self, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any], options: Any,
        child_fd: int, status_fd: int, stderr_fd: int | None = None,
        stdout_fd: int | None = None,
    ) -> int:
        """Fork a child running ``bootstrap(conn, target, args, kwargs, options)``;
        return its pid. ``stderr_fd`` and ``stdout_fd``, if given, become the child's
        standard error and output. Raises :class:`ForkServerError` or ``pickle``
        errors."""
        fds = [child_fd, status_fd]
        streams: list[str] = []
        for name, fd in (("stderr", stderr_fd), ("stdout", stdout_fd)):
            if fd is not None:
                fds.append(fd)
                streams.append(name)
        with self._lock:
            if self._pid_owner != os.getpid():
                raise ForkServerError("a fork server belongs to the process that started it")
            if self._process is None or self._process.poll() is not None:
                self._launch()
            sock = self._sock
            assert sock is not None
            path = tuple(sys.path)
            send_path = None if path == self._sent_path else list(path)
            # The path travels outside the request: it must be in place before the
            # request (whose target may live on it) is unpickled.
            payload = pickle.dumps((send_path, pickle.dumps((target, args, kwargs, options)),
                                    tuple(streams)))
            try:
                socket.send_fds(sock, [_LENGTH.pack(len(payload))], fds)
                sock.sendall(payload)
                reply = pickle.loads(_recv_message(sock))
            except (OSError, EOFError) as exc:
                self._discard()
                raise ForkServerError(f"the fork server is gone: {exc}") from None
            self._sent_path = path
        if reply[0] != "ok":
            raise ForkServerError(reply[1])
        pid: int = reply[1]
        return pid

    def _discard(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._process = None

    def close(self) -> None:
        """Stop the fork server (and any child it still runs, with what they left)."""
        with self._lock:
            process = self._process
            self._discard()
            if process is not None:
                process.wait()

    def _after_fork_in_child(self) -> None:
        sock = self._sock
        self._sock = None
        self._process = None
        self._lock = threading.Lock()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


def _after_fork() -> None:
    server = ForkServer._shared
    if server is not None:
        server._after_fork_in_child()
        ForkServer._shared = None


os.register_at_fork(after_in_child=_after_fork)


# --------------------------------------------------------------------- the server


class _Server:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.statuses: dict[int, int] = {}
        self.main_ready = False
        self.hello: dict[str, Any] = {}
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.selector = selectors.DefaultSelector()

    def run(self) -> None:
        set_child_subreaper()  # see end_all
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(number, signal.SIG_IGN if number == signal.SIGINT else signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w)
        self.hello = pickle.loads(_recv_message(self.sock))
        with contextlib.suppress(OSError):
            os.chdir(self.hello.get("cwd") or ".")
        self.selector.register(self.sock, selectors.EVENT_READ, "request")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "child")
        while True:
            for key, _ in self.selector.select():
                if key.data == "child":
                    with contextlib.suppress(BlockingIOError):
                        while os.read(self.wake_r, 512):
                            pass
                    self.reap()
                elif not self.serve_one():
                    self.end_all()
                    return

    def end_all(self) -> None:
        """The supervisor is gone: SIGKILL our children, then, as long as any is
        left, what they leave. We are a child subreaper, so the orphans of our
        children, even those that left their group or session (a ``setsid``
        grandchild, a daemon), are reparented to us while we live: everything
        adopted here descends from a process child. (Where a cgroup holds each
        child, the guardian kills the cgroups too; this is what reaches the
        escaped descendants of process children where none is writable.)"""
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for _ in range(100):  # each round ends one generation of orphans
            kids = children_of_self()
            if not kids:
                return
            for pid in kids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            for pid in kids:
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, 0)  # once reaped, its orphans are ours

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            fd = self.statuses.pop(pid, None)
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.write(fd, _STATUS.pack(os.waitstatus_to_exitcode(status)))
                os.close(fd)

    def serve_one(self) -> bool:
        try:
            message, fds, _, _ = socket.recv_fds(self.sock, _LENGTH.size, 4)
        except OSError:
            return False
        if not message:
            for fd in fds:
                os.close(fd)
            return False  # the supervisor is gone
        if len(fds) not in (2, 3, 4):
            for fd in fds:
                os.close(fd)
            return False  # not our protocol: give up rather than guess
        if len(message) < _LENGTH.size:
            message += _recv_exactly(self.sock, _LENGTH.size - len(message))
        (size,) = _LENGTH.unpack(message)
        payload = _recv_exactly(self.sock, size)
        child_fd, status_fd = fds[0], fds[1]
        try:
            request, names = self.load(payload)
            streams = dict(zip(names, fds[2:], strict=True))
        except BaseException as exc:
            for fd in fds:
                os.close(fd)
            self.reply(("error", f"cannot load the child's target: {exc!r}"))
            return True
        target, args, kwargs, options = request
        gc.freeze()  # what is imported now is shared with every child, untouched by GC
        pid = os.fork()
        if pid == 0:  # the child
            self.become_child(child_fd, status_fd, streams, target, args, kwargs, options)
        os.close(child_fd)
        for fd in streams.values():
            os.close(fd)
        self.statuses[pid] = status_fd
        self.reply(("ok", pid))
        return True

    def load(self, payload: bytes) -> tuple[Any, tuple[str, ...]]:
        path, request, streams = pickle.loads(payload)
        if path is not None:
            sys.path[:] = path
        try:
            return pickle.loads(request), streams
        except (AttributeError, ModuleNotFoundError):
            if self.main_ready:
                raise
            self.prepare_main()
            return pickle.loads(request), streams

    def prepare_main(self) -> None:
        """Import the supervisor's main module as ``__mp_main__``, as multiprocessing
        does, so targets defined in a script can be found."""
        from multiprocessing import spawn

        self.main_ready = True
        name = self.hello.get("main_spec")
        path = self.hello.get("main_file")
        # A script without an `if __name__ == "__main__":` guard starts its tree again
        # when imported here; the runtime refuses to while this is set (see
        # otp_py.runtime.api), and the refusal is turned into one clear error.
        os.environ[IMPORTING_MAIN] = str(path or name)
        try:
            if name and not name.endswith("__main__"):
                spawn.prepare({"init_main_from_name": name})
            elif path:
                spawn.prepare({"init_main_from_path": path})
        except BaseException as exc:
            raise RuntimeError(main_guard_message(str(path or name), exc)) from None
        finally:
            os.environ.pop(IMPORTING_MAIN, None)

    def reply(self, reply: tuple[Any, ...]) -> None:
        _send_message(self.sock, pickle.dumps(reply))

    def become_child(
        self, child_fd: int, status_fd: int, streams: dict[str, int],
        target: Any, args: Any, kwargs: Any, options: Any,
    ) -> None:
        code = 1
        try:
            for name, fd in streams.items():
                os.dup2(fd, 2 if name == "stderr" else 1)
                os.close(fd)
            if "stdout" in streams:
                from otp_py.backends.process_child import line_buffered_stdout

                line_buffered_stdout()
            signal.set_wakeup_fd(-1)
            for number in (signal.SIGCHLD, signal.SIGINT, signal.SIGHUP):
                signal.signal(number, signal.SIG_DFL)
            self.selector.close()
            self.sock.close()
            os.close(self.wake_r)
            os.close(self.wake_w)
            os.close(status_fd)
            for fd in self.statuses.values():
                os.close(fd)
            from multiprocessing.connection import Connection

            from otp_py.backends.process_child import bootstrap

            bootstrap(Connection(child_fd), target, args, kwargs, options)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)


def main() -> None:
    fd = int(sys.argv[1])
    sock = socket.socket(fileno=fd)
    import otp_py.backends.process_child  # noqa: F401 - preload what every child runs

    _Server(sock).run()


if __name__ == "__main__":
    main()
