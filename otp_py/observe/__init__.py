"""Report listeners for production: Prometheus metrics and JSON logs.

They read the same typed reports (:mod:`otp_py.reports`) as the command line and the
``otp_py`` logger, and import only the public API. Nothing in the library imports
them; prometheus-client (the ``otp_py[metrics]`` extra) is imported only when a
:class:`TreeMetrics` is made.
"""

from otp_py.observe.jsonlog import FIELDS, JsonFormatter, report_fields
from otp_py.observe.metrics import (
    EXIT_REASONS,
    MetricsServer,
    TreeMetrics,
    exit_reason_label,
    serve_metrics,
)

__all__ = [
    "EXIT_REASONS",
    "FIELDS",
    "JsonFormatter",
    "MetricsServer",
    "TreeMetrics",
    "exit_reason_label",
    "report_fields",
    "serve_metrics",
]
