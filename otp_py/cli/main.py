"""``otp-py``: the command line (argument parsing and the commands).

Exit status: 0 when the command did what was asked (a tree stopped because it was
asked to), 1 when the tree gave up or failed, or a control request was refused,
2 when the command line or the tree declaration is wrong. Errors are one line on
stderr; ``--debug`` adds the traceback of unexpected ones.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

import otp_py as otp
from otp_py.cli import control, render
from otp_py.cli.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError
from otp_py.cli.snapshot import count_specs, declared

__all__ = ["build_parser", "main"]

PROG = "otp-py"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """A usage mistake: one line, not the whole usage text."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds; got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds; got {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number; got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0; got {text!r}")
    return value


def _address(text: str) -> tuple[str, int]:
    from otp_py.observe.metrics import parse_address

    try:
        return parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    from otp_py.cli.view import VIEW_MODES

    parser.add_argument("--duration", type=_positive, metavar="SECONDS",
                        help="stop the tree in order after SECONDS (default: run until "
                             "Ctrl-C, SIGTERM or 'otp-py ctl stop')")
    parser.add_argument("--view", choices=VIEW_MODES, default="auto",
                        help="live: a table redrawn in place (needs rich and a terminal); "
                             "plain: events and, when it changes, the tree table; events: "
                             "events only; quiet: errors only; auto (default): live on a "
                             "terminal with rich, else plain")
    parser.add_argument("--interval", type=_positive, default=2.0, metavar="SECONDS",
                        help="refresh the tree table at most every SECONDS (default 2)")
    parser.add_argument("--max-children", type=_count, default=20, metavar="N",
                        help="show at most N children per supervisor (default 20; 0: all)")
    parser.add_argument("--metrics", type=_address, metavar="HOST:PORT",
                        help="serve Prometheus metrics at http://HOST:PORT/metrics (port 0: "
                             "any free port; needs pip install 'otp_py[metrics]')")
    parser.add_argument("--web", type=_address, metavar="HOST:PORT",
                        help="serve the web observer (the live tree, its history and "
                             "buttons) at http://HOST:PORT/ (port 0: any free port; loopback "
                             "only unless --web-allow-remote; needs pip install "
                             "'otp_py[web]')")
    parser.add_argument("--web-allow-remote", action="store_true",
                        help="let --web bind a non-loopback address; every request must then "
                             "carry a token, made and printed at start")
    parser.add_argument("--log-format", choices=("text", "json"), default="text",
                        help="json: each event as one JSON object a line on stdout, notes "
                             "likewise on stderr, no tree table (overrides --view)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--socket", metavar="PATH",
                       help=f"listen for 'otp-py status' and 'otp-py ctl' on PATH (default: "
                            f"${control.ENV_SOCKET}, else $XDG_RUNTIME_DIR/otp-py/ID.sock or "
                            "$TMPDIR/otp-py-UID/ID.sock, /tmp when TMPDIR is unset)")
    where.add_argument("--no-control", action="store_true",
                       help="do not open a control socket")
    _add_capture_options(parser)


def _add_capture_options(parser: argparse.ArgumentParser) -> None:
    capture = parser.add_mutually_exclusive_group()
    capture.add_argument("--log-dir", metavar="DIR",
                         help="write each process and command child's stdout and stderr, "
                              "and the tree's events (tree.log), to files in DIR (default: "
                              "the tree's own output setting, else $XDG_STATE_HOME/otp-py/ID, "
                              "else ~/.local/state/otp-py/ID); see 'otp-py logs'")
    capture.add_argument("--no-capture", action="store_true",
                         help="leave the children's output as the tree declares it (by "
                              "default, on the terminal) instead of in log files")
    parser.add_argument("--passthrough", action="store_true",
                        help="also copy each captured line to this command's stdout or "
                             "stderr, prefixed with the child's path and ' | '")


