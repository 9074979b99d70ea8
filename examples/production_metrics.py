"""Running in production: Prometheus metrics of a tree, scraped over HTTP.

A command child crashes twice; a scrape of /metrics then shows both restarts under
the child's labels and how much of the supervisor's restart budget they used.
"""

import sys
import tempfile
import threading
import urllib.request
from pathlib import Path

import otp_py as otp
from otp_py.observe import serve_metrics
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

# Fails on its first two runs (it counts them in a file), then stays up.
FLAKY = """
import sys, time
with open(sys.argv[1], "a+") as runs:
    runs.write("x")
    runs.seek(0)
    if len(runs.read()) <= 2:
        sys.exit(3)
time.sleep(600)
"""
workdir = tempfile.TemporaryDirectory()
tree = otp.SupervisorSpec(
    id="root",
    intensity=otp.SlidingWindow(max_restarts=5, period=60.0),
    children=[
        otp.ChildSpec.command("api", ["sleep", "600"]),
        otp.ChildSpec.command("flaky", [sys.executable, "-c", FLAKY,
                                        str(Path(workdir.name) / "runs")]),
    ],
)

metrics = otp.TreeMetrics()
registry = CollectorRegistry()
registry.register(metrics)  # beside your own application's metrics
restarted_twice = threading.Event()


def listen(report: otp.reports.Report) -> None:
    metrics(report)  # the collector is a report listener
    if isinstance(report, otp.reports.ChildStarted) and report.restarts == 2:
        restarted_twice.set()


with otp.start(tree, on_report=listen) as sup, \
        serve_metrics(metrics, "127.0.0.1", 0, registry=registry) as server:
    metrics.watch(sup)  # lets a scrape read the restart budgets
    restarted_twice.wait(30)
    host, port = server.address
    with urllib.request.urlopen(f"http://{host}:{port}/metrics") as answer:
        text = answer.read().decode()

shown = ("otp_py_child_up", "otp_py_child_restarts_total", "otp_py_child_exits_total",
         "otp_py_restart_budget_used_ratio", "otp_py_children")
for family in text_string_to_metric_families(text):
    for sample in family.samples:
        if sample.name in shown and sample.labels.get("child", "flaky") == "flaky":
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            print(f"{sample.name}{{{labels}}} {sample.value:g}")
workdir.cleanup()
