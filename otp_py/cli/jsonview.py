"""``otp-py run --log-format json``: each report as one JSON object a line on stdout.

The objects are those of :func:`otp_py.observe.report_fields` (the keys documented in
"Running in production"), so a log shipper reads ``otp-py run`` and a tree logging
through :class:`otp_py.JsonFormatter` alike. Notes about the command itself go to
stderr, as JSON objects with the same keys (``event`` null). No tree table.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import TextIO

import otp_py as otp
from otp_py.cli.view import View
from otp_py.observe import JsonFormatter, report_fields

__all__ = ["JsonView"]


class JsonView(View):
    """Events as JSON lines on ``out``, notes as JSON lines on ``err``."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self._out = out
        self._err = err
        self._formatter = JsonFormatter()

    def _print(self, stream: TextIO, text: str) -> None:
        # A closed pipe (the reader has left) must not stop the tree.
        with contextlib.suppress(BrokenPipeError, ValueError):
            print(text, file=stream, flush=True)

    def note(self, text: str) -> None:
        record = logging.makeLogRecord(
            {"name": "otp-py", "levelno": logging.INFO, "levelname": "INFO", "msg": text})
        self._print(self._err, self._formatter.format(record))

    def event(self, at: float, report: otp.reports.Report) -> None:
        fields = report_fields(report, at=at, logger="otp_py")
        self._print(self._out, json.dumps(fields, ensure_ascii=False, default=str))
