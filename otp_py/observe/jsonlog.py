"""JSON logs: each report (or log record) as one JSON object on one line.

Two ways in, one set of keys:

* :class:`JsonFormatter`, a :class:`logging.Formatter` for the ``otp_py`` logger (or
  any logger: records that carry no report still become an object with the same keys);
* :func:`report_fields`, the object for one report, for listeners and
  ``otp-py run --log-format json``.

Every object has every key of :data:`FIELDS`, in that order, ``null`` when it does
not apply, so a log pipeline can rely on them (they are documented in "Running in
production"). ``time`` is wall-clock UTC in ISO 8601 with milliseconds; ``pid`` is the
process that wrote the line (the supervising process: reports do not carry a child's
pid); ``reason_kind`` is the closed set of the metrics' ``reason`` label.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
import time
from typing import Any, Final

from otp_py import reasons as rs
from otp_py import reports as rp
from otp_py.observe.metrics import exit_reason_label

__all__ = ["FIELDS", "JsonFormatter", "report_fields", "report_level"]

FIELDS: Final = (
    "time", "level", "logger", "event", "tree", "supervisor", "child", "reason",
    "reason_kind", "outcome", "restarts", "delay", "uptime", "pid", "traceback", "message",
)
"""The keys of every object, in order."""

_ERRORS: Final = (rp.IntensityExceeded, rp.ChildUnstoppable, rp.ChildStartFailed)


def _event_name(report: rp.Report) -> str:
    """``ChildExited`` -> ``child_exited``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(report).__name__).lower()


def report_level(report: rp.Report) -> str:
    """``"error"`` for a give-up, an unstoppable child, a failed start or an abnormal
    end; ``"warning"`` for a delayed restart or dropped output; ``"info"`` otherwise
    (as the ``otp_py`` logger's levels)."""
    if isinstance(report, _ERRORS):
        return "error"
    reason = getattr(report, "reason", None)
    if isinstance(report, rp.ChildExited | rp.SupervisorExited) and (
            reason is not None and reason.is_abnormal):
        return "error"
    if isinstance(report, rp.RestartScheduled | rp.OutputDropped):
        return "warning"
    return "info"


def _iso(at: float) -> str:
    stamp = datetime.datetime.fromtimestamp(at, tz=datetime.UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _blank(at: float, level: str, logger: str | None, message: str) -> dict[str, Any]:
    fields: dict[str, Any] = dict.fromkeys(FIELDS)
    fields.update(time=_iso(at), level=level, logger=logger, pid=os.getpid(), message=message)
    return fields


def report_fields(report: rp.Report, *, at: float | None = None, level: str | None = None,
                  logger: str | None = None) -> dict[str, Any]:
    """The JSON object of ``report``, received at wall time ``at`` (default: now).

    ``level`` defaults to :func:`report_level`. The values are JSON types only."""
    fields = _blank(time.time() if at is None else at, level or report_level(report),
                    logger, report.describe())
    fields["event"] = _event_name(report)
    if report.path:
        fields["tree"] = report.path[0]
        fields["supervisor"] = report.where
    child = getattr(report, "child_id", None)
    fields["child"] = child or None
    reason = getattr(report, "reason", None)
    if isinstance(report, rp.ChildStartFailed):
        fields["reason_kind"] = "start_failed"
    elif isinstance(reason, rs.ExitReason):
        fields["reason_kind"] = exit_reason_label(reason)
    if isinstance(report, rp.IntensityExceeded):
        fields["reason"] = report.why
    elif reason is not None:
        fields["reason"] = str(reason)
    if isinstance(reason, rs.Crashed):
        fields["traceback"] = reason.traceback
    if isinstance(report, rp.ChildExited):
        fields["outcome"] = report.outcome or None
        fields["uptime"] = report.uptime
    elif isinstance(report, rp.ChildStarted):
        fields["restarts"] = report.restarts
    elif isinstance(report, rp.RestartScheduled):
        fields["delay"] = report.delay
    return fields


class JsonFormatter(logging.Formatter):
    """Formats each log record as one JSON object on one line (keys: :data:`FIELDS`).

    A record logged by otp_py carries its report (``record.otp_report``), whose fields
    fill the object; any other record fills ``message`` (and ``traceback`` from
    ``exc_info``). Use it on a handler::

        handler = logging.StreamHandler()
        handler.setFormatter(otp.JsonFormatter())
        logging.getLogger("otp_py").addHandler(handler)
    """

    def format(self, record: logging.LogRecord) -> str:
        report = getattr(record, "otp_report", None)
        level = record.levelname.lower()
        if isinstance(report, rp.Report):
            fields = report_fields(report, at=record.created, level=level, logger=record.name)
            fields["pid"] = record.process if record.process is not None else fields["pid"]
        else:
            fields = _blank(record.created, level, record.name, record.getMessage())
            if record.process is not None:
                fields["pid"] = record.process
        if record.exc_info and fields["traceback"] is None:
            fields["traceback"] = self.formatException(record.exc_info)
        return json.dumps(fields, ensure_ascii=False, default=str)
