"""``python -m benchmarks``: every measurement, one table.

Runs the seven sections (crash detection and crash→restart per backend, in-process
restart throughput, scale, idle cost, the core's decision cost, Ray), each interleaving
otp_py with its comparisons, then prints the table of medians, p99, n and ratios
and writes it into the output directory as ``results.md`` (Markdown),
``results.rst.inc`` (for the docs page), ``samples.json`` (every raw sample) and
PNG plots of the distributions.

    python -m benchmarks              # the full run, ~5 minutes; writes docs/benchmarks/
    python -m benchmarks --quick      # a smoke run of seconds; writes benchmarks/.cache/quick/
    python -m benchmarks --only crash,idle

A quick run uses small sizes and few rounds, skips supervisord and circus (each of
their restarts takes a second or more), and judges nothing: its figures only show
that every measurement still runs. The exit status is 0 whenever the run
completes, met targets or not (the table says which).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import otp_py
from benchmarks import core_cost, crash, idle, ray_bench, report, scale, throughput
from benchmarks.harness import CACHE, Results, log, quiet_logging

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("crash", "throughput", "scale", "idle", "core", "ray")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _revision() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "otp_py"], cwd=ROOT,
                               check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown revision"
    return f"git {head}{' + uncommitted changes to otp_py/' if dirty else ''}"


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run every otp_py benchmark and its comparisons; print and write one table.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run of seconds: small sizes, one round, "
                             "no supervisord or circus")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run (default: all of {SECTIONS})")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write the table, samples and plots (default: "
                             "docs/benchmarks for a full run, benchmarks/.cache/quick for --quick)")
    parser.add_argument("--no-plots", action="store_true", help="do not draw the PNG plots")
    parser.add_argument("--no-install", action="store_true",
                        help="do not pip-install supervisord and circus into benchmarks/.cache")
    parser.add_argument("--from-samples", type=Path, metavar="SAMPLES_JSON",
                        help="measure nothing: redraw the table and plots of an earlier run "
                             "from its samples.json (written next to it unless --out)")
    args = parser.parse_args(argv)
    if args.from_samples is not None:
        return _render_again(args.from_samples, args.out, not args.no_plots)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    quick = args.quick
    out = args.out or (CACHE / "quick" if quick else ROOT / "docs" / "benchmarks")
    command = "python -m benchmarks" + ("" if argv is None and len(sys.argv) < 2
                                        else " " + shlex.join(list(argv or sys.argv[1:])))
    meta = {
        "command": command,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{_cpu_model()}, {os.cpu_count()} CPUs, Linux {platform.release()}",
        "python": f"{platform.python_version()} ({platform.python_implementation()})",
        "otp_py": otp_py.__version__,
        "revision": _revision(),
        "load_before": _load(),
        "quick": quick,
    }
    quiet_logging()
    log(f"otp_py benchmarks ({'quick' if quick else 'full'}): {', '.join(chosen)}")
    results = Results()
    install = not args.no_install
    plan: dict[str, Callable[[], None]] = {
        "crash": lambda: crash.run(results, crash.QUICK if quick else
                                   _with_install(crash.FULL, install)),
        "throughput": lambda: throughput.run(results, throughput.QUICK if quick
                                             else throughput.FULL),
        "scale": lambda: scale.run(results, scale.QUICK if quick else scale.FULL),
        "idle": lambda: idle.run(results, idle.QUICK if quick
                                 else _with_install(idle.FULL, install)),
        "core": lambda: (core_cost.run(results, core_cost.QUICK, core_cost.QUICK_SIZES) if quick
                         else core_cost.run(results, core_cost.FULL)),
        "ray": lambda: ray_bench.run(results, ray_bench.QUICK if quick else ray_bench.FULL),
    }
    began = time.monotonic()
    for section in SECTIONS:
        if section in chosen:
            plan[section]()
    meta["load_after"] = _load()
    meta["duration_s"] = round(time.monotonic() - began, 1)
    written = report.write(results, meta, out, with_plots=not args.no_plots)
    print(f"otp_py benchmarks: {command} ({meta['machine']}; Python {meta['python']}; "
          f"{meta['revision']}; {meta['duration_s']:.0f} s)")
    print()
    print(report.text(results))
    print()
    print("written: " + ", ".join(str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p)
                                  for p in written))
    return 0


def _render_again(samples: Path, out: Path | None, with_plots: bool) -> int:
    results, meta = report.load(samples)
    written = report.write(results, meta, out or samples.parent, with_plots=with_plots)
    print(f"otp_py benchmarks: {meta['command']} ({meta['machine']}; Python {meta['python']}; "
          f"{meta['revision']}; {meta['date']}), redrawn from {samples}")
    print()
    print(report.text(results))
    print()
    print("written: " + ", ".join(str(p) for p in written))
    return 0


def _with_install(settings: object, install: bool) -> object:
    import dataclasses

    return dataclasses.replace(settings, install=install)  # type: ignore[type-var]


if __name__ == "__main__":
    sys.exit(main())
