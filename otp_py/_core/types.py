"""Small vocabulary shared by the specs and the decision core: restart types,
auto-shutdown modes and shutdown timeouts. Pure data, no behaviour."""

from __future__ import annotations

import enum
import math
from typing import ClassVar, Final

__all__ = ["BRUTAL_KILL", "INFINITY", "AutoShutdown", "BrutalKill", "Restart", "ShutdownTimeout"]


class Restart(enum.Enum):
    """When an ended child is restarted (OTP's restart types).

    * ``PERMANENT``: always.
    * ``TRANSIENT``: only if it ended abnormally (not ``normal``, ``shutdown`` or
      ``{shutdown, Term}``).
    * ``TEMPORARY``: never, not even when a sibling's failure stopped it under
      one_for_all or rest_for_one; its spec is forgotten when it ends.
    """

    __hash__ = object.__hash__  # members are singletons; C-speed dict lookups

    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


class AutoShutdown(enum.Enum):
    """Whether a supervisor shuts itself down when *significant* children end.

    * ``NEVER``: never (significant children are refused).
    * ``ANY_SIGNIFICANT``: when any significant child ends by itself.
    * ``ALL_SIGNIFICANT``: when the last running significant child ends by itself.
    """

    __hash__ = object.__hash__  # members are singletons; C-speed dict lookups

    NEVER = "never"
    ANY_SIGNIFICANT = "any_significant"
    ALL_SIGNIFICANT = "all_significant"


class BrutalKill:
    """The ``shutdown`` value that kills a child at once instead of asking it to stop."""

    _instance: ClassVar[BrutalKill | None] = None

    def __new__(cls) -> BrutalKill:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "BRUTAL_KILL"

    def __reduce__(self) -> str:
        return "BRUTAL_KILL"


BRUTAL_KILL: Final = BrutalKill()
"""Kill the child at once (OTP's ``brutal_kill``)."""

class _Infinity(float):
    """``math.inf`` as the library's own constant: equal to any float infinity, but
    told apart by identity (``start_timeout`` refuses a float infinity that was not
    written :data:`INFINITY`), and unpickled as the same object."""

    def __new__(cls) -> _Infinity:
        return super().__new__(cls, math.inf)

    def __reduce__(self) -> str:
        return "INFINITY"


INFINITY: Final[float] = _Infinity()
"""Wait for as long as it takes (OTP's ``infinity``): a ``shutdown`` or a
``start_timeout``. A float equal to ``math.inf``."""

ShutdownTimeout = float | BrutalKill
"""A child's ``shutdown``: seconds to wait after a graceful stop request before
killing it, :data:`INFINITY`, or :data:`BRUTAL_KILL`."""
