"""Fixtures for the web observer's tests: a private runtime directory per test, so
control sockets never meet a tree the user is running."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.clitools import runtime_dir


@pytest.fixture
def runtime() -> Iterator[Path]:
    """``$XDG_RUNTIME_DIR`` for the ``otp-py`` commands a test runs."""
    with runtime_dir() as path:
        yield path
