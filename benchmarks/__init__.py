"""Benchmarks for otp_py against what users would otherwise run.

Run them all with ``python -m benchmarks`` (``--quick`` for a smoke run); see
``benchmarks/README.md`` and the docs page ``docs/benchmarks.rst``.
"""
