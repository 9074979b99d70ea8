"""Report a chaos run from its JSON (``chaos --json``): the table, the plot, and the
reStructuredText the docs page includes.

``python -m examples.celery_stack.report RUN.json [--rst FILE] [--plot FILE.png]``
prints the table and the details as the driver did; ``--rst`` writes them for
``docs/showcase-celery.rst`` (``docs/showcase-celery-results.rst.inc``), with the
command, the date and the machine, so the page shows exactly what a run printed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from typing import Any

from examples.celery_stack.chaos import FaultRun, SystemRun, details, table


def load(data: dict[str, Any]) -> list[SystemRun]:
    """The runs of a ``chaos --json`` file, as the driver's records."""
    names = {f.name for f in dataclasses.fields(SystemRun)}
    runs = []
    for raw in data["runs"]:
        fields = {k: v for k, v in raw.items() if k in names}
        fields["faults"] = [FaultRun(**fault) for fault in raw["faults"]]
        fields["load_average"] = tuple(raw.get("load_average", (0.0, 0.0, 0.0)))
        runs.append(SystemRun(**fields))
    return runs


def machine_line(data: dict[str, Any], runs: list[SystemRun]) -> str:
    about = data.get("machine", {})
    load_average = ", ".join(f"{run.system} {run.load_average[0]:.1f}" for run in runs)
    versions = ", ".join(f"{k} {v}" for k, v in about.get("versions", {}).items())
    return (f"measured on {about.get('cpus', '?')} CPUs (load average at the start: "
            f"{load_average}); {versions}")


def command_line(data: dict[str, Any]) -> str:
    args = data.get("args", {})
    return (f"python -m examples.celery_stack.chaos --seconds {args.get('seconds', 120):g}"
            + ("" if args.get("systems") == ["otp_py", "supervisord"]
               else f" --systems {','.join(args.get('systems', []))}"))


def rst(data: dict[str, Any]) -> str:
    """The include of the docs page: the command, when, the table and the details."""
    runs = load(data)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(runs[0].t0)) if runs else "?"
    indent = lambda text: "\n".join(("   " + line).rstrip() for line in text.splitlines())  # noqa: E731
    return (
        ".. This file is written by python -m examples.celery_stack.report RUN.json --rst\n"
        "   (from the JSON of the run): edit the run, not this file.\n\n"
        f"``{command_line(data)}``, run on {when}; {machine_line(data, runs)}.\n\n"
        ".. code-block:: text\n\n"
        f"{indent(table(runs))}\n\n"
        "What the driver saw, fault by fault (the pids are this run's):\n\n"
        ".. code-block:: text\n\n"
        f"{indent(details(runs))}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.celery_stack.report",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("json")
    parser.add_argument("--rst", help="write the docs page's include here")
    parser.add_argument("--plot", help="draw the run to this PNG")
    args = parser.parse_args(argv)
    with open(args.json) as file:
        data = json.load(file)
    runs = load(data)
    print(table(runs))
    print()
    print(details(runs))
    print()
    print(machine_line(data, runs))
    if args.rst:
        with open(args.rst, "w") as file:
            file.write(rst(data))
    if args.plot:
        from examples.celery_stack.plot import plot

        plot(data["runs"], args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
