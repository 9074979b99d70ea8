"""The fault suite reuses the runtime suite's helpers (``kit``, ``targets``), which
import each other as top-level modules: put their directory on ``sys.path`` before
any test module here is imported (and before the fork server starts, so that the
children it forks can import them too)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest

RUNTIME_TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "runtime")
if RUNTIME_TESTS not in sys.path:
    sys.path.insert(0, RUNTIME_TESTS)

import targets as runtime_targets  # noqa: E402 - needs the path above

from tests.faults import targets  # noqa: E402


@pytest.fixture
def release_threads() -> Iterator[None]:
    """Thread children that ignore their stop token wait on an event; let them end
    once the test is done with them (threads cannot be killed)."""
    runtime_targets.RELEASE.clear()
    targets.RELEASE.clear()
    yield
    runtime_targets.RELEASE.set()
    targets.RELEASE.set()
