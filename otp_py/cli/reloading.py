"""Reloading a running tree from its tree file: ``otp-py ctl reload`` and SIGHUP.

``otp-py run FILE.toml`` remembers FILE; a reload reads it again and hands the new
declaration to :meth:`~otp_py.AsyncSupervisor.update`, which plans and applies it
(supervisorctl's ``reread`` + ``update``). A file that no longer loads, or a spec
that cannot replace the running one, changes nothing; the reason is the answer.

Trees declared in Python (``MODULE:ATTR``) are not reloaded. Importing the module
again (``importlib.reload``) would run its code a second time inside the running
tree (whatever it does at import: open connections, start threads, register
handlers), while the modules it imports stay as they were, so an edit there would be
silently missed, and the classes it defines (a decider, a strategy) would become new
classes. What the reloaded tree would run could not be told from the file. Such a
tree says so and runs on unchanged; a Python application reloads itself with
``Supervisor.update(new_spec)``, where it decides what re-importing means.

SIGHUP also reaches ``otp-py run`` when its terminal hangs up (a closed ssh session or
terminal window). That one is not a request to reload: nobody is left to watch the
tree, so it is stopped in order, as before reload existed. The two are told apart
by looking at the standard streams: a terminal that has hung up polls as ``POLLHUP``.
"""

from __future__ import annotations

import os
import select
import stat
from pathlib import Path
from typing import Final

import otp_py as otp
from otp_py.cli.errors import CliError

__all__ = ["PYTHON_TREE", "ReloadRefusedError", "describe", "load_again", "source_of",
           "terminal_hung_up"]

PYTHON_TREE: Final = (
    "cannot reload a tree declared in Python ({target}): importing its module again would "
    "run its code a second time in the running tree and leave the modules it imports as "
    "they were; the tree runs on unchanged (declare it in TOML to reload it, or call "
    "Supervisor.update() from the application)")


class ReloadRefusedError(Exception):
    """A reload that changed nothing; ``lines`` say why."""

    def __init__(self, *lines: str) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


def source_of(target: str) -> str:
    """What to read again at a reload: a tree file's absolute path (the tree may be
    reloaded by a client run from elsewhere), or ``MODULE:ATTR`` as given."""
    from otp_py.cli.load import is_tree_file

    return os.path.abspath(target) if is_tree_file(target) else target


def load_again(source: str | None) -> otp.SupervisorSpec:
    """The tree that ``source`` declares now. Raises :class:`ReloadRefusedError`."""
    from otp_py.cli.load import is_tree_file
    from otp_py.cli.toml_spec import load_file

    if source is None:
        raise ReloadRefusedError("this tree was not started from a tree file (otp-py run "
                            "FILE.toml), so there is nothing to read again")
    if not is_tree_file(source):
        raise ReloadRefusedError(PYTHON_TREE.format(target=source))
    try:
        return load_file(source)
    except CliError as exc:
        raise ReloadRefusedError(*exc.lines) from None


def describe(plan: otp.ReloadPlan, source: str | None, *, dry_run: bool) -> list[str]:
    """The answer to a reload, for people: what was (or would be) done."""
    where = f" from {Path(source).name}" if source else ""
    if dry_run:
        head = f"reload plan for tree {plan.path[-1]!r}{where} (dry run: nothing changed)"
    elif plan.is_empty:
        head = f"reloaded tree {plan.path[-1]!r}{where}"
    else:
        counts = {kind: len(paths) for kind, paths in plan.summary().items()}
        head = (f"reloaded tree {plan.path[-1]!r}{where}: {counts['added']} added, "
                f"{counts['removed']} removed, {counts['changed']} changed, "
                f"{counts['unchanged']} unchanged")
    return [head, *(f"  {line}" for line in plan.describe())]


def terminal_hung_up() -> bool:
    """Whether a terminal on standard input, output or error has hung up."""
    for fd in (0, 1, 2):
        try:
            if not stat.S_ISCHR(os.fstat(fd).st_mode):
                continue
            poller = select.poll()
            poller.register(fd, select.POLLHUP)
            if any(events & select.POLLHUP for _, events in poller.poll(0)):
                return True
        except OSError:
            continue
    return False