def _add_client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--socket", metavar="PATH",
                        help=f"the tree's control socket (default: ${control.ENV_SOCKET}, "
                             "else the only tree running)")
    parser.add_argument("--tree", metavar="ID", help="the running tree whose root is ID")
    parser.add_argument("--timeout", type=_positive, default=30.0, metavar="SECONDS",
                        help="wait at most SECONDS for the tree's answer (default 30)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Run an otp_py supervision tree, watch it, and control it.",
        epilog="Exit status: 0 done, 1 the tree gave up or a request was refused, "
               "2 a mistake in the command line or the tree.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {otp.__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of unexpected errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo", help="run a demo tree whose children crash on purpose, in a live view",
        description="Run an embedded tree of process, thread, command and asyncio "
                    "children, some crashing on purpose, and show it live.")
    _add_run_options(demo)
    demo.set_defaults(func=cmd_demo)

    run = commands.add_parser(
        "run", help="run a tree declared in Python (MODULE:ATTR) or TOML (FILE.toml)",
        description="Run a tree until Ctrl-C, SIGTERM, --duration or 'otp-py ctl stop'. "
                    "MODULE:ATTR names a SupervisorSpec, MODULE:FUNC() a function that "
                    "returns one; FILE.toml declares one (see docs/cli.rst). Import paths "
                    "are resolved from the current directory.")
    run.add_argument("target", metavar="MODULE:ATTR|FILE.toml")
    _add_run_options(run)
    run.set_defaults(func=cmd_run)

    check = commands.add_parser(
        "check", help="validate a tree; print each error with its location",
        description="Validate a tree file (or MODULE:ATTR) without running it, and find "
                    "what would fail at start: a command not found on PATH, a cwd that "
                    "does not exist, a process target that cannot be imported.")
    check.add_argument("target", metavar="FILE.toml|MODULE:ATTR")
    check.set_defaults(func=cmd_check)

    tree = commands.add_parser(
        "tree", help="print the declared tree (text, Mermaid or JSON)",
        description="Print the tree a file or MODULE:ATTR declares.")
    tree.add_argument("target", metavar="MODULE:ATTR|FILE.toml")
    form = tree.add_mutually_exclusive_group()
    form.add_argument("--mermaid", action="store_true", help="a Mermaid flowchart, for docs")
    form.add_argument("--json", action="store_true", help="JSON")
    tree.set_defaults(func=cmd_tree)

    status = commands.add_parser(
        "status", help="show a running tree, or one child in full (PATH)",
        description="Without PATH: which_children of every supervisor of a running tree "
                    "(otp-py run / demo). With PATH (globs such as 'pool/*' allowed): "
                    "each child in full: spec, state, pid, uptime, restarts and its last "
                    "exits with their tracebacks or stderr tails.")
    status.add_argument("paths", nargs="*", metavar="PATH")
    status.add_argument("--history", type=_count, default=10, metavar="N",
                        help="with PATH: show the last N exits (default 10)")
    _add_client_options(status)
    status.add_argument("--json", action="store_true", help="print the reply as JSON")
    status.add_argument("--events", type=_count, default=0, metavar="N",
                        help="also show the last N events")
    status.add_argument("--max-children", type=_count, default=0, metavar="N",
                        help="show at most N children per supervisor (default 0: all)")
    status.set_defaults(func=cmd_status)

    paths_help = ("PATH is as 'otp-py status' shows it (demo/pool/conn); the root's id "
                  "may be left out (pool/conn); a glob ('pool/*') names every child it "
                  "matches, as supervisorctl's 'group:*'.")
    for name, what, desc in (
        ("start", "start stopped children (restart_child)",
         "Start each stopped child again with its spec (restart_child); a running one "
         "is left alone."),
        ("stop", "stop children (terminate_child); their specs stay",
         "Stop each child (terminate_child): its spec stays, 'start' starts it again. "
         "To stop the whole tree: otp-py shutdown."),
        ("restart", "stop children if they run, then start them again",
         "Stop each child if it runs, then start it again with its spec."),
    ):
        sub = commands.add_parser(name, help=what, description=f"{desc} {paths_help}")
        sub.add_argument("paths", nargs="*", metavar="PATH")
        _add_client_options(sub)
        sub.set_defaults(func=cmd_child_op, op={"stop": "terminate"}.get(name, name),
                         verb=name)

    sig = commands.add_parser(
        "signal", help="send a signal to process or command children",
        description="Send SIGNAL (HUP, SIGHUP or 1) to each process or command child, or "
                    f"to its whole process group with --group. {paths_help}")
    sig.add_argument("signame", metavar="SIGNAL")
    sig.add_argument("paths", nargs="+", metavar="PATH")
    sig.add_argument("--group", action="store_true",
                     help="signal the child's process group (the child and what it started)")
    _add_client_options(sig)
    sig.set_defaults(func=cmd_signal)

    pid = commands.add_parser(
        "pid", help="print the pid of the tree, or of children",
        description="Without PATH: the pid of the process running the tree. With PATH: "
                    f"the pid of each process or command child. {paths_help}")
    pid.add_argument("paths", nargs="*", metavar="PATH")
    _add_client_options(pid)
    pid.set_defaults(func=cmd_pid)

    shutdown = commands.add_parser(
        "shutdown", help="stop the whole tree in order (supervisorctl's shutdown)",
        description="Stop the whole running tree in order; otp-py run then exits 0.")
    _add_client_options(shutdown)
    shutdown.set_defaults(func=cmd_shutdown)

    ctl = commands.add_parser(
        "ctl", help="the same commands under one name: ctl start|stop|restart|terminate PATH",
        description="restart PATH: stop the child if it runs, then start it again. "
                    "start PATH: start a stopped child. "
                    "terminate PATH: stop it (its spec stays; restart starts it again). "
                    "stop: stop the whole tree in order (as 'otp-py shutdown'; with PATH, "
                    "as 'otp-py stop PATH'). reload: read the tree file again and apply it "
                    f"(--dry-run: print the plan only). {paths_help}")
    ctl.add_argument("action", choices=("restart", "start", "terminate", "stop", "reload"))
    ctl.add_argument("paths", nargs="*", metavar="PATH")
    ctl.add_argument("--dry-run", action="store_true",
                     help="reload: print what would be added, removed, changed and left "
                          "unchanged, and change nothing")
    _add_client_options(ctl)
    ctl.set_defaults(func=cmd_ctl)

    logs = commands.add_parser(
        "logs", help="print or follow a child's output, or the tree's events",
        description="Print the last lines of the stdout (or --stderr) of the child at "
                    "PATH, as a running tree captured it, and with -f follow it across "
                    "rotations and restarts (each start is marked '--- otp-py: started "
                    "pid ...'). Without PATH: the tree's own event log (tree.log). The "
                    "files are found by asking the running tree, or in --log-dir.")
    logs.add_argument("path", nargs="?", metavar="PATH")
    logs.add_argument("--stderr", action="store_true", help="the child's stderr, not stdout")
    logs.add_argument("-n", "--lines", type=_count, default=10, metavar="N",
                      help="print the last N lines first (default 10)")
    logs.add_argument("-f", "--follow", action="store_true",
                      help="keep printing what is written, until Ctrl-C")
    logs.add_argument("--log-dir", metavar="DIR",
                      help="read the files in DIR, without asking a running tree")
    _add_client_options(logs)
    logs.set_defaults(func=cmd_logs)
    return parser


