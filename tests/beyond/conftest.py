"""The "beyond OTP" suite reuses the runtime suite's helpers (``kit``, ``targets``),
which import each other as top-level modules: put their directory on ``sys.path``
before any test module here is imported (and before the fork server starts, so the
children it forks can import them too)."""

from __future__ import annotations

import os
import sys

RUNTIME_TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "runtime")
if RUNTIME_TESTS not in sys.path:
    sys.path.insert(0, RUNTIME_TESTS)
