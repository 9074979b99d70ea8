"""Find the tree a command names: ``MODULE:ATTR`` (a spec declared in Python) or a
TOML file (see :mod:`otp_py.cli.toml_spec`).

Import paths resolve against the current directory first, as ``uvicorn``, ``celery``
and ``gunicorn`` do, so ``otp-py run myapp.tree:TREE`` works from a project's root.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import otp_py as otp
from otp_py.cli.errors import EXIT_USAGE, CliError

__all__ = ["ImportPathError", "import_object", "is_tree_file", "load_tree", "use_cwd"]


class ImportPathError(Exception):
    """``package.module:attribute`` could not be resolved; the message says why."""


def use_cwd() -> None:
    """Put the current directory first on ``sys.path`` (a console script's
    ``sys.path[0]`` is its own bin directory, not where the user stands)."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def import_object(path: str) -> Any:
    """Resolve ``"package.module:attr"`` (``attr`` may be dotted: ``Class.method``).

    Raises :class:`ImportPathError` with a one-line reason; an exception raised by
    the imported module itself is reported by type and message."""
    module_name, colon, attr_path = path.partition(":")
    if not colon or not module_name or not attr_path:
        raise ImportPathError(f"expected an import path 'package.module:name'; got {path!r}")
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise ImportPathError(f"cannot import {path!r}: no module named {exc.name!r}") from None
        raise ImportPathError(f"cannot import {path!r}: {_one_line(exc)}") from None
    except Exception as exc:  # the user's module raised while importing
        raise ImportPathError(f"cannot import {path!r}: {_one_line(exc)}") from None
    for name in attr_path.split("."):
        try:
            target = getattr(target, name)
        except AttributeError:
            raise ImportPathError(
                f"cannot import {path!r}: {module_name!r} has no attribute {attr_path!r}"
            ) from None
    return target


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def is_tree_file(target: str) -> bool:
    """A TOML tree file rather than ``MODULE:ATTR``."""
    return target.endswith(".toml") or (":" not in target and Path(target).is_file())


def load_tree(target: str) -> otp.SupervisorSpec:
    """The :class:`~otp_py.SupervisorSpec` named by ``target``.

    ``MODULE:ATTR`` names a spec; ``MODULE:ATTR()`` a function that takes no
    arguments and returns one (as gunicorn's ``module:create_app()``: a function is
    only called when asked, so naming a worker by mistake does not run it). A
    ``.toml`` path is loaded by :mod:`otp_py.cli.toml_spec`. Raises :class:`CliError`
    (exit status 2) naming what is wrong."""
    from otp_py.cli import toml_spec

    use_cwd()
    if is_tree_file(target):
        return toml_spec.load_file(target)
    if ":" not in target:
        raise CliError(
            f"{target!r} is neither a TOML file nor an import path MODULE:ATTR",
            code=EXIT_USAGE,
        )
    call = target.endswith("()")
    path = target[:-2] if call else target
    try:
        value = import_object(path)
    except ImportPathError as exc:
        raise CliError(str(exc), code=EXIT_USAGE) from None
    except otp.SpecError as exc:  # a spec declared at import time is invalid
        raise CliError(f"{path}: {exc}", code=EXIT_USAGE) from None
    if call:
        if not callable(value):
            raise CliError(f"{path} is {type(value).__name__}, which cannot be called",
                           code=EXIT_USAGE)
        try:
            value = value()
        except otp.SpecError as exc:
            raise CliError(f"{target}: {exc}", code=EXIT_USAGE) from None
        except Exception as exc:
            raise CliError(f"{target} raised {_one_line(exc)}", code=EXIT_USAGE) from None
    elif callable(value) and not isinstance(value, type):
        raise CliError(f"{path} is a function, not a SupervisorSpec; if it returns the tree, "
                       f"write {path}()", code=EXIT_USAGE)
    if not isinstance(value, otp.SupervisorSpec):
        raise CliError(f"{target} is {type(value).__name__}, not an otp_py.SupervisorSpec",
                       code=EXIT_USAGE)
    return value