# ------------------------------------------------------------------ commands


def cmd_demo(args: argparse.Namespace) -> int:
    from otp_py.cli import demo

    return _run(demo.tree(), args, intro=demo.INTRO)


def cmd_run(args: argparse.Namespace) -> int:
    from otp_py.cli.load import load_tree
    from otp_py.cli.reloading import source_of

    return _run(load_tree(args.target), args, source=source_of(args.target))


def _run(spec: otp.SupervisorSpec, args: argparse.Namespace,
         intro: Sequence[str] = (), source: str | None = None) -> int:
    from otp_py.cli.runner import RunOptions, run_tree
    from otp_py.cli.view import View, make_view

    web = _web_address(args)
    spec, log_dir = _with_capture(spec, args)
    server = None
    if not args.no_control:
        explicit = args.socket or os.environ.get(control.ENV_SOCKET)
        path = Path(explicit) if explicit else control.default_socket(spec.id)
        server = control.ControlServer(path, private_dir=not explicit)
        server.bind()
    hint = "Ctrl-C stops the tree in order"
    if server is not None:
        hint += f"  ·  in another terminal: {PROG} status, {PROG} restart PATH"
    try:
        if args.log_format == "json":
            from otp_py.cli.jsonview import JsonView

            view: View = JsonView(sys.stdout, sys.stderr)
        else:
            view = make_view(args.view, max_children=args.max_children or None, hint=hint)
    except BaseException:
        if server is not None:
            server.close_now()
        raise
    for line in intro:
        view.note(line)
    if log_dir is not None:
        view.note(f"logs in {log_dir} ({PROG} logs PATH [-f])")
    options = RunOptions(duration=args.duration, interval=args.interval, control=server,
                         source=source, metrics=args.metrics, web=web,
                         web_remote=args.web_allow_remote,
                         prepare=lambda new: _with_capture(new, args)[0])
    return run_tree(spec, view, options)


