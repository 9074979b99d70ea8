"""Checks of what is handed to the ways into a tree (``run``, ``start``, ``supervise``,
``simulate``), made where the call is written rather than deep in a running tree."""

from __future__ import annotations

from typing import Any

from otp_py._core.names import declared_names
from otp_py._errors import SpecError

__all__ = ["check_tree_arguments"]


def check_tree_arguments(
    where: str, spec: Any, *, random: Any = None, on_report: Any = None
) -> None:
    """Raise a clear error if ``spec`` cannot be the root of a tree, or ``random`` or
    ``on_report`` cannot be called. ``where`` names the function the user called."""
    if not (hasattr(spec, "children") and hasattr(spec, "strategy")):
        hint = ""
        if hasattr(spec, "start") and hasattr(spec, "restart"):
            hint = (" (a ChildSpec is a child: put it in a tree, "
                    "SupervisorSpec(id='root', children=[child]))")
        raise TypeError(f"{where}() needs a SupervisorSpec as the root of the tree; got "
                        f"{type(spec).__name__} {spec!r}{hint}")
    if getattr(spec, "backend", "inline") != "inline":
        raise SpecError(spec.id, "backend", f"the root supervisor runs in the process that "
                        f"calls {where}(): backend={spec.backend!r} is for nested "
                        "supervisors")
    declared_names(spec)  # a name twice in the tree, or in a template: refused now
    if random is not None and not callable(random):
        raise TypeError(f"{where}(): random must be a function of no arguments returning a "
                        f"float in [0, 1), such as random.Random(7).random; got {random!r}")
    if on_report is not None and not callable(on_report):
        raise TypeError(f"{where}(): on_report must be a function taking one report; got "
                        f"{on_report!r}")
