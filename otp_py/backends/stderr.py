"""A child's standard error: its tail for the crash history, and its copy.

The machinery now lives in :mod:`otp_py.backends.output`, which also captures
children's output into log files; this module keeps the names it always offered.
"""

from __future__ import annotations

from otp_py.backends.output import (
    BUFFER_BYTES,
    FINAL_BYTES,
    LINE_BYTES,
    PARTIAL_DELAY,
    REPORT_EVERY,
    STALL,
    TAIL_BYTES,
    StderrTail,
    flush,
)

__all__ = [
    "BUFFER_BYTES",
    "FINAL_BYTES",
    "LINE_BYTES",
    "PARTIAL_DELAY",
    "REPORT_EVERY",
    "STALL",
    "TAIL_BYTES",
    "StderrTail",
    "flush",
]