def _web_address(args: argparse.Namespace) -> tuple[str, int] | None:
    """Where ``--web`` serves the observer, checked before anything starts: the
    extra is installed, and a non-loopback address was allowed explicitly."""
    if args.web is None:
        if args.web_allow_remote:
            raise CliError("--web-allow-remote goes with --web HOST:PORT", code=EXIT_USAGE)
        return None
    try:
        from otp_py.web import is_loopback
    except ImportError as exc:
        raise CliError(f"--web: {exc}", code=EXIT_USAGE) from None
    host, port = args.web
    if not is_loopback(host) and not args.web_allow_remote:
        raise CliError(f"--web {host}:{port}: {host} is not a loopback address, and the page "
                       "can stop children; add --web-allow-remote to serve it there (every "
                       "request will then need a token, printed at start)", code=EXIT_USAGE)
    return host, port


def _with_capture(spec: otp.SupervisorSpec,
                  args: argparse.Namespace) -> tuple[otp.SupervisorSpec, str | None]:
    """``spec`` with the command line's output capture on its root (by default on,
    in the tree's state directory: ``otp-py run`` keeps logs, the library does not
    unless told), and the log directory, created now (None: the root captures not).

    The tree's own ``output`` wins over the default, the command line's options over
    both."""
    import attrs

    if args.no_capture:
        root = spec.output
    else:
        root = otp.OutputCapture().merged(spec.output)
        if args.log_dir:
            root = root.merged(otp.OutputCapture(dir=os.path.abspath(args.log_dir),
                                                 enabled=root.enabled))
    if root is not None and args.passthrough:
        root = root.merged(otp.OutputCapture(passthrough=True, enabled=root.enabled))
    if root is None or not root.enabled:
        return (spec if root is spec.output else attrs.evolve(spec, output=root)), None
    root = root.completed(spec.id)
    assert root.dir is not None
    try:
        os.makedirs(root.dir, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create the log directory {root.dir}: {exc.strerror}; "
                       "choose another with --log-dir DIR, or run with --no-capture",
                       code=EXIT_USAGE) from None
    return attrs.evolve(spec, output=root), root.dir


def cmd_logs(args: argparse.Namespace) -> int:
    from otp_py.cli.logs import follow, stdout_writer

    stream = "stderr" if args.stderr else "stdout"
    if args.log_dir:
        capture = otp.OutputCapture(dir=os.path.abspath(args.log_dir))
        if not args.path:
            file = capture.tree_log
        else:
            parts = [p for p in args.path.split("/") if p]
            if not parts:
                raise CliError("PATH must name a child, such as 'pool/worker'",
                               code=EXIT_USAGE)
            file = capture.log_file(parts, stream)
            if len(parts) > 1 and not os.path.exists(file):
                # (the root's id, which status shows first, is not part of the layout)
                shorter = capture.log_file(parts[1:], stream)
                file = shorter if os.path.exists(shorter) else file
    else:
        payload: dict[str, Any] = {"op": "log", "stream": stream}
        if args.path:
            payload["path"] = args.path
        sock = control.find_socket(args.socket, args.tree)
        file = str(control.request(sock, payload, timeout=args.timeout)["file"])
    if not args.follow and not os.path.exists(file):
        what = f"the {stream} of {args.path}" if args.path else "the tree's events"
        raise CliError(f"nothing logged yet for {what} (no file {file})")
    try:
        follow(file, args.lines, stdout_writer(), keep_going=args.follow)
    except KeyboardInterrupt:  # how a follower is asked to stop: not a failure
        return EXIT_OK
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from otp_py.cli.load import is_tree_file, load_tree, use_cwd
    from otp_py.cli.toml_spec import check_file, start_problems

    if is_tree_file(args.target):
        use_cwd()
        spec, problems = check_file(args.target)
        if spec is None:
            raise CliError(*(p.describe() for p in problems), code=EXIT_USAGE, located=True)
        text = Path(args.target).read_text(encoding="utf-8")
        late = start_problems(spec, args.target, text)
    else:
        spec = load_tree(args.target)
        late = start_problems(spec, args.target)
    if late:  # valid, but would fail at start
        raise CliError(*(p.describe() for p in late), code=EXIT_USAGE, located=True)
    supervisors, workers = count_specs(spec)
    print(f"{args.target}: ok: tree {spec.id!r} with {supervisors} supervisor"
          f"{'s' if supervisors != 1 else ''} and {workers} worker{'s' if workers != 1 else ''}")
    return EXIT_OK


