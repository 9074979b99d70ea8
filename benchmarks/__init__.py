"""Benchmarks for otp_py. Run them as modules: ``python -m benchmarks.core_events``."""
