"""Fixtures shared by the hardening tests."""

from tests.cli.conftest import runtime

__all__ = ["runtime"]