def cmd_tree(args: argparse.Namespace) -> int:
    from otp_py.cli.load import load_tree

    root = declared(load_tree(args.target))
    if args.json:
        print(json.dumps(root, indent=2))
    elif args.mermaid:
        print("\n".join(render.mermaid(root)))
    else:
        print("\n".join(render.declared_text(root)))
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    path = control.find_socket(args.socket, args.tree)
    if args.paths:
        return _status_children(path, args)
    reply = control.request(path, {"op": "status", "events": args.events or 20},
                            timeout=args.timeout)
    if args.json:
        print(json.dumps(reply, indent=2))
        return EXIT_OK
    tree = reply.get("tree", {})
    root = control.status_nodes(reply)
    now = time.time()
    started = tree.get("started_at")
    up = render.duration(now - started) if isinstance(started, int | float) else "?"
    from otp_py.cli.view import clock, summary

    print(f"tree {tree.get('id')!r} (pid {tree.get('pid')}, up {up}) on {path}: "
          f"{summary(root)}")
    print("\n".join(render.table_lines(root, now, max_children=args.max_children or None)))
    if args.events:
        print(f"last {args.events} events:")
        for event in reply.get("events", [])[-args.events:]:
            print(f"  {clock(float(event['at']))} {event['text']}")
    return EXIT_OK


def _status_children(sock: Path, args: argparse.Namespace) -> int:
    """``status PATH...``: each child in full (one JSON object for one plain PATH, a
    list for globs or several paths)."""
    children: list[dict[str, Any]] = []
    failed = False
    for child_path in _expand(sock, args.paths, args.timeout):
        try:
            reply = control.request(sock, {"op": "child", "path": child_path,
                                           "history": args.history}, timeout=args.timeout)
        except CliError as exc:
            _report(exc.lines)
            failed = True
            continue
        children.append(reply["child"])
    if args.json:
        single = len(args.paths) == 1 and not _is_glob(args.paths[0])
        if children:
            print(json.dumps(children[0] if single else children, indent=2))
    elif children:
        now = time.time()
        print("\n\n".join("\n".join(render.child_detail(c, now)) for c in children))
    return EXIT_FAILED if failed else EXIT_OK


_GLOB_CHARS: Final = frozenset("*?[")


def _is_glob(pattern: str) -> bool:
    return any(c in _GLOB_CHARS for c in pattern)


def _expand(sock: Path, patterns: Sequence[str], timeout: float) -> list[str]:
    """The child paths ``patterns`` name: a plain path as it is (the tree says if it
    is wrong), a glob matched segment by segment against the running tree (``*`` does
    not cross ``/``), in start order. Raises :class:`CliError` for a glob that matches
    nothing."""
    if not any(_is_glob(p) for p in patterns):
        return list(patterns)
    from fnmatch import fnmatchcase

    from otp_py.cli.snapshot import flatten

    reply = control.request(sock, {"op": "status", "events": 0}, timeout=timeout)
    root = control.status_nodes(reply)
    root_id = str(root.get("id"))
    paths = [str(row["path"]) for row in flatten(root)[1:] if "more" not in row]
    found: list[str] = []
    for pattern in patterns:
        if not _is_glob(pattern):
            found.append(pattern)
            continue
        parts = [p for p in pattern.split("/") if p]
        if parts and parts[0] != root_id:
            parts = [root_id, *parts]
        matches = [p for p in paths if len(p.split("/")) == len(parts) and all(
            fnmatchcase(seg, pat) for seg, pat in zip(p.split("/"), parts, strict=True))]
        if not matches:
            raise CliError(f"no child matches {pattern!r} (see {PROG} status)")
        found += [m for m in matches if m not in found]
    return found


def _each(sock: Path, paths: Sequence[str], timeout: float,
          payload: Callable[[str], dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    """Send one request per child path; print each refusal as it comes. Returns the
    replies and whether any request was refused."""
    replies: list[dict[str, Any]] = []
    failed = False
    for child_path in _expand(sock, paths, timeout):
        try:
            replies.append(control.request(sock, payload(child_path), timeout=timeout))
        except CliError as exc:
            _report(exc.lines)
            failed = True
    return replies, failed


def cmd_child_op(args: argparse.Namespace) -> int:
    """``start``, ``stop`` and ``restart`` of children."""
    if not args.paths:
        hint = f"; to stop the whole tree: {PROG} shutdown" if args.verb == "stop" else ""
        raise CliError(f"'{args.verb}' needs the PATH of a child, or a glob such as 'pool/*' "
                       f"(see {PROG} status){hint}", code=EXIT_USAGE)
    sock = control.find_socket(args.socket, args.tree)
    replies, failed = _each(sock, args.paths, args.timeout,
                            lambda p: {"op": args.op, "path": p})
    for reply in replies:
        print(reply.get("message", "ok"))
    return EXIT_FAILED if failed else EXIT_OK


def cmd_signal(args: argparse.Namespace) -> int:
    try:
        control.parse_signal(args.signame)
    except control.ControlError as exc:
        raise CliError(str(exc), code=EXIT_USAGE) from None
    sock = control.find_socket(args.socket, args.tree)
    replies, failed = _each(sock, args.paths, args.timeout, lambda p: {
        "op": "signal", "path": p, "signal": args.signame, "group": args.group})
    for reply in replies:
        print(reply.get("message", "ok"))
    return EXIT_FAILED if failed else EXIT_OK


def _a(kind: str, node: dict[str, Any]) -> str:
    """``a supervisor``, ``an asyncio child``."""
    noun = kind if node.get("kind") == "supervisor" else f"{kind} child"
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def cmd_pid(args: argparse.Namespace) -> int:
    sock = control.find_socket(args.socket, args.tree)
    if not args.paths:
        reply = control.request(sock, {"op": "ping"}, timeout=args.timeout)
        print(reply["tree"]["pid"])
        return EXIT_OK
    replies, failed = _each(sock, args.paths, args.timeout,
                            lambda p: {"op": "child", "path": p, "history": 0})
    for reply in replies:
        child = reply["child"]
        if child.get("pid") is None:
            why = (f"it is {child.get('state')}" if child.get("state") != "running" else
                   f"{_a(render.kind_of(child), child)} runs inside the tree's process "
                   f"(pid {reply['tree']['pid']})")
            _report([f"{child['path']} has no pid of its own: {why}"])
            failed = True
        elif len(args.paths) == 1 and not _is_glob(args.paths[0]):
            print(child["pid"])
        else:
            print(f"{child['path']} {child['pid']}")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_shutdown(args: argparse.Namespace) -> int:
    sock = control.find_socket(args.socket, args.tree)
    reply = control.request(sock, {"op": "stop"}, timeout=args.timeout)
    print(reply.get("message", "ok"))
    return EXIT_OK


def cmd_ctl(args: argparse.Namespace) -> int:
    """``ctl ACTION [PATH...]``: the older spelling of the same requests, and
    ``ctl reload [--dry-run]``."""
    if args.dry_run and args.action != "reload":
        raise CliError(f"--dry-run is for 'ctl reload'; got 'ctl {args.action}'",
                       code=EXIT_USAGE)
    if args.action == "reload":
        if args.paths:
            raise CliError("'ctl reload' reloads the whole tree from its file and takes no "
                           "PATH", code=EXIT_USAGE)
        sock = control.find_socket(args.socket, args.tree)
        reply = control.request(sock, {"op": "reload", "dry_run": args.dry_run},
                                timeout=args.timeout)
        print(reply.get("message", "ok"))
        return EXIT_OK
    if args.action == "stop" and not args.paths:
        return cmd_shutdown(args)
    if not args.paths:
        raise CliError(f"'ctl {args.action}' needs the PATH of a child (see {PROG} status)",
                       code=EXIT_USAGE)
    args.op = "terminate" if args.action == "stop" else args.action
    args.verb = args.action
    return cmd_child_op(args)


# ------------------------------------------------------------------ entry point


def _report(lines: Sequence[str], *, located: bool = False) -> None:
    for line in lines:
        print(line if located else f"{PROG}: error: {line}", file=sys.stderr, flush=True)


def _reserve_std_fds() -> None:
    """Open ``/dev/null`` on each of file descriptors 0, 1 and 2 that is closed.

    Started with a stream closed (``otp-py run ... >&-``), the next descriptor the
    tree opens (the control socket, a pipe to a child) would take that number, and
    every command child would inherit it as its own stdin, stdout or stderr: its
    output would go into the tree's own pipe. (Python has already set ``sys.stdout``
    to None for a closed stdout; the views then print nothing, as asked.)"""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)  # (inheritable, as dup2 makes it by default)
                os.close(null)
            else:
                os.set_inheritable(fd, True)  # os.open's are not; children need it


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: run the command, return the exit status."""
    _reserve_std_fds()
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except CliError as exc:
        _report(exc.lines, located=exc.located)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `otp-py tree x | head`: the reader left; not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        if args.debug:
            raise
        _report([f"unexpected {type(exc).__name__}: {exc} (run with --debug for the "
                 "traceback)"])
        return EXIT_FAILED
